"""Reference statistics and drift scores (PSI, two-sample KS) on simulated feature partitions.

Measured here (population 3,000, 50 satellites × 40 observations, reference = 3 stacked clean days,
4,295 rows; 1,429 rows per scored day):

- a clean day (other day, other downlink seed): PSI ≤ 0.014, KS D ≤ 0.04 and p ≥ 0.17 on every feature;
- CalibrationStep ``ir_factor`` 0.90 fleet-wide: PSI 1.65 (refl_norm_1.05um) … 0.30 (refl_norm_2.45um),
  0.45 spectral_slope, 1.04 band_depth_1um, KS D 0.25 … 0.54, p < 1e-44; the other features score exactly
  as on the clean day (same day and seed: the scenario draws nothing from the nominal random stream).
  (The population's Bus–DeMeo sub-types, from blue B-types to very red olivine Sa-types, and its
  photon-limited noise spread the far-IR reflectances wider than one blob per complex did: a 7 % step,
  ``ir_factor`` 0.93, now scores PSI 0.92 at 1.05 µm but only 0.21 at 2.05 µm and 0.14 at 2.45 µm);
- GainDrift gain 1.3 on every satellite: log_albedo PSI 0.36, KS D 0.19, p ≈ 0; nothing else moves.

Hence the suggested defaults PSI > 0.2 and KS p < 1e-3 (reference_stats.PSI_DRIFT_THRESHOLD /
KS_PVALUE_THRESHOLD).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from astromined.features.engineering import MODEL_FEATURES, aggregate_by_asteroid, model_inputs
from astromined.features.reference_stats import (
    KS_PVALUE_THRESHOLD,
    MAX_SAMPLE,
    PSI_DRIFT_THRESHOLD,
    REFERENCE_FEATURES,
    FeatureStatistics,
    ReferenceStatistics,
    class_mix_psi,
    drift_scores,
    drifted_features,
    feature_values,
    ks_two_sample,
    psi,
)
from astromined.features.training_set import build_training_set, combine_days
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population, survey_catalog
from astromined.sim.scenarios import CalibrationStep, GainDrift, Scenarios
from astromined.taxonomy import COMPLEXES
from astromined.telemetry.decode import decode_file
from astromined.telemetry.ingest import day_window

SEED = 7
SATELLITES = range(1, 51)  # one per sector
OBSERVATIONS = 40
REFERENCE_DAYS = [dt.date(2031, 5, 1) + dt.timedelta(days=k) for k in range(3)]
SCORED_DAY = dt.date(2031, 5, 20)
SCORED_SEED = 8

IR_REFLECTANCE = [f"refl_norm_{w}um" for w in ("1.05", "1.25", "1.50", "1.75", "2.05", "2.45")]
CALIBRATION_MOVES = {*IR_REFLECTANCE, "spectral_slope", "band_depth_1um"}
GAIN_MOVES = {"log_albedo"}


def feature_day(population, day: dt.date, seed: int = SEED, scenarios: Scenarios | None = None):
    frames = []
    for satellite in SATELLITES:
        downlink = simulate_satellite_day(population, day, satellite, OBSERVATIONS, seed, scenarios=scenarios)
        frames.append(decode_file(downlink.data, downlink.file_name, *day_window(day)).observations)
    return aggregate_by_asteroid(pd.concat(frames, ignore_index=True), nominal_response(seed))


@pytest.fixture(scope="module")
def population():
    return generate_population(3_000, 11)


@pytest.fixture(scope="module")
def reference_days(population) -> list[pd.DataFrame]:
    return [feature_day(population, day) for day in REFERENCE_DAYS]


@pytest.fixture(scope="module")
def reference_frame(reference_days) -> pd.DataFrame:
    return pd.concat(reference_days, ignore_index=True)


@pytest.fixture(scope="module")
def reference(reference_frame) -> ReferenceStatistics:
    return ReferenceStatistics.from_frame(reference_frame)


@pytest.fixture(scope="module")
def clean_day(population) -> pd.DataFrame:
    return feature_day(population, SCORED_DAY, SCORED_SEED)


@pytest.fixture(scope="module")
def calibrated_day(population) -> pd.DataFrame:
    firmware = Scenarios((CalibrationStep(start=SCORED_DAY, ir_factor=0.90),))
    return feature_day(population, SCORED_DAY, SCORED_SEED, firmware)


@pytest.fixture(scope="module")
def gain_day(population) -> pd.DataFrame:
    gain = GainDrift(satellites=tuple(SATELLITES), start=SCORED_DAY, end=SCORED_DAY, rate_per_day=0.3)
    return feature_day(population, SCORED_DAY, SCORED_SEED, Scenarios((gain,)))


# --- the statistics -------------------------------------------------------------------------------------


def test_reference_covers_every_feature_with_consistent_bins(reference, reference_frame):
    assert list(reference.features) == REFERENCE_FEATURES
    assert set(MODEL_FEATURES) <= set(reference.features)
    assert reference.n_rows == len(reference_frame)
    assert reference.class_mix is None  # feature partitions carry no labels
    for name, feature in reference.features.items():
        assert feature.name == name
        assert len(feature.proportions) == len(feature.bin_edges) + 1
        assert sum(feature.proportions) == pytest.approx(1.0)
        assert list(feature.bin_edges) == sorted(set(feature.bin_edges))
        assert 0 < len(feature.sample) <= MAX_SAMPLE
        assert list(feature.sample) == sorted(feature.sample)
        assert feature.min <= feature.bin_edges[0] <= feature.bin_edges[-1] <= feature.max


def test_model_feature_statistics_are_those_of_model_inputs(reference, reference_frame):
    inputs = model_inputs(reference_frame).astype(np.float64)
    for i, name in enumerate(MODEL_FEATURES):
        feature = reference[name]
        column = inputs[:, i]
        assert feature.count == len(reference_frame)
        assert feature.mean == pytest.approx(column.mean(), rel=1e-12, abs=1e-12)
        assert feature.std == pytest.approx(column.std(), rel=1e-12, abs=1e-12)
        assert feature.min == column.min() and feature.max == column.max()
    # Continuous features get ten decile bins of ~10 % each.
    slope = reference["spectral_slope"]
    assert len(slope.bin_edges) == 9
    np.testing.assert_allclose(slope.proportions, 0.1, atol=0.002)
    np.testing.assert_allclose(
        slope.bin_edges, np.quantile(inputs[:, MODEL_FEATURES.index("spectral_slope")], np.arange(1, 10) / 10)
    )


def test_raw_features_radar_measured_values_only_and_discrete_bins_merge(reference, reference_frame):
    measured = reference_frame["radar_albedo"].dropna()
    assert reference["radar_albedo"].count == len(measured) < len(reference_frame)
    assert reference["radar_albedo"].mean == pytest.approx(measured.mean())
    # has_radar takes two values: its deciles collapse to the edges {0, 1}.
    has_radar = reference["has_radar"]
    assert has_radar.bin_edges == (0.0, 1.0)
    assert has_radar.proportions[0] == pytest.approx(1 - measured.size / len(reference_frame))
    assert has_radar.proportions[2] == 0.0
    assert reference["n_observations"].bin_edges[0] == 1.0


def test_json_round_trip_is_exact_stable_and_small(reference):
    text = reference.to_json()
    again = ReferenceStatistics.from_json(text)
    assert again == reference
    assert again.to_json() == text
    assert ReferenceStatistics.from_dict(json.loads(json.dumps(reference.to_dict()))) == reference
    assert len(text.encode()) < 400_000
    assert "NaN" not in text and "Infinity" not in text


def test_statistics_are_deterministic(reference_frame, reference):
    assert ReferenceStatistics.from_frame(reference_frame.copy()).to_json() == reference.to_json()


def test_unknown_format_version_is_rejected(reference):
    data = reference.to_dict()
    data["format_version"] = 99
    with pytest.raises(ValueError, match="format_version 99"):
        ReferenceStatistics.from_dict(data)


def test_class_mix_from_a_labelled_table(reference_days, population):
    training = build_training_set(combine_days(reference_days), survey_catalog(population))
    labelled = ReferenceStatistics.from_frame(training)
    assert set(labelled.class_mix) == set(COMPLEXES)
    assert sum(labelled.class_mix.values()) == pytest.approx(1.0)
    expected = training["complex"].value_counts(normalize=True)
    for name, share in expected.items():
        assert labelled.class_mix[name] == pytest.approx(share)
    assert ReferenceStatistics.from_json(labelled.to_json()) == labelled
    assert class_mix_psi(labelled, training["complex"]) == pytest.approx(0.0, abs=1e-12)
    assert class_mix_psi(labelled, ["M"] * 100) > 1.0
    with pytest.raises(ValueError, match="no class mix"):
        class_mix_psi(ReferenceStatistics.from_frame(reference_days[0]), ["M"])


# --- drift scores on simulated days ---------------------------------------------------------------------


def test_a_clean_day_does_not_drift(reference, clean_day):
    scores = drift_scores(reference, clean_day)
    assert list(scores) == REFERENCE_FEATURES
    for name, score in scores.items():
        assert set(score) == {"psi", "ks_statistic", "ks_pvalue"}
        assert 0.0 <= score["psi"] < 0.05, (name, score)
        assert score["ks_pvalue"] > KS_PVALUE_THRESHOLD, (name, score)
        assert score["ks_statistic"] < 0.06, (name, score)
    assert drifted_features(scores) == []


def test_a_reference_day_scores_near_zero(reference, reference_days):
    scores = drift_scores(reference, reference_days[1])
    assert max(s["psi"] for s in scores.values()) < 0.02
    assert drifted_features(scores) == []


def test_calibration_step_flags_ir_reflectance_slope_and_1um_band_only(reference, calibrated_day, clean_day):
    scores = drift_scores(reference, calibrated_day)
    clean = drift_scores(reference, clean_day)
    for name in CALIBRATION_MOVES:
        assert scores[name]["psi"] > PSI_DRIFT_THRESHOLD, (name, scores[name])
        assert scores[name]["ks_pvalue"] < 1e-12, (name, scores[name])
        assert scores[name]["ks_statistic"] > 0.1, (name, scores[name])
    # The factor is strongest relative to the spread where the spread is smallest (1.05 µm).
    assert scores["refl_norm_1.05um"]["psi"] > 1.0
    for name in set(REFERENCE_FEATURES) - CALIBRATION_MOVES:
        # Visible bands, the 2 µm band (all three points IR), albedo, radar, rotation: untouched.
        assert scores[name] == clean[name], name
    assert set(drifted_features(scores)) == CALIBRATION_MOVES


def test_gain_drift_flags_albedo_only(reference, gain_day, clean_day):
    scores = drift_scores(reference, gain_day)
    clean = drift_scores(reference, clean_day)
    assert scores["log_albedo"]["psi"] > 0.3
    assert scores["log_albedo"]["ks_pvalue"] < 1e-12
    # The gain cancels in the ratio to 0.55 µm: the spectral shape does not move.
    for name in set(REFERENCE_FEATURES) - GAIN_MOVES:
        assert scores[name]["psi"] == pytest.approx(clean[name]["psi"], abs=1e-3), name
        assert scores[name]["psi"] < 0.05
    assert drifted_features(scores) == ["log_albedo"]


def test_the_reference_of_daily_frames_is_that_of_their_concatenation(reference_days, reference, population):
    """training_set summarizes the window's daily partitions without concatenating them: the statistics,
    the KS sample and the class mix must be those of the stacked table, to the byte."""
    assert ReferenceStatistics.from_frames(reference_days).to_json() == reference.to_json()
    damaged = [day.copy() for day in reference_days]
    damaged[1].loc[damaged[1].index[:3], "albedo"] = np.nan
    damaged[2].loc[damaged[2].index[7], "radar_albedo"] = np.nan
    stacked = ReferenceStatistics.from_frame(pd.concat(damaged, ignore_index=True))
    assert ReferenceStatistics.from_frames(damaged).to_json() == stacked.to_json()
    catalog = survey_catalog(population)
    labelled = [build_training_set(day, catalog) for day in reference_days]
    by_day = ReferenceStatistics.from_frames(labelled)
    assert by_day.class_mix is not None
    stacked = ReferenceStatistics.from_frame(pd.concat(labelled, ignore_index=True))
    assert by_day.to_json() == stacked.to_json()


def test_rows_with_non_finite_inputs_are_left_out_not_raised(reference, clean_day):
    damaged = clean_day.copy()
    damaged.loc[damaged.index[:5], "albedo"] = np.nan
    damaged.loc[damaged.index[5], "spectral_slope"] = np.inf
    values = feature_values(damaged)
    assert len(values["log_albedo"]) == len(clean_day) - 6
    scores = drift_scores(reference, damaged)
    assert all(np.isfinite(s["psi"]) for s in scores.values())


def test_an_empty_partition_scores_nan(reference, clean_day):
    scores = drift_scores(reference, clean_day.iloc[:0])
    assert all(np.isnan(s["psi"]) and np.isnan(s["ks_pvalue"]) for s in scores.values())


# --- psi and ks_two_sample ------------------------------------------------------------------------------


def test_psi_known_value():
    reference = np.arange(1000) / 1000.0  # deciles at 0.1 … 0.9 (interpolated: 0.0999 …)
    feature = FeatureStatistics.from_values("x", reference)
    assert feature.proportions == pytest.approx([0.1] * 10)
    shifted = np.concatenate([np.full(500, 0.05), np.full(500, 0.95)])  # half in the first, half in the last
    expected = 2 * (0.5 - 0.1) * np.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(feature, shifted) == pytest.approx(expected)
    assert psi(reference, shifted) == pytest.approx(expected)


def test_ks_matches_scipy_on_the_stored_sample():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5_000)
    values = rng.normal(0.1, 1.0, size=800)
    feature = FeatureStatistics.from_values("x", reference)
    assert len(feature.sample) == MAX_SAMPLE
    result = ks_two_sample(feature, values)
    expected = stats.ks_2samp(np.asarray(feature.sample), values)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == pytest.approx(expected.pvalue)
    raw = ks_two_sample(reference, values)
    assert raw.statistic == pytest.approx(stats.ks_2samp(reference, values).statistic)
    assert np.isnan(ks_two_sample(reference, []).pvalue)


def test_the_sample_is_a_deterministic_subsample_of_the_reference():
    values = np.random.default_rng(3).lognormal(size=10_000)
    first = FeatureStatistics.from_values("x", values)
    assert first == FeatureStatistics.from_values("x", values.copy())
    # Values are kept to 5 significant digits, so they match reference values to 1e-5 relative.
    ordered = np.sort(values)
    sample = np.asarray(first.sample)
    right = np.searchsorted(ordered, sample).clip(0, len(ordered) - 1)
    left = (right - 1).clip(0, None)
    error = np.minimum(np.abs(ordered[left] / sample - 1), np.abs(ordered[right] / sample - 1))
    assert np.all(error < 1e-4)
    assert len(sample) == MAX_SAMPLE


_values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=200
)


@settings(max_examples=100, deadline=None)
@given(_values)
def test_psi_of_a_sample_against_itself_is_zero(x):
    assert abs(psi(x, x)) <= 1e-9
    assert abs(psi(FeatureStatistics.from_values("x", x), x)) <= 1e-9


@settings(max_examples=100, deadline=None)
@given(_values, _values)
def test_psi_is_never_negative(x, y):
    value = psi(x, y)
    assert value >= 0.0
    assert np.isfinite(value)
