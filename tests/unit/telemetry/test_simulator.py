"""The fleet simulator: determinism, population priors, survey catalog, downlink file names."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined import fleet
from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.population import LABELLED_FRACTION, generate_population, survey_catalog
from astromined.taxonomy import COMPLEXES
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import decode_file
from astromined.telemetry.downlink_files import downlink_file_name, parse_downlink_file_name
from astromined.telemetry.ingest import day_window

N_ASTEROIDS = 2_000
POP_SEED = 11
DAY = dt.date(2031, 5, 17)
OBSERVATIONS = 20
CLEAN = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)
WAVELENGTHS = np.asarray(fmt.BAND_WAVELENGTHS_UM)


@pytest.fixture(scope="module")
def population():
    return generate_population(N_ASTEROIDS, POP_SEED)


def _band(um: float) -> int:
    return int(np.argmin(np.abs(WAVELENGTHS - um)))


def band_depth(spectra: np.ndarray, centre_um: float, left_um: float, right_um: float) -> np.ndarray:
    """1 - R(centre) / straight continuum between the two shoulder bands."""
    c, lft, rgt = _band(centre_um), _band(left_um), _band(right_um)
    weight = (WAVELENGTHS[c] - WAVELENGTHS[lft]) / (WAVELENGTHS[rgt] - WAVELENGTHS[lft])
    continuum = spectra[:, lft] + weight * (spectra[:, rgt] - spectra[:, lft])
    return 1.0 - spectra[:, c] / continuum


# --- determinism ------------------------------------------------------------------------------------------


def test_same_day_satellite_and_seed_give_identical_bytes(population) -> None:
    first = simulate_satellite_day(population, DAY, 42, OBSERVATIONS, seed=7)
    again = simulate_satellite_day(population, DAY, 42, OBSERVATIONS, seed=7)
    assert first.data == again.data
    assert first == again
    assert len(first.data) >= fmt.PACKET_SIZE


@pytest.mark.parametrize(
    "change",
    [{"seed": 8}, {"satellite_id": 43}, {"day": DAY + dt.timedelta(days=1)}],
    ids=["seed", "satellite", "day"],
)
def test_changing_seed_satellite_or_day_changes_the_bytes(population, change: dict) -> None:
    base = {"day": DAY, "satellite_id": 42, "observations": OBSERVATIONS, "seed": 7}
    reference = simulate_satellite_day(population, **base)
    other = simulate_satellite_day(population, **{**base, **change})
    assert other.data != reference.data


def test_population_is_deterministic_without_the_cache() -> None:
    build = generate_population.__wrapped__
    a, b = build(300, 4), build(300, 4)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    assert not build(300, 5).table.equals(a.table)


def test_clean_downlink_decodes_completely(population) -> None:
    satellite = 42
    downlink = simulate_satellite_day(population, DAY, satellite, OBSERVATIONS, seed=7, link=CLEAN)
    assert len(downlink.data) == OBSERVATIONS * fmt.PACKET_SIZE
    start, end = day_window(DAY)
    decoded = decode_file(downlink.data, downlink.file_name, start, end, downlink.received_at.timestamp())
    obs = decoded.observations
    assert decoded.quarantine.empty
    assert len(obs) == OBSERVATIONS
    assert (obs["satellite_id"] == satellite).all()
    steps = np.diff(obs["sequence_count"].to_numpy()) % fmt.SEQUENCE_COUNT_MODULO
    assert (steps == 1).all()
    assert obs["observed_at"].is_monotonic_increasing
    # The satellite observes its own sector of the belt.
    table = population.table.set_index("asteroid_id")
    sectors = table.loc[obs["asteroid_id"], "sector"].to_numpy()
    assert (sectors == fleet.sector_of_satellite(satellite)).all()
    # Radar only within 5,000 km; NaN means not measured.
    far = obs["range_km"] >= 5_000.0
    assert obs.loc[far, "radar_albedo"].isna().all()
    assert obs.loc[~far, "radar_albedo"].notna().all()


def test_sequence_counts_continue_from_one_day_to_the_next(population) -> None:
    counts = []
    for offset in (0, 1):
        day = DAY + dt.timedelta(days=offset)
        downlink = simulate_satellite_day(population, day, 9, OBSERVATIONS, seed=7, link=CLEAN)
        counts.append(decode_file(downlink.data, downlink.file_name).observations["sequence_count"])
    assert (counts[1].iloc[0] - counts[0].iloc[-1]) % fmt.SEQUENCE_COUNT_MODULO == 1


def test_faults_follow_the_link_conditions(population) -> None:
    lossy = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.5, truncated_file_rate=0.0)
    noisy = LinkConditions(duplicate_rate=0.5, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=1.0)
    kept = simulate_satellite_day(population, DAY, 3, 200, seed=1, link=lossy)
    assert len(kept.data) % fmt.PACKET_SIZE == 0
    assert len(kept.data) < 200 * fmt.PACKET_SIZE
    padded = simulate_satellite_day(population, DAY, 3, 200, seed=1, link=noisy)
    assert len(padded.data) > 200 * fmt.PACKET_SIZE
    assert len(padded.data) % fmt.PACKET_SIZE != 0


def test_downlink_is_received_the_next_day_after_light_delay(population) -> None:
    downlink = simulate_satellite_day(population, DAY, 42, OBSERVATIONS, seed=7)
    midnight = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert dt.timedelta(seconds=600) <= downlink.received_at - midnight <= dt.timedelta(seconds=1_500)
    assert downlink.file_name == downlink_file_name(42, downlink.received_at)
    assert parse_downlink_file_name(downlink.file_name) == (42, downlink.received_at)


# --- population priors ------------------------------------------------------------------------------------


def test_s_types_dominate_the_inner_belt(population) -> None:
    t = population.table
    shares = t.loc[t["semi_major_axis_au"] < 2.5, "complex"].value_counts(normalize=True)
    assert shares.idxmax() == "S"
    assert shares["S"] > 0.4


def test_c_d_p_dominate_the_outer_belt(population) -> None:
    t = population.table
    shares = t.loc[t["semi_major_axis_au"] >= 2.82, "complex"].value_counts(normalize=True)
    assert shares.idxmax() == "C"
    assert shares.reindex(["C", "D", "P"]).sum() > 0.6
    assert shares.get("S", 0.0) < 0.2


def test_x_types_split_by_albedo_and_m_types_are_radar_bright_and_metal_rich(population) -> None:
    by_complex = population.table.groupby("complex")
    albedo = by_complex["albedo"].median()
    assert albedo["E"] > albedo["M"] > albedo["P"]
    radar = by_complex["radar_albedo"].mean()
    assert radar["M"] > radar["S"]
    assert radar["M"] == radar.max()
    metal = by_complex["metal_richness"].mean()
    assert metal["M"] == metal.max()


def test_v_types_have_the_deepest_1_and_2_micron_bands(population) -> None:
    complexes = population.table["complex"].to_numpy()
    one_um = band_depth(population.spectra, 0.95, 0.55, 1.50)
    two_um = band_depth(population.spectra, 2.05, 1.50, 2.45)
    depth1 = pd.Series(one_um).groupby(complexes).median()
    depth2 = pd.Series(two_um).groupby(complexes).median()
    assert depth1["V"] > depth1["S"] > depth1["C"]
    assert depth1["V"] == depth1.max()
    assert depth2["V"] > depth2["S"]


def test_s_types_are_redder_and_brighter_than_flat_dark_c_types(population) -> None:
    t = population.table
    slope = pd.Series(population.spectra[:, _band(1.50)] - population.spectra[:, _band(0.55)])
    by_complex = slope.groupby(t["complex"].to_numpy()).median()
    assert by_complex["S"] > by_complex["C"]
    assert abs(by_complex["C"]) < 0.1
    assert t.groupby("complex")["albedo"].median()["C"] < 0.1 < t.groupby("complex")["albedo"].median()["S"]


def test_population_table_is_well_formed(population) -> None:
    t = population.table
    assert len(t) == N_ASTEROIDS
    assert t["asteroid_id"].tolist() == list(range(1, N_ASTEROIDS + 1))
    assert set(t["complex"]) <= set(COMPLEXES)
    assert population.spectra.shape == (N_ASTEROIDS, fmt.N_BANDS)
    np.testing.assert_allclose(population.spectra[:, fmt.NORMALIZATION_BAND], 1.0)
    assert t["semi_major_axis_au"].between(fleet.INNER_EDGE_AU, fleet.OUTER_EDGE_AU).all()
    np.testing.assert_array_equal(
        t["sector"], fleet.sector_of_orbit(t["semi_major_axis_au"].to_numpy(), t["longitude_deg"].to_numpy())
    )
    assert t["metal_richness"].between(0.0, 1.0).all()
    for column in ("radar_albedo", "rotation_period_h", "lightcurve_amplitude_mag"):
        low, high = fmt.VALUE_RANGES[column]
        assert t[column].between(low, high).all(), column


def test_diameters_follow_the_power_law(population) -> None:
    d = population.table["diameter_km"]
    assert d.between(1.0, 300.0).all()
    # N(>D) ∝ D^-2 from 1 km: a quarter above 2 km, one percent above 10 km.
    assert 0.18 < (d > 2.0).mean() < 0.32
    assert (d > 10.0).mean() < 0.03


# --- survey catalog ---------------------------------------------------------------------------------------


def test_survey_catalog_is_a_labelled_minority(population) -> None:
    catalog = survey_catalog(population)
    assert list(catalog.columns) == ["asteroid_id", "complex", "metal_richness"]
    fraction = len(catalog) / N_ASTEROIDS
    assert LABELLED_FRACTION == 0.2
    assert 0.15 < fraction < 0.25
    assert catalog["asteroid_id"].is_unique
    truth = population.table.set_index("asteroid_id").loc[catalog["asteroid_id"]]
    assert truth["labelled"].all()
    assert catalog["complex"].tolist() == truth["complex"].tolist()
    np.testing.assert_array_equal(catalog["metal_richness"], truth["metal_richness"])
    assert set(catalog["complex"]) <= set(COMPLEXES)
    assert len(set(catalog["complex"])) >= 5


# --- downlink file names ----------------------------------------------------------------------------------


def test_file_name_format() -> None:
    when = dt.datetime(2031, 5, 18, 0, 15, 0, tzinfo=dt.UTC)
    assert downlink_file_name(7, when) == "sat-007_20310518T001500Z.ccsds"
    assert parse_downlink_file_name("sat-007_20310518T001500Z.ccsds") == (7, when)
    assert parse_downlink_file_name("downlinks/2031-05-17/sat-500_20310518T001500Z.ccsds") == (500, when)


@settings(max_examples=50, deadline=None)
@given(
    satellite=st.integers(min_value=1, max_value=fleet.N_SATELLITES),
    received=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
)
def test_file_name_round_trip(satellite: int, received: dt.datetime) -> None:
    received = received.replace(microsecond=0, tzinfo=dt.UTC)
    name = downlink_file_name(satellite, received)
    assert re.fullmatch(r"sat-\d{3}_\d{8}T\d{6}Z\.ccsds", name)
    assert parse_downlink_file_name(name) == (satellite, received)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "notes.txt",
        "sat-007_20310518T001500Z",
        "sat-007_20310518T001500Z.ccsds.gz",
        "sat-007_20310518T001500Z.bin",
        "sat-007-20310518T001500Z.ccsds",
        "SAT-007_20310518T001500Z.ccsds",
        "satellite-007_20310518T001500Z.ccsds",
        "sat-abc_20310518T001500Z.ccsds",
        "sat-_20310518T001500Z.ccsds",
        "sat-7_20310518T001500Z.ccsds",
        "sat--07_20310518T001500Z.ccsds",
        "sat- 07_20310518T001500Z.ccsds",
        "sat-0007_20310518T001500Z.ccsds",
        "sat-007_20311318T001500Z.ccsds",
        "sat-007_20310518T251500Z.ccsds",
        "sat-007_20310518T001500.ccsds",
        "sat-007_2031518T01500Z.ccsds",
        "sat-007_2031-05-18T00:15:00Z.ccsds",
        "downlinks/2031-05-17/sat-007_20310518T001500Z.ccsds/",
    ],
)
def test_bad_file_names_are_rejected_naming_the_file(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))) as info:
        parse_downlink_file_name(name)
    assert "sat-NNN_YYYYMMDDTHHMMSSZ.ccsds" in str(info.value)
