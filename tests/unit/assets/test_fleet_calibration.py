"""The fleet calibration table through the landing zone resource, and asteroid_features applying it."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.features import asteroid_features
from astromined import lake_layout
from astromined.calibration import CalibrationError, FleetCalibration, calibration_key
from astromined.features.engineering import aggregate_by_asteroid
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import FLEET_LAUNCH, nominal_response
from astromined.sim.population import generate_population
from astromined.storage import LocalBlobStore, read_parquet, write_parquet
from astromined.telemetry.ingest import ingest_day
from resources.lake import LocalLakeResource
from resources.landing_zone import LandingZoneMissingError, LocalLandingZoneResource
from resources.simulated_landing_zone import SimulatedLandingZoneResource

SEED = 9
DAY = dt.date(2031, 5, 17)


def delivered(version: int, valid_from: dt.date, gain: float) -> FleetCalibration:
    ids = np.arange(1, 501)
    return FleetCalibration(version, valid_from, ids, np.full((500, 12), gain), np.zeros(500))


def test_the_simulated_landing_zone_delivers_the_fleets_lab_calibration(tmp_path) -> None:
    zone = SimulatedLandingZoneResource(root=str(tmp_path), seed=SEED)
    calibration = zone.fleet_calibration(DAY)
    assert (tmp_path / calibration_key(1)).is_file()
    assert (calibration.version, calibration.valid_from) == (1, FLEET_LAUNCH)
    np.testing.assert_array_equal(calibration.gains, nominal_response(SEED).gains)
    np.testing.assert_array_equal(calibration.zero_points_mag, nominal_response(SEED).zero_points_mag)


def test_the_version_in_force_on_the_day_is_used(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    zone = LocalLandingZoneResource(root=str(tmp_path))
    with pytest.raises(LandingZoneMissingError, match="no fleet calibration table"):
        zone.fleet_calibration(DAY)
    for table in (delivered(1, dt.date(2025, 1, 1), 1.0), delivered(2, dt.date(2031, 5, 10), 1.1)):
        store.put_bytes(calibration_key(table.version), table.to_json())
    assert zone.fleet_calibration(dt.date(2031, 5, 9)).version == 1
    assert zone.fleet_calibration(DAY).version == 2
    # A file whose name and content disagree is refused, naming the file.
    store.put_bytes(calibration_key(7), delivered(3, dt.date(2025, 1, 1), 1.0).to_json())
    with pytest.raises(CalibrationError, match=r"fleet_response_v0007\.json holds version 3"):
        zone.fleet_calibration(DAY)


def test_asteroid_features_applies_the_calibration_in_force(tmp_path) -> None:
    population = generate_population(600, SEED)
    downlinks = [simulate_satellite_day(population, DAY, s, 10, SEED) for s in range(1, 101)]
    observations = ingest_day(DAY, [(d.file_name, lambda d=d: d.data) for d in downlinks]).observations
    lake = LocalLakeResource(root=str(tmp_path / "lake"))
    write_parquet(lake.store(), lake_layout.raw_observations(DAY.isoformat()), observations)
    zone = SimulatedLandingZoneResource(root=str(tmp_path / "landing"), seed=SEED)

    results = list(
        asteroid_features(dg.build_asset_context(partition_key=DAY.isoformat()), lake=lake, landing_zone=zone)
    )
    materialization = next(r for r in results if isinstance(r, dg.MaterializeResult))
    assert materialization.metadata["calibration_version"] == 1
    assert all(r.passed for r in results if isinstance(r, dg.AssetCheckResult))
    written = read_parquet(lake.store(), lake_layout.asteroid_features(DAY.isoformat()))
    pd.testing.assert_frame_equal(written, aggregate_by_asteroid(observations, nominal_response(SEED)))
    uncalibrated = aggregate_by_asteroid(observations, FleetCalibration.identity(range(1, 501)))
    assert not np.allclose(written["refl_norm_0.45um"], uncalibrated["refl_norm_0.45um"], rtol=1e-3)


@pytest.mark.fault("bad-input", "raw observation table lacks a column the features read")
def test_asteroid_features_names_the_partition_file_and_missing_column(tmp_path) -> None:
    population = generate_population(200, SEED)
    downlinks = [simulate_satellite_day(population, DAY, s, 5, SEED) for s in range(1, 11)]
    observations = ingest_day(DAY, [(d.file_name, lambda d=d: d.data) for d in downlinks]).observations
    lake = LocalLakeResource(root=str(tmp_path / "lake"))
    key = lake_layout.raw_observations(DAY.isoformat())
    write_parquet(lake.store(), key, observations.drop(columns=["thermal_flux"]))
    zone = SimulatedLandingZoneResource(root=str(tmp_path / "landing"), seed=SEED)
    context = dg.build_asset_context(partition_key=DAY.isoformat())
    with pytest.raises(dg.Failure) as failure:
        list(asteroid_features(context, lake=lake, landing_zone=zone))
    message = failure.value.description
    assert DAY.isoformat() in message and "observations.parquet" in message and "'thermal_flux'" in message


def test_read_arrow_columns_decodes_only_the_columns_asked_for(tmp_path) -> None:
    from astromined.storage import read_arrow_columns

    store = LocalBlobStore(tmp_path)
    write_parquet(store, "t.parquet", pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0], "c": ["x", "y"]}))
    table = read_arrow_columns(store, "t.parquet", ["c", "a"])
    assert table.column_names == ["c", "a"] and table.num_rows == 2
    with pytest.raises(ValueError, match=r"t\.parquet lacks column\(s\) \['d'\]"):
        read_arrow_columns(store, "t.parquet", ["a", "d"])
