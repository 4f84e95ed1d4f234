"""Drift scenarios: serialization, validation, activation rules, determinism, and what each one moves.

Effects are measured the way the drift sensor will see them: through the real decoder
(astromined.telemetry.decode / ingest) and the feature code (astromined.features.engineering).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined import fleet
from astromined.environment import ConfigurationError, load_settings
from astromined.features.engineering import (
    NORMALIZED_BANDS,
    NORMALIZED_REFLECTANCE,
    aggregate_by_asteroid,
    observation_features,
)
from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population
from astromined.sim.scenarios import (
    DEMO_DRIFT,
    IR_BANDS,
    PRESETS,
    CalibrationStep,
    CompositionShift,
    CorruptionBurst,
    Effects,
    GainDrift,
    ScenarioError,
    Scenarios,
)
from astromined.taxonomy import COMPLEXES
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import decode_file
from astromined.telemetry.ingest import DayIngest, day_window, ingest_day

DAY = dt.date(2031, 5, 17)
SEED = 7
CLEAN = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)
# The fleet calibration of the simulation seed: features below are calibrated, as the asset makes them.
FLEET = nominal_response(SEED)


@pytest.fixture(scope="module")
def population():
    return generate_population(3_000, 11)


def observations(population, satellites, n, scenarios=None, day=DAY, link=CLEAN) -> pd.DataFrame:
    frames = []
    for satellite in satellites:
        downlink = simulate_satellite_day(population, day, satellite, n, SEED, link=link, scenarios=scenarios)
        frames.append(decode_file(downlink.data, downlink.file_name, *day_window(day)).observations)
    return pd.concat(frames, ignore_index=True)


def ingest(population, satellites, n, scenarios=None, link=None) -> DayIngest:
    downlinks = [simulate_satellite_day(population, DAY, s, n, SEED, link, scenarios) for s in satellites]
    files = [(f"downlinks/{DAY}/{d.file_name}", lambda d=d: d.data) for d in downlinks]
    return ingest_day(DAY, files)


# --- JSON ------------------------------------------------------------------------------------------------

_dates = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2040, 12, 31))
_spans = st.integers(min_value=0, max_value=60)
_satellites = st.lists(st.integers(1, fleet.N_SATELLITES), min_size=1, max_size=5).map(tuple)
_rates = st.none() | st.floats(min_value=0.0, max_value=1.0)


@st.composite
def _scenario(draw):
    start = draw(_dates)
    end = start + dt.timedelta(days=draw(_spans))
    kind = draw(st.sampled_from(["gain", "composition", "calibration", "burst"]))
    if kind == "gain":
        rate = draw(st.floats(min_value=-0.01, max_value=0.05))
        return GainDrift(satellites=draw(_satellites), start=start, end=end, rate_per_day=rate)
    if kind == "composition":
        return CompositionShift(
            sectors=tuple(draw(st.lists(st.integers(0, fleet.N_SECTORS - 1), min_size=1, max_size=5))),
            start=start,
            end=end,
            complex=draw(st.sampled_from(COMPLEXES)),
            weight=draw(st.floats(min_value=0.01, max_value=100.0)),
        )
    if kind == "calibration":
        by_band = draw(st.booleans())
        factor = st.floats(min_value=0.5, max_value=1.5)
        return CalibrationStep(
            satellites=draw(st.none() | _satellites),
            start=start,
            end=draw(st.none() | st.just(end)),
            ir_factor=None if by_band else draw(factor),
            factor_by_band=tuple(draw(st.lists(factor, min_size=fmt.N_BANDS, max_size=fmt.N_BANDS)))
            if by_band
            else None,
        )
    rates = {name: draw(_rates) for name in ("bit_flip_rate", "truncated_file_rate", "duplicate_rate")}
    least = 0 if any(r is not None for r in rates.values()) else 1  # a burst must do something
    garbage = draw(st.integers(min_value=least, max_value=5000))
    return CorruptionBurst(
        satellites=draw(st.none() | _satellites), start=start, end=end, garbage_bytes=garbage, **rates
    )


@settings(max_examples=50, deadline=None)
@given(items=st.lists(_scenario(), max_size=5))
def test_json_round_trip_is_exact_and_canonical(items) -> None:
    scenarios = Scenarios(tuple(items))
    text = scenarios.to_json()
    assert Scenarios.from_json(text) == scenarios
    assert Scenarios.from_json(text).to_json() == text
    assert json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")) == text


def test_empty_scenarios_and_presets() -> None:
    assert Scenarios().to_json() == "[]"
    assert Scenarios.from_json("[]") == Scenarios() == PRESETS["none"]
    assert set(PRESETS) == {"none", "demo"}
    assert PRESETS["demo"] is DEMO_DRIFT
    assert Scenarios.from_json(DEMO_DRIFT.to_json()) == DEMO_DRIFT
    assert {type(s) for s in DEMO_DRIFT} == {GainDrift, CompositionShift, CalibrationStep, CorruptionBurst}
    # The demo month starts clean: a reference window before the first scenario.
    assert all(s.start > dt.date(2025, 3, 5) for s in DEMO_DRIFT)
    assert not DEMO_DRIFT.on_day(dt.date(2025, 3, 5))


def _entry(**changes) -> dict:
    base = {"kind": "gain_drift", "satellites": [3], "start": "2031-05-01", "end": "2031-05-09"}
    return {**base, "rate_per_day": 0.01, **changes}


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (_entry(kind="solar_flare"), "scenarios[0].kind"),
        ({"satellites": [1]}, "scenarios[0].kind"),
        (_entry(end="2031-04-30"), "scenarios[0].end"),
        (_entry(start="May 1st"), "scenarios[0].start"),
        (_entry(satellites=[3, 501]), "scenarios[0].satellites"),
        (_entry(satellites=[0]), "scenarios[0].satellites"),
        (_entry(satellites=[]), "scenarios[0].satellites"),
        (_entry(satellites=["7"]), "scenarios[0].satellites"),
        (_entry(rate_per_day="fast"), "scenarios[0].rate_per_day"),
        (_entry(rate_per_day=-0.2), "scenarios[0].rate_per_day"),  # the gain would reach zero
        (_entry(gain=1.1), "scenarios[0].gain"),
        ({k: v for k, v in _entry().items() if k != "rate_per_day"}, "scenarios[0].rate_per_day"),
        (
            {"kind": "composition_shift", "sectors": [50], "start": "2031-05-01", "end": "2031-05-02"}
            | {"complex": "M", "weight": 2.0},
            "scenarios[0].sectors",
        ),
        (
            {"kind": "composition_shift", "sectors": [-1], "start": "2031-05-01", "end": "2031-05-02"}
            | {"complex": "M", "weight": 2.0},
            "scenarios[0].sectors",
        ),
        (
            {"kind": "composition_shift", "sectors": [4], "start": "2031-05-01", "end": "2031-05-02"}
            | {"complex": "Q", "weight": 2.0},
            "scenarios[0].complex",
        ),
        (
            {"kind": "composition_shift", "sectors": [4], "start": "2031-05-01", "end": "2031-05-02"}
            | {"complex": "M", "weight": 0.0},
            "scenarios[0].weight",
        ),
        ({"kind": "calibration_step", "start": "2031-05-01"}, "scenarios[0].ir_factor"),
        (
            {"kind": "calibration_step", "start": "2031-05-01", "factor_by_band": [0.9, 1.0]},
            "scenarios[0].factor_by_band",
        ),
        ({"kind": "calibration_step", "start": "2031-05-01", "ir_factor": -1}, "scenarios[0].ir_factor"),
        (
            {"kind": "corruption_burst", "start": "2031-05-01", "end": "2031-05-01", "bit_flip_rate": 1.5},
            "scenarios[0].bit_flip_rate",
        ),
        (
            {"kind": "corruption_burst", "start": "2031-05-01", "end": "2031-05-01", "garbage_bytes": -3},
            "scenarios[0].garbage_bytes",
        ),
        (
            {"kind": "corruption_burst", "start": "2031-05-01", "end": "2031-05-01"},
            "scenarios[0].garbage_bytes",
        ),
    ],
)
def test_validation_errors_name_the_field(entry: dict, field: str) -> None:
    good = {"kind": "calibration_step", "start": "2031-05-01", "ir_factor": 0.9}
    with pytest.raises(ScenarioError) as info:
        Scenarios.from_json(json.dumps([entry]))
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")
    # The position is the entry's index in the list.
    with pytest.raises(ScenarioError) as info:
        Scenarios.from_json(json.dumps([good, entry]))
    assert info.value.field == field.replace("[0]", "[1]")


@pytest.mark.parametrize("text", ["{", '{"kind": "gain_drift"}', "[3]"])
def test_malformed_json_is_rejected(text: str) -> None:
    with pytest.raises(ScenarioError, match="scenarios"):
        Scenarios.from_json(text)


def test_constructors_validate_too() -> None:
    with pytest.raises(ScenarioError, match=r"^gain_drift\.end:"):
        GainDrift(satellites=(1,), start=DAY, end=DAY - dt.timedelta(days=1), rate_per_day=0.01)
    with pytest.raises(ScenarioError, match=r"^composition_shift\.complex:"):
        CompositionShift(sectors=(1,), start=DAY, end=DAY, complex="X", weight=2.0)
    with pytest.raises(ScenarioError, match=r"^calibration_step\.satellites:.*501"):
        CalibrationStep(satellites=(501,), start=DAY, ir_factor=0.9)


# --- activation rules ------------------------------------------------------------------------------------


def test_applies_rules() -> None:
    start, end = DAY, DAY + dt.timedelta(days=3)
    before, after = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
    gain = GainDrift(satellites=(5, 9), start=start, end=end, rate_per_day=0.01)
    assert gain.applies(start, 5) and gain.applies(end, 9)
    assert not gain.applies(before, 5) and not gain.applies(after, 5) and not gain.applies(start, 6)

    shift = CompositionShift(sectors=(12,), start=start, end=end, complex="M", weight=4.0)
    sector_12 = [s for s in range(1, fleet.N_SATELLITES + 1) if fleet.sector_of_satellite(s) == 12]
    assert sector_12 == list(range(13, fleet.N_SATELLITES + 1, fleet.N_SECTORS))
    assert all(shift.applies(start, s) for s in sector_12)
    assert not shift.applies(start, 12) and not shift.applies(after, 13)

    step = CalibrationStep(start=start, ir_factor=0.9)  # the whole fleet, for good
    assert step.applies(start, 1) and step.applies(dt.date(2099, 1, 1), 500) and not step.applies(before, 1)
    bounded = CalibrationStep(satellites=(2,), start=start, end=end, ir_factor=0.9)
    assert bounded.applies(end, 2) and not bounded.applies(after, 2) and not bounded.applies(start, 3)

    burst = CorruptionBurst(satellites=(4,), start=start, end=start, garbage_bytes=10)
    assert burst.applies(start, 4) and not burst.applies(start + dt.timedelta(days=1), 4)
    assert not burst.applies(start, 5)

    scenarios = Scenarios((gain, shift, step, burst))
    assert scenarios.active(start, 5) == (gain, step)
    assert scenarios.active(before, 5) == ()
    assert scenarios.on_day(after) == Scenarios((step,))


def test_effects_combine_and_gain_grows_linearly() -> None:
    gain = GainDrift(satellites=(1,), start=DAY, end=DAY + dt.timedelta(days=9), rate_per_day=0.02)
    assert gain.gain_on(DAY) == pytest.approx(1.02)
    assert gain.gain_on(DAY + dt.timedelta(days=9)) == pytest.approx(1.2)
    steps = (
        CalibrationStep(start=DAY, ir_factor=0.9),
        CalibrationStep(satellites=(1,), start=DAY, factor_by_band=(1.1,) * fmt.N_BANDS),
    )
    bursts = (
        CorruptionBurst(start=DAY, end=gain.end, bit_flip_rate=0.1, garbage_bytes=100),
        CorruptionBurst(start=DAY, end=gain.end, bit_flip_rate=0.2, duplicate_rate=0.3, garbage_bytes=50),
    )
    effects = Scenarios((gain, *steps, *bursts)).effects(DAY + dt.timedelta(days=4), 1)
    assert effects.gain == pytest.approx(1.1)
    factor = effects.reflectance_factor()
    expected = np.full(fmt.N_BANDS, 1.1 * 1.1)
    expected[list(IR_BANDS)] *= 0.9
    np.testing.assert_allclose(factor, expected)
    assert [fmt.BAND_WAVELENGTHS_UM[i] for i in IR_BANDS] == [1.05, 1.25, 1.50, 1.75, 2.05, 2.45]
    assert effects.magnitude_offset() == pytest.approx(-2.5 * np.log10(1.1))
    assert dict(effects.link_rates) == {"bit_flip_rate": 0.2, "duplicate_rate": 0.3}
    assert effects.garbage_bytes == 150
    assert Scenarios((gain, *steps, *bursts)).effects(DAY - dt.timedelta(days=1), 1).nominal
    assert Effects().reflectance_factor() is None and Effects().sampling_factor(np.array(["M"])) is None


# --- determinism and the nominal path --------------------------------------------------------------------

# SHA-256 of the nominal simulator's bytes (population 2,000 / seed 11), pinned when each satellite got its
# nominal detector response (astromined.sim.instrument), re-pinned when the population got Bus–DeMeo
# sub-types and the reflectance noise became photon-limited; scenarios that are not active must not change
# them.
NOMINAL_BYTES = [
    ((2031, 5, 17), 42, 20, 7, None, "f167a3fb4af5fee3b7c621e17e5b6aefed69025c0c997d25e50ed34b26812fb4"),
    (
        (2031, 5, 18),
        3,
        200,
        1,
        LinkConditions(0.5, 0.01, 0.1, 1.0),
        "874558ad27b6c121af8cb787ef3891faf12461645716f15c12769fb9b5a79c8b",
    ),
    ((2031, 6, 1), 500, 40, 42, None, "c50d04bd35ccb1559d6b10068652f0ce82126e96502286d68b844eb6466db258"),
    ((2031, 5, 20), 1, 30, 42, None, "21d2e9999e10c01f6733fc4dfce89e75cecc67684e6af975f635dcac86672af3"),
    ((2031, 5, 21), 77, 60, 3, None, "a455e510e86956c5de59ea78c5ee84ce1d6b622e87347e8cc6b732b2312b2d73"),
]

# Active somewhere, but never for the (day, satellite) pairs above.
ELSEWHERE = Scenarios(
    (
        GainDrift(satellites=(2,), start=dt.date(2031, 5, 1), end=dt.date(2031, 6, 30), rate_per_day=0.05),
        CompositionShift(
            sectors=(5,), start=dt.date(2031, 5, 1), end=dt.date(2031, 6, 30), complex="M", weight=10.0
        ),
        CalibrationStep(start=dt.date(2031, 6, 2), ir_factor=0.5),
        CorruptionBurst(start=dt.date(2031, 5, 1), end=dt.date(2031, 5, 16), garbage_bytes=999),
    )
)


@pytest.mark.parametrize("scenarios", [None, Scenarios(), ELSEWHERE], ids=["none", "empty", "elsewhere"])
def test_without_active_scenarios_the_bytes_are_those_of_the_nominal_simulator(scenarios) -> None:
    population = generate_population(2_000, 11)
    for (y, m, d), satellite, n, seed, link, digest in NOMINAL_BYTES:
        downlink = simulate_satellite_day(
            population, dt.date(y, m, d), satellite, n, seed, link=link, scenarios=scenarios
        )
        assert hashlib.sha256(downlink.data).hexdigest() == digest


ALL_KINDS = Scenarios(
    (
        GainDrift(satellites=(1,), start=DAY, end=DAY, rate_per_day=0.1),
        CompositionShift(sectors=(0,), start=DAY, end=DAY, complex="V", weight=5.0),
        CalibrationStep(start=DAY, ir_factor=0.8),
        CorruptionBurst(start=DAY, end=DAY, bit_flip_rate=0.1, duplicate_rate=0.1, garbage_bytes=300),
    )
)


@pytest.mark.parametrize("index", range(len(ALL_KINDS)), ids=[s.kind for s in ALL_KINDS])
def test_scenarios_are_deterministic_and_change_the_bytes(population, index: int) -> None:
    one = Scenarios((ALL_KINDS.items[index],))
    first = simulate_satellite_day(population, DAY, 1, 40, SEED, scenarios=one)
    again = simulate_satellite_day(population, DAY, 1, 40, SEED, scenarios=Scenarios.from_json(one.to_json()))
    assert first == again
    assert first.data != simulate_satellite_day(population, DAY, 1, 40, SEED).data


# --- what each scenario moves ----------------------------------------------------------------------------


def magnitudes(frame: pd.DataFrame, satellite: int) -> np.ndarray:
    return frame.loc[frame["satellite_id"] == satellite, "apparent_magnitude"].to_numpy(np.float64)


def test_gain_drift_raises_albedo_and_brightens_magnitudes_of_affected_satellites_only(population) -> None:
    drift = GainDrift(satellites=(1, 2), start=DAY - dt.timedelta(days=9), end=DAY, rate_per_day=0.02)
    gain = drift.gain_on(DAY)
    assert gain == pytest.approx(1.2)
    satellites = (1, 2, 3, 51)  # 51 shares satellite 1's sector
    base = observations(population, satellites, 40)
    drifted = observations(population, satellites, 40, Scenarios((drift,)))
    base_features, drifted_features = observation_features(base, FLEET), observation_features(drifted, FLEET)
    for satellite in satellites:
        b, d = (frame[frame["satellite_id"] == satellite] for frame in (base_features, drifted_features))
        ratio = d["albedo"].median() / b["albedo"].median()
        shift = magnitudes(drifted, satellite) - magnitudes(base, satellite)
        if satellite in drift.satellites:
            assert 1.12 < ratio < gain
            np.testing.assert_allclose(shift, -2.5 * np.log10(gain), atol=1e-4)
        else:
            assert ratio == 1.0
            assert not shift.any()
        # Normalized spectra do not see a gain: it cancels in the ratio to 0.55 µm.
        np.testing.assert_allclose(d[NORMALIZED_REFLECTANCE], b[NORMALIZED_REFLECTANCE], rtol=1e-5)
    # The day before the drift starts is untouched.
    before = DAY - dt.timedelta(days=10)
    assert simulate_satellite_day(population, before, 1, 40, SEED, scenarios=Scenarios((drift,))) == (
        simulate_satellite_day(population, before, 1, 40, SEED)
    )


def test_calibration_step_moves_ir_reflectance_slope_and_1um_band_depth(population) -> None:
    step = CalibrationStep(start=DAY, ir_factor=0.9)
    satellites = (1, 2, 3, 4)
    base = aggregate_by_asteroid(observations(population, satellites, 40), FLEET)
    stepped = aggregate_by_asteroid(observations(population, satellites, 40, Scenarios((step,))), FLEET)
    assert base["asteroid_id"].tolist() == stepped["asteroid_id"].tolist()  # the same bodies, measured anew
    ir = [name for i, name in zip(NORMALIZED_BANDS, NORMALIZED_REFLECTANCE, strict=True) if i in IR_BANDS]
    visible = [name for name in NORMALIZED_REFLECTANCE if name not in ir]
    np.testing.assert_allclose(stepped[ir], 0.9 * base[ir], rtol=1e-5)
    np.testing.assert_allclose(stepped[visible], base[visible], rtol=1e-5)
    assert (stepped["band_depth_1um"] < base["band_depth_1um"]).all()
    assert stepped["band_depth_1um"].median() < 0.8 * base["band_depth_1um"].median()
    assert (stepped["spectral_slope"] < base["spectral_slope"]).all()
    # All three 2 µm band points are IR bands: the same factor cancels in the band depth.
    np.testing.assert_allclose(stepped["band_depth_2um"], base["band_depth_2um"], atol=1e-5)
    np.testing.assert_allclose(stepped["albedo"], base["albedo"])
    # Open-ended from its start; nothing before.
    before = DAY - dt.timedelta(days=1)
    assert simulate_satellite_day(population, before, 1, 40, SEED, scenarios=Scenarios((step,))) == (
        simulate_satellite_day(population, before, 1, 40, SEED)
    )


def test_composition_shift_changes_the_class_mix_of_affected_sectors(population) -> None:
    shift = CompositionShift(sectors=(0, 1), start=DAY, end=DAY, complex="M", weight=8.0)
    satellites = (1, 51, 2, 52, 3, 53)  # sectors 0, 0, 1, 1, 2, 2
    truth = population.table.set_index("asteroid_id")["complex"]

    def mix(scenarios) -> pd.DataFrame:
        """Per sector: the M share of looks (feature rows weighted by n_observations) and radar albedo."""
        features = aggregate_by_asteroid(observations(population, satellites, 40, scenarios), FLEET)
        looks = features["n_observations"].to_numpy()
        features["m_looks"] = (truth.loc[features["asteroid_id"]].to_numpy() == "M") * looks
        radar = features["radar_albedo"].notna()
        features["radar_looks"] = radar * looks
        features["radar_sum"] = features["radar_albedo"].fillna(0.0) * looks
        sums = features.groupby("sector")[["n_observations", "m_looks", "radar_looks", "radar_sum"]].sum()
        return pd.DataFrame(
            {
                "m_share": sums["m_looks"] / sums["n_observations"],
                "radar_albedo": sums["radar_sum"] / sums["radar_looks"],
            }
        )

    base, shifted = mix(None), mix(Scenarios((shift,)))
    for sector in (0, 1):
        assert shifted.loc[sector, "m_share"] > base.loc[sector, "m_share"] + 0.15
        # M-types are radar-bright.
        assert shifted.loc[sector, "radar_albedo"] > base.loc[sector, "radar_albedo"] + 0.05
    pd.testing.assert_series_equal(shifted.loc[2], base.loc[2])


def test_corruption_burst_raises_quarantine_by_reason_and_still_reconciles(population) -> None:
    burst = CorruptionBurst(
        satellites=(1, 2, 3),
        start=DAY,
        end=DAY,
        bit_flip_rate=0.05,
        truncated_file_rate=1.0,
        duplicate_rate=0.10,
        garbage_bytes=1_500,
    )
    satellites = (1, 2, 3, 4)
    nominal = ingest(population, satellites, 100)
    burst_day = ingest(population, satellites, 100, Scenarios((burst,)))
    for result in (nominal, burst_day):
        assert result.reconciles
        assert result.packets_in == result.packets_ok + result.packets_quarantined + result.duplicates
        accepted = fmt.PACKET_SIZE * (result.packets_ok + result.duplicates)
        assert result.bytes_in == accepted + int(result.quarantine["length"].sum())
    before, after = nominal.quarantine_by_reason(), burst_day.quarantine_by_reason()
    assert after["crc_mismatch"] > before.get("crc_mismatch", 0) + 5
    # Every burst file is cut short; a cut leaving under 6 octets of the last header is unframed instead.
    assert after["truncated_packet"] >= 2 > before.get("truncated_packet", 0)
    assert after["unframed_bytes"] > before.get("unframed_bytes", 0) + 3 * 10  # ~15 garbage runs per file
    assert burst_day.duplicates > nominal.duplicates + 10
    # Satellite 4 is outside the burst: its quarantine is unchanged.
    q_before, q_after = nominal.quarantine, burst_day.quarantine
    pd.testing.assert_frame_equal(
        q_before[q_before["source_file"].str.contains("sat-004")].reset_index(drop=True),
        q_after[q_after["source_file"].str.contains("sat-004")].reset_index(drop=True),
    )


def test_garbage_between_packets_is_quarantined_as_unframed_and_decoding_goes_on(population) -> None:
    garbage = Scenarios((CorruptionBurst(start=DAY, end=DAY, garbage_bytes=700),))
    for satellite in (1, 2, 3, 4, 5):
        clean = simulate_satellite_day(population, DAY, satellite, 60, SEED, link=CLEAN)
        noisy = simulate_satellite_day(population, DAY, satellite, 60, SEED, link=CLEAN, scenarios=garbage)
        assert len(noisy.data) == len(clean.data) + 700
        decoded = decode_file(noisy.data, noisy.file_name, *day_window(DAY))
        assert set(decoded.quarantine["reason"]) == {"unframed_bytes"}
        assert decoded.quarantine["length"].sum() == 700
        expected = decode_file(clean.data, clean.file_name, *day_window(DAY)).observations
        pd.testing.assert_frame_equal(
            decoded.observations.drop(columns="file_offset"), expected.drop(columns="file_offset")
        )


# --- configuration: environment and the simulated landing zone -------------------------------------------


def test_astromined_drift_selects_a_preset() -> None:
    assert load_settings({}).drift == "none"
    assert load_settings({"ASTROMINED_DRIFT": "demo"}).drift == "demo"
    with pytest.raises(ConfigurationError, match=r"ASTROMINED_DRIFT='wild'.*none, demo"):
        load_settings({"ASTROMINED_DRIFT": "wild"})
