"""The production storage path against a real S3 HTTP endpoint on loopback (moto's server, not a mock).

A simulated day of downlinks (the real fleet simulator, real CCSDS bytes, nominal link faults) is uploaded
under the documented landing-zone layout; ``raw_telemetry`` and ``asteroid_features`` are materialized with
the prod resources (``S3LandingZoneResource``, ``S3LakeResource``) and compared with the same bytes ingested
from a local directory landing zone into a local lake.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
from support.services import aws_test_environment, moto_s3_server

import assets.features
import assets.telemetry
from assets.telemetry import RawTelemetryConfig
from astromined import lake_layout
from astromined.calibration import calibration_key
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population, survey_catalog
from astromined.storage import BlobNotFoundError, LocalBlobStore, S3BlobStore, read_parquet, write_parquet
from astromined.telemetry.packet_format import PACKET_SIZE
from resources.lake import LocalLakeResource, S3LakeResource
from resources.landing_zone import CATALOG_KEY, LandingZoneResource, S3LandingZoneResource, day_prefix

DAY = dt.date(2026, 6, 1)
EMPTY_DAY = dt.date(2026, 6, 2)
SATELLITES = range(1, 301)
OBSERVATIONS_PER_SATELLITE = 6
POPULATION_SIZE = 4_000
SEED = 7
LANDING_BUCKET = "astromined-landing"
LAKE_BUCKET = "astromined-lake"
ASSETS = [assets.telemetry.raw_telemetry, assets.features.asteroid_features]


class DirectoryLandingZoneResource(LandingZoneResource):
    """A landing zone that is just a directory someone else filled (no simulation on demand)."""

    root: str

    def store(self) -> LocalBlobStore:
        return LocalBlobStore(self.root)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with aws_test_environment(), moto_s3_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="module")
def s3(endpoint):
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def local_landing(tmp_path_factory) -> Path:
    """One simulated day (300 satellites, nominal faults), the survey catalog and the fleet calibration."""
    root = tmp_path_factory.mktemp("landing")
    store = LocalBlobStore(root)
    population = generate_population(POPULATION_SIZE, SEED)
    for satellite_id in SATELLITES:
        downlink = simulate_satellite_day(population, DAY, satellite_id, OBSERVATIONS_PER_SATELLITE, SEED)
        store.put_bytes(day_prefix(DAY) + downlink.file_name, downlink.data)
    write_parquet(store, CATALOG_KEY, survey_catalog(population))
    lab_calibration = nominal_response(SEED)  # delivered with the fleet, like the catalog
    store.put_bytes(calibration_key(lab_calibration.version), lab_calibration.to_json())
    return root


@pytest.fixture(scope="module")
def buckets(s3, local_landing) -> dict[str, bytes]:
    """The same bytes, uploaded the way a ground station would: one PUT per documented key."""
    s3.create_bucket(Bucket=LANDING_BUCKET)
    s3.create_bucket(Bucket=LAKE_BUCKET)
    local = LocalBlobStore(local_landing)
    uploaded = {}
    for key in local.list_keys(""):
        data = local.get_bytes(key)
        s3.put_object(Bucket=LANDING_BUCKET, Key=f"landing/{key}", Body=data)
        uploaded[f"landing/{key}"] = data
    return uploaded


def _landing(endpoint: str, bucket: str = LANDING_BUCKET) -> S3LandingZoneResource:
    return S3LandingZoneResource(bucket=bucket, prefix="landing", endpoint_url=endpoint)


def _lake(endpoint: str) -> S3LakeResource:
    return S3LakeResource(bucket=LAKE_BUCKET, prefix="lake", endpoint_url=endpoint)


def _materialize(landing_zone, lake, day: dt.date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        partition_key=day.isoformat(),
        resources={"landing_zone": landing_zone, "lake": lake},
        run_config=dg.RunConfig(
            ops={"raw_telemetry": RawTelemetryConfig(expected_satellites=len(SATELLITES))}
        ),
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {
        (c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()
    }


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    texts = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.error is not None:
            texts.append(data.error.to_string())
        if data.user_failure_data is not None and data.user_failure_data.description:
            texts.append(data.user_failure_data.description)
    return "\n".join(texts)


def _bucket_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


@pytest.fixture(scope="module")
def s3_result(endpoint, buckets) -> dg.ExecuteInProcessResult:
    return _materialize(_landing(endpoint), _lake(endpoint), DAY)


@pytest.fixture(scope="module")
def local_result(local_landing, tmp_path_factory) -> tuple[dg.ExecuteInProcessResult, LocalLakeResource]:
    lake = LocalLakeResource(root=str(tmp_path_factory.mktemp("lake")))
    return _materialize(DirectoryLandingZoneResource(root=str(local_landing)), lake, DAY), lake


def test_bucket_holds_the_documented_layout_and_the_resource_lists_it(s3, endpoint, buckets, local_landing):
    day_keys = _bucket_keys(s3, LANDING_BUCKET, f"landing/downlinks/{DAY.isoformat()}/")
    assert len(day_keys) == len(SATELLITES)
    assert all(k.endswith(".ccsds") and k.split("/")[-1].startswith("sat-") for k in day_keys)
    assert _bucket_keys(s3, LANDING_BUCKET, "landing/catalog/") == ["landing/catalog/survey_labels.parquet"]

    landing_zone = _landing(endpoint)
    listed = landing_zone.list_downlinks(DAY)
    assert [d.key for d in listed] == [k.removeprefix("landing/") for k in day_keys]
    assert {d.name: d.size for d in listed} == {k.rsplit("/", 1)[-1]: len(buckets[k]) for k in day_keys}
    assert landing_zone.days_with_downlinks() == [DAY.isoformat()]
    assert landing_zone.read(listed[0].key) == buckets["landing/" + listed[0].key]
    assert landing_zone.list_downlinks(EMPTY_DAY) == []
    expected_catalog = survey_catalog(generate_population(POPULATION_SIZE, SEED))
    pd.testing.assert_frame_equal(landing_zone.survey_catalog(), expected_catalog)


def test_materialize_from_s3_writes_the_lake_and_reconciles(s3, endpoint, buckets, s3_result):
    assert s3_result.success, _failure_text(s3_result)
    checks = _checks(s3_result)
    assert checks[("raw_telemetry", "packets_reconcile")]
    assert checks[("raw_telemetry", "every_satellite_reported")]
    assert checks[("asteroid_features", "model_inputs_finite")]

    partition = DAY.isoformat()
    lake_keys = _bucket_keys(s3, LAKE_BUCKET)
    for key in (
        lake_layout.raw_observations(partition),
        lake_layout.raw_quarantine(partition),
        lake_layout.asteroid_features(partition),
    ):
        assert f"lake/{key}" in lake_keys, lake_keys
    assert all(k.startswith("lake/") for k in lake_keys)
    assert not _bucket_keys(s3, LANDING_BUCKET, "lake/"), "the lake must not write into the landing bucket"

    raw = _metadata(s3_result, "raw_telemetry")
    assert raw["path"] == f"s3://{LAKE_BUCKET}/lake/{lake_layout.raw_observations(partition)}"
    store = _lake(endpoint).store()
    observations = read_parquet(store, lake_layout.raw_observations(partition))
    quarantine = read_parquet(store, lake_layout.raw_quarantine(partition))
    downlink_bytes = [data for key, data in buckets.items() if key.startswith("landing/downlinks/")]
    assert raw["files"] == len(SATELLITES)
    assert raw["bytes_in"] == sum(len(data) for data in downlink_bytes)
    assert raw["packets_ok"] == len(observations) > 0
    assert raw["packets_quarantined"] == len(quarantine)
    assert raw["packets_in"] == raw["packets_ok"] + raw["packets_quarantined"] + raw["duplicates"]
    # Every octet is accounted for: accepted or duplicate packets, or quarantined runs.
    assert raw["bytes_in"] == PACKET_SIZE * (raw["packets_ok"] + raw["duplicates"]) + int(
        quarantine["length"].sum()
    )
    assert raw["satellites_reporting"] == len(SATELLITES)
    assert observations["observed_at"].dt.strftime("%Y-%m-%d").eq(partition).all()
    assert set(observations["satellite_id"]) == set(SATELLITES)

    features_meta = _metadata(s3_result, "asteroid_features")
    features = read_parquet(store, lake_layout.asteroid_features(partition))
    assert features_meta["observations"] == raw["packets_ok"]
    assert features_meta["dagster/row_count"] == len(features)
    assert set(features["asteroid_id"]) == set(observations["asteroid_id"])
    assert int(features["n_observations"].sum()) == len(observations)


def test_s3_result_equals_the_local_directory_result(endpoint, s3_result, local_result):
    local, local_lake = local_result
    assert s3_result.success, _failure_text(s3_result)
    assert local.success, _failure_text(local)
    s3_store = _lake(endpoint).store()
    local_store = local_lake.store()
    partition = DAY.isoformat()
    for key in (
        lake_layout.raw_observations(partition),
        lake_layout.raw_quarantine(partition),
        lake_layout.asteroid_features(partition),
    ):
        pd.testing.assert_frame_equal(read_parquet(s3_store, key), read_parquet(local_store, key))
    # Where the files lie and when they landed differ by store; everything else must not.
    differ_by_store = {"path", "newest_downlink_landed_at"}
    for asset in ("raw_telemetry", "asteroid_features"):
        from_s3 = {k: v for k, v in _metadata(s3_result, asset).items() if k not in differ_by_store}
        from_dir = {k: v for k, v in _metadata(local, asset).items() if k not in differ_by_store}
        assert from_s3 == from_dir, asset
    assert _checks(s3_result) == _checks(local)


def test_empty_day_fails_naming_the_partition(endpoint, buckets):
    result = _materialize(_landing(endpoint), _lake(endpoint), EMPTY_DAY)
    assert not result.success
    text = _failure_text(result)
    assert f"no downlink files for partition {EMPTY_DAY.isoformat()}" in text, text
    assert f"s3://{LANDING_BUCKET}/landing/downlinks/{EMPTY_DAY.isoformat()}/" in text, text
    assert not result.get_asset_materialization_events()


def test_missing_landing_bucket_fails_the_partition(endpoint, buckets):
    result = _materialize(_landing(endpoint, bucket="astromined-no-such-bucket"), _lake(endpoint), DAY)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "raw_telemetry"
    assert result.dagster_run.tags["dagster/partition"] == DAY.isoformat()
    text = _failure_text(result)
    assert "NoSuchBucket" in text, text
    assert not result.get_asset_materialization_events()


def test_s3_blob_store_basics(s3):
    bucket = "astromined-blobstore"
    s3.create_bucket(Bucket=bucket)
    store = S3BlobStore(s3, bucket, "/landing/")  # slashes around the prefix are stripped
    neighbour = S3BlobStore(s3, bucket, "landing-archive")
    neighbour.put_bytes("downlinks/x.ccsds", b"not ours")
    s3.put_object(Bucket=bucket, Key="outside.txt", Body=b"not ours either")

    assert store.list_keys("") == []
    store.put_bytes("downlinks/2026-06-01/a.ccsds", b"\x08\x01" * 50)
    store.put_bytes("downlinks/2026-06-01/b.ccsds", b"")
    store.put_bytes("downlinks/2026-06-02/c.ccsds", b"xyz")
    store.put_bytes("catalog/survey_labels.parquet", b"PAR1")

    assert _bucket_keys(s3, bucket, "landing/") == [
        "landing/catalog/survey_labels.parquet",
        "landing/downlinks/2026-06-01/a.ccsds",
        "landing/downlinks/2026-06-01/b.ccsds",
        "landing/downlinks/2026-06-02/c.ccsds",
    ]
    assert store.get_bytes("downlinks/2026-06-01/a.ccsds") == b"\x08\x01" * 50
    assert store.get_bytes("downlinks/2026-06-01/b.ccsds") == b""
    assert store.size("downlinks/2026-06-01/a.ccsds") == 100
    assert store.size("downlinks/2026-06-01/b.ccsds") == 0
    assert store.exists("downlinks/2026-06-02/c.ccsds")
    assert not store.exists("downlinks/2026-06-02/c")  # a key prefix is not a key
    assert not store.exists("x.ccsds")
    assert store.list_keys("") == [
        "catalog/survey_labels.parquet",
        "downlinks/2026-06-01/a.ccsds",
        "downlinks/2026-06-01/b.ccsds",
        "downlinks/2026-06-02/c.ccsds",
    ]
    assert store.list_keys("downlinks/2026-06-01/") == [
        "downlinks/2026-06-01/a.ccsds",
        "downlinks/2026-06-01/b.ccsds",
    ]
    assert store.list_keys("downlinks/2026-06-03/") == []
    assert neighbour.list_keys("") == ["downlinks/x.ccsds"]
    assert (
        store.describe("catalog/survey_labels.parquet")
        == f"s3://{bucket}/landing/catalog/survey_labels.parquet"
    )

    store.put_bytes("downlinks/2026-06-02/c.ccsds", b"replaced")
    assert store.get_bytes("downlinks/2026-06-02/c.ccsds") == b"replaced"
    store.delete("downlinks/2026-06-02/c.ccsds")
    assert not store.exists("downlinks/2026-06-02/c.ccsds")
    store.delete("downlinks/2026-06-02/c.ccsds")  # deleting a missing key is not an error
    for missing in ("downlinks/2026-06-02/c.ccsds", "never/written"):
        with pytest.raises(BlobNotFoundError, match=f"s3://{bucket}/landing/{missing}"):
            store.get_bytes(missing)
        with pytest.raises(BlobNotFoundError, match=f"s3://{bucket}/landing/{missing}"):
            store.size(missing)
    for bad in ("", "/abs", "a/../b"):
        with pytest.raises(ValueError, match="invalid storage key"):
            store.put_bytes(bad, b"x")
    assert neighbour.get_bytes("downlinks/x.ccsds") == b"not ours"
    assert s3.get_object(Bucket=bucket, Key="outside.txt")["Body"].read() == b"not ours either"


def test_s3_exists_when_another_key_extends_the_key(s3):
    bucket = "astromined-exists"
    s3.create_bucket(Bucket=bucket)
    store = S3BlobStore(s3, bucket, "landing")
    store.put_bytes(CATALOG_KEY, b"PAR1")
    store.put_bytes(CATALOG_KEY + ".md5", b"0" * 32)
    assert store.exists(CATALOG_KEY)
