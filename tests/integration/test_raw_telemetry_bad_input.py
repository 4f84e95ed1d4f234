"""raw_telemetry against hostile landing zones: every bad input is an error or a quarantine row naming
the file and offset; a failed run leaves no partial partition; a good re-run replaces the day."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

import assets.telemetry
from astromined import lake_layout
from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.storage import read_parquet
from astromined.telemetry.packet_format import PACKET_SIZE
from resources.lake import LocalLakeResource
from resources.landing_zone import LocalLandingZoneResource, day_prefix

DAY = dt.date(2026, 6, 3)
CLEAN = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)
SATELLITES = (1, 2, 3)
OBSERVATIONS = 30


def _landing_zone(tmp_path) -> LocalLandingZoneResource:
    landing_zone = LocalLandingZoneResource(root=str(tmp_path / "landing"))
    population = generate_population(1_000, 3)
    for satellite in SATELLITES:
        downlink = simulate_satellite_day(population, DAY, satellite, OBSERVATIONS, 3, CLEAN)
        landing_zone.store().put_bytes(day_prefix(DAY) + downlink.file_name, downlink.data)
    return landing_zone


def _materialize(landing_zone, lake, expect_success=True, expected_satellites=None):
    expected = len(SATELLITES) if expected_satellites is None else expected_satellites
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [assets.telemetry.raw_telemetry],
            partition_key=DAY.isoformat(),
            resources={"landing_zone": landing_zone, "lake": lake},
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"raw_telemetry": {"config": {"expected_satellites": expected}}}},
        )
    assert result.success is expect_success
    return result


def _quarantine(lake) -> pd.DataFrame:
    return read_parquet(lake.store(), lake_layout.raw_quarantine(DAY.isoformat()))


def _add(landing_zone, name: str, data: bytes) -> None:
    landing_zone.store().put_bytes(day_prefix(DAY) + name, data)


def _file_bytes(landing_zone, satellite: int) -> tuple[str, bytes]:
    [key] = [k for k in landing_zone.store().list_keys(day_prefix(DAY)) if f"sat-{satellite:03d}_" in k]
    return key.rsplit("/", 1)[-1], landing_zone.store().get_bytes(key)


def test_clean_day_has_no_quarantine(tmp_path):
    landing_zone, lake = _landing_zone(tmp_path), LocalLakeResource(root=str(tmp_path / "lake"))
    _materialize(landing_zone, lake)
    assert _quarantine(lake).empty
    observations = read_parquet(lake.store(), lake_layout.raw_observations(DAY.isoformat()))
    assert len(observations) == len(SATELLITES) * OBSERVATIONS


@pytest.mark.parametrize(
    ("kind", "expected_reason"),
    [("truncated", "truncated_packet"), ("random", "unframed_bytes"), ("png", "unrecognized_file")],
)
def test_bad_files_are_quarantined_by_file_and_offset(tmp_path, kind, expected_reason):
    landing_zone, lake = _landing_zone(tmp_path), LocalLakeResource(root=str(tmp_path / "lake"))
    name, data = _file_bytes(landing_zone, 2)
    if kind == "truncated":
        bad_name, bad = name, data[: len(data) - 37]  # the last packet loses its tail
        landing_zone.store().put_bytes(day_prefix(DAY) + name, bad)
        offset = len(bad) - (PACKET_SIZE - 37)
    elif kind == "random":
        bad_name = name.replace("sat-002", "sat-004")
        bad = bytes(range(256)) * 4
        _add(landing_zone, bad_name, bad)
        offset = 0
    else:
        bad_name, bad = "survey-photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
        _add(landing_zone, bad_name, bad)
        offset = 0
    result = _materialize(landing_zone, lake)
    quarantine = _quarantine(lake)
    rows = quarantine[quarantine["reason"] == expected_reason]
    assert list(rows["source_file"]) == [bad_name]
    assert int(rows["offset"].iloc[0]) == offset
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["quarantine_by_reason"].value[expected_reason] == 1
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["packets_reconcile"]


@pytest.mark.fault("bad-input", "zero-length downlink: empty_file row, counted, its satellite named missing")
def test_zero_length_file_is_quarantined_and_missing_satellites_are_named(tmp_path):
    landing_zone, lake = _landing_zone(tmp_path), LocalLakeResource(root=str(tmp_path / "lake"))
    empty_name, _ = _file_bytes(landing_zone, 3)
    landing_zone.store().put_bytes(day_prefix(DAY) + empty_name, b"")  # satellite 3 sent an empty file
    garbled_name = empty_name.replace("sat-003", "sat-005")
    _add(landing_zone, garbled_name, bytes(range(256)))  # satellite 5: nothing but quarantined octets
    result = _materialize(landing_zone, lake, expected_satellites=6)  # satellites 4 and 6 sent nothing

    quarantine = _quarantine(lake)
    [row] = quarantine[quarantine["reason"] == "empty_file"].itertuples()
    assert (row.source_file, row.offset, row.length, row.satellite_id) == (empty_name, 0, 0, 3)
    assert empty_name in row.detail
    [event] = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    assert metadata["quarantine_by_reason"]["empty_file"] == 1
    assert metadata["files"] == 4
    assert metadata["packets_in"] == 2 * OBSERVATIONS + 1 + metadata["quarantine_by_reason"]["unframed_bytes"]
    assert len(quarantine) == metadata["packets_quarantined"]

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    reconcile = checks["packets_reconcile"]
    assert reconcile.passed
    assert reconcile.metadata["empty_files"].value == 1
    assert reconcile.metadata["accounted"].value == reconcile.metadata["packets_in"].value
    coverage = checks["every_satellite_reported"]
    assert not coverage.passed
    assert coverage.severity == dg.AssetCheckSeverity.WARN
    found = {k: v.value for k, v in coverage.metadata.items()}
    assert found["missing"] == 4
    assert found["missing_satellites"] == "3-6"
    assert found["missing_without_files"] == "4, 6"
    assert found["missing_with_only_empty_files"] == "3"
    assert found["missing_with_every_packet_quarantined"] == "5"
    assert (found["expected"], found["satellites_reporting"]) == (6, 2)
    assert coverage.description == (
        "4 of 6 expected satellites sent no accepted packet: 3-6 "
        "(no file: 4, 6; only empty files: 3; every packet quarantined: 5)"
    )


def test_empty_day_fails_and_keeps_the_previous_partition(tmp_path):
    landing_zone, lake = _landing_zone(tmp_path), LocalLakeResource(root=str(tmp_path / "lake"))
    _materialize(landing_zone, lake)
    before = read_parquet(lake.store(), lake_layout.raw_observations(DAY.isoformat()))
    for key in landing_zone.store().list_keys(day_prefix(DAY)):
        landing_zone.store().delete(key)
    result = _materialize(landing_zone, lake, expect_success=False)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert f"no downlink files for partition {DAY}" in str(
        failure.step_failure_data.user_failure_data.description
    )
    after = read_parquet(lake.store(), lake_layout.raw_observations(DAY.isoformat()))
    pd.testing.assert_frame_equal(before, after)
    assert not list((tmp_path / "lake").rglob("*.tmp"))


def test_missing_landing_zone_fails_naming_it(tmp_path):
    lake = LocalLakeResource(root=str(tmp_path / "lake"))
    landing_zone = LocalLandingZoneResource(root=str(tmp_path / "never-mounted"))
    result = _materialize(landing_zone, lake, expect_success=False)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = str(failure.step_failure_data.user_failure_data.description)
    assert "never-mounted" in message and DAY.isoformat() in message
    assert not lake.store().exists(lake_layout.raw_observations(DAY.isoformat()))


def test_failure_mid_day_leaves_no_partial_partition(tmp_path):
    landing_zone, lake = _landing_zone(tmp_path), LocalLakeResource(root=str(tmp_path / "lake"))

    class FlakyLandingZone(LocalLandingZoneResource):
        def read(self, key: str) -> bytes:
            if "sat-003" in key:
                raise OSError(f"read error on {key}")
            return super().read(key)

    result = _materialize(FlakyLandingZone(root=landing_zone.root), lake, expect_success=False)
    assert not result.success
    assert not lake.store().exists(lake_layout.raw_observations(DAY.isoformat()))
    assert not lake.store().exists(lake_layout.raw_quarantine(DAY.isoformat()))
    assert lake.store().list_keys("") == []
