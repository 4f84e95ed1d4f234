"""The Polars aggregation equals the pandas implementation it replaced, on a realistic simulated day.

``pandas_features`` is the previous ``aggregate_by_asteroid`` (pandas groupby medians), kept here verbatim
as the oracle; it sees the observations with the satellites' calibration already applied, so the
comparison covers the calibration join as well as the aggregation. The day is compared as decoded and with
gaps the simulator never produces (zero reference reflectance, NaN inputs, asteroids whose every rotation
period is missing).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from astromined import fleet, physics
from astromined.features.engineering import (
    FEATURE_TABLE_COLUMNS,
    NORMALIZED_BANDS,
    NORMALIZED_REFLECTANCE,
    RAW_REFLECTANCE,
    aggregate_by_asteroid,
    spectral_shape,
)
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population
from astromined.telemetry.ingest import ingest_day
from astromined.telemetry.packet_format import N_BANDS, NORMALIZATION_BAND

DAY = dt.date(2031, 5, 17)
SEED = 21


def pandas_features(observations: pd.DataFrame) -> pd.DataFrame:
    """The pandas implementation replaced by Polars (observation_features + aggregate_by_asteroid)."""
    raw = observations[RAW_REFLECTANCE].to_numpy(np.float64)
    reference = raw[:, NORMALIZATION_BAND : NORMALIZATION_BAND + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = np.where(reference > 0, raw / reference, np.nan)
    per_obs = pd.DataFrame(normalized[:, NORMALIZED_BANDS], columns=NORMALIZED_REFLECTANCE)
    per_obs["asteroid_id"] = observations["asteroid_id"].to_numpy()
    per_obs["satellite_id"] = observations["satellite_id"].to_numpy()
    per_obs["sector"] = fleet.sector_of_satellite(observations["satellite_id"].to_numpy())
    per_obs["albedo"] = physics.albedo_from_flux_and_magnitude(
        observations["thermal_flux"].to_numpy(np.float64),
        observations["apparent_magnitude"].to_numpy(np.float64),
        observations["phase_angle_deg"].to_numpy(np.float64),
    )
    for column in ("radar_albedo", "rotation_period_h", "lightcurve_amplitude_mag"):
        per_obs[column] = observations[column].to_numpy(np.float64)
    grouped = per_obs.groupby("asteroid_id", sort=True)
    table = grouped[
        [*NORMALIZED_REFLECTANCE, "albedo", "rotation_period_h", "lightcurve_amplitude_mag"]
    ].median()
    table = table.reset_index()
    table["radar_albedo"] = grouped["radar_albedo"].mean().to_numpy()
    table["n_observations"] = grouped.size().to_numpy().astype(np.int64)
    table["n_satellites"] = grouped["satellite_id"].nunique().to_numpy().astype(np.int64)
    table["sector"] = grouped["sector"].min().to_numpy().astype(np.int64)
    full = np.ones((len(table), N_BANDS))
    full[:, NORMALIZED_BANDS] = table[NORMALIZED_REFLECTANCE].to_numpy()
    table["spectral_slope"], table["band_depth_1um"], table["band_depth_2um"] = spectral_shape(full)
    table["asteroid_id"] = table["asteroid_id"].astype(np.int64)
    return table[FEATURE_TABLE_COLUMNS]


def calibrated_by_hand(observations: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The raw columns with each satellite's response removed, by a numpy gather (not the product's join)."""
    response = nominal_response(seed)
    rows = np.searchsorted(response.satellite_ids, observations["satellite_id"].to_numpy())
    out = observations.copy()
    out[RAW_REFLECTANCE] = observations[RAW_REFLECTANCE].to_numpy(np.float64) / response.gains[rows]
    out["apparent_magnitude"] = (
        observations["apparent_magnitude"].to_numpy(np.float64) - (response.zero_points_mag[rows])
    )
    return out


def with_gaps(observations: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    out = observations.copy()
    n = len(out)
    ids = out["asteroid_id"].to_numpy()
    out.loc[rng.uniform(size=n) < 0.02, RAW_REFLECTANCE[NORMALIZATION_BAND]] = 0.0
    out.loc[rng.uniform(size=n) < 0.02, "thermal_flux"] = np.nan
    out.loc[rng.uniform(size=n) < 0.03, "lightcurve_amplitude_mag"] = np.nan
    out.loc[rng.uniform(size=n) < 0.02, RAW_REFLECTANCE[7]] = np.nan
    out.loc[np.isin(ids, np.unique(ids)[::20]), "rotation_period_h"] = np.nan
    return out


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    population = generate_population(1_000, SEED)
    downlinks = [simulate_satellite_day(population, DAY, s, 24, SEED) for s in range(1, 151)]
    return ingest_day(DAY, [(d.file_name, lambda d=d: d.data) for d in downlinks]).observations


@pytest.mark.parametrize("gaps", [False, True], ids=["as-decoded", "with-gaps"])
def test_polars_equals_the_pandas_implementation(day, gaps) -> None:
    observations = with_gaps(day) if gaps else day
    expected = pandas_features(calibrated_by_hand(observations, SEED))
    assert expected["n_observations"].max() >= 4 and expected["n_satellites"].max() >= 2
    if gaps:
        assert expected["rotation_period_h"].isna().any()  # some asteroids never had a rotation period
    for source in (observations, pa.Table.from_pandas(observations)):
        got = aggregate_by_asteroid(source, nominal_response(SEED))
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
