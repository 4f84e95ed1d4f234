"""Where the data-to-model latency starts: the landing time raw_telemetry records, read back by uplink."""

import datetime as dt
import os
import time

import dagster as dg
import pytest

from assets.telemetry import NEWEST_DOWNLINK_LANDED_AT
from assets.uplink import newest_downlink_landed_at
from resources.landing_zone import LocalLandingZoneResource


def test_newest_landed_at_is_the_newest_file_modification_time(tmp_path):
    landing = LocalLandingZoneResource(root=str(tmp_path))
    store = landing.store()
    for name, mtime in (
        ("sat-001_a.ccsds", 1_000.0),
        ("sat-002_b.ccsds", 5_000.0),
        ("sat-003_c.ccsds", 3_000.0),
    ):
        key = f"downlinks/2026-06-01/{name}"
        store.put_bytes(key, b"\x00")
        os.utime(store.path(key), (mtime, mtime))
    downlinks = landing.list_downlinks(dt.date(2026, 6, 1))
    assert landing.newest_landed_at(downlinks) == 5_000.0
    with pytest.raises(ValueError, match="at least one downlink"):
        landing.newest_landed_at([])


def _raw_telemetry(instance, partition: str, landed_at: float | None) -> None:
    metadata = (
        {"packets_ok": 1}
        if landed_at is None
        else {NEWEST_DOWNLINK_LANDED_AT: dg.MetadataValue.timestamp(landed_at)}
    )
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="raw_telemetry", partition=partition, metadata=metadata)
    )


def test_uplink_reads_the_landing_time_of_the_newest_training_partition():
    with dg.instance_for_test() as instance:
        _raw_telemetry(instance, "2026-06-01", 1_000.0)
        _raw_telemetry(instance, "2026-06-02", 2_000.0)
        _raw_telemetry(instance, "2026-06-02", 2_500.0)  # the partition re-ingested after late files
        _raw_telemetry(instance, "2026-06-03", 9_000.0)  # newer than the model's training window
        assert newest_downlink_landed_at(instance, ["2026-06-01", "2026-06-02"]) == 2_500.0
        assert newest_downlink_landed_at(instance, []) is None
        assert newest_downlink_landed_at(instance, ["2026-05-01"]) is None
        _raw_telemetry(instance, "2026-06-04", None)  # written before the landing time was recorded
        assert newest_downlink_landed_at(instance, ["2026-06-04"]) is None


def test_s3_landing_time_is_the_objects_last_modified():
    import boto3
    from moto import mock_aws

    from astromined.storage import BlobNotFoundError, S3BlobStore

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="landing")
        store = S3BlobStore(client, "landing", "zone")
        before = time.time()
        store.put_bytes("downlinks/2026-06-01/sat-001_a.ccsds", b"\x00")
        landed = store.modified_at("downlinks/2026-06-01/sat-001_a.ccsds")
        assert before - 2 <= landed <= time.time() + 1  # S3 LastModified has 1 s resolution
        with pytest.raises(BlobNotFoundError, match="sat-404"):
            store.modified_at("downlinks/2026-06-01/sat-404_a.ccsds")
