"""Drift statistics (astromined.features.drift): hand-checked values, verdicts, invariants."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.features.drift import (
    ClassMix,
    DriftThresholds,
    PredictionBaseline,
    evaluate_drift,
    homogeneity_pvalue,
    total_variation,
)
from astromined.features.engineering import NORMALIZED_REFLECTANCE
from astromined.features.reference_stats import ReferenceStatistics
from astromined.taxonomy import COMPLEXES


def feature_table(rows: int, seed: int, ir_factor: float = 1.0) -> pd.DataFrame:
    """A plausible feature table: random spectra, albedo, rotation; 50 sectors like the fleet."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"asteroid_id": np.arange(rows), "sector": rng.integers(0, 50, rows)})
    for i, name in enumerate(NORMALIZED_REFLECTANCE):
        factor = ir_factor if float(name.split("_")[2][:-2]) >= 1.0 else 1.0
        frame[name] = (1.0 + 0.05 * i + rng.normal(0, 0.05, rows)) * factor
    frame["spectral_slope"] = rng.normal(0.2, 0.1, rows)
    frame["band_depth_1um"] = rng.normal(0.1, 0.05, rows)
    frame["band_depth_2um"] = rng.normal(0.05, 0.03, rows)
    frame["albedo"] = rng.lognormal(-2.0, 0.5, rows)
    frame["radar_albedo"] = np.where(rng.random(rows) < 0.3, rng.uniform(0.1, 0.5, rows), np.nan)
    frame["rotation_period_h"] = rng.lognormal(2.0, 0.5, rows)
    frame["lightcurve_amplitude_mag"] = rng.uniform(0.1, 0.8, rows)
    frame["n_observations"] = rng.integers(1, 4, rows)
    return frame


def labels_for(frame: pd.DataFrame, seed: int, m_share_in_sector_3: float | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    mix = np.asarray([0.4, 0.25, 0.1, 0.05, 0.05, 0.1, 0.05])
    labels = rng.choice(COMPLEXES, size=len(frame), p=mix)
    if m_share_in_sector_3 is not None:
        in_sector = frame["sector"].to_numpy() == 3
        labels[in_sector] = np.where(
            rng.random(in_sector.sum()) < m_share_in_sector_3, "M", labels[in_sector]
        )
    return labels.tolist()


@pytest.fixture(scope="module")
def reference():
    window = feature_table(6000, seed=1)
    baseline = PredictionBaseline.from_predictions(
        "m-test", labels_for(window, 1), window["sector"], window["n_observations"]
    )
    return ReferenceStatistics.from_frame(window), baseline


def test_class_mix_weights_and_effective_size():
    mix = ClassMix.of(["S", "S", "M"], [1.0, 3.0, 2.0])
    assert mix.counts["S"] == 4.0 and mix.counts["M"] == 2.0 and mix.counts["C"] == 0.0
    assert mix.effective_size == pytest.approx(36 / 14)  # (Σw)² / Σw²
    assert ClassMix.of(["S"] * 5).effective_size == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"\['X'\] are not complexes"):
        ClassMix.of(["X"])


def test_total_variation_by_hand():
    half_s = ClassMix.of(["S", "C"])
    all_s = ClassMix.of(["S", "S"])
    assert total_variation(half_s, all_s) == pytest.approx(0.5)
    assert total_variation(all_s, ClassMix.of(["M"])) == pytest.approx(1.0)
    assert math.isnan(total_variation(all_s, ClassMix.of([])))


def test_homogeneity_pvalue_separates_same_and_different_mixes():
    same = homogeneity_pvalue(ClassMix.of(["S"] * 50 + ["C"] * 50), ClassMix.of(["S"] * 48 + ["C"] * 52))
    different = homogeneity_pvalue(ClassMix.of(["S"] * 50 + ["C"] * 50), ClassMix.of(["S"] * 10 + ["C"] * 90))
    assert same > 0.5 and different < 1e-6
    assert (
        homogeneity_pvalue(ClassMix.of(["S"] * 5), ClassMix.of(["S"] * 9)) == 1.0
    )  # one class: nothing to test


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.sampled_from(COMPLEXES), min_size=1, max_size=30),
    st.lists(st.sampled_from(COMPLEXES), min_size=1, max_size=30),
)
def test_total_variation_is_a_bounded_symmetric_distance(a, b):
    x, y = ClassMix.of(a), ClassMix.of(b)
    assert 0.0 <= total_variation(x, y) <= 1.0 + 1e-12
    assert total_variation(x, y) == pytest.approx(total_variation(y, x))
    assert total_variation(x, x) == pytest.approx(0.0, abs=1e-12)


def test_clean_partition_is_not_drift(reference):
    stats, baseline = reference
    day = feature_table(2000, seed=2)
    report = evaluate_drift("2025-01-02", day, stats, labels_for(day, 2), baseline)
    assert not report.detected, report.reasons
    assert report.features_over_threshold == [] and report.sectors_over_threshold == []
    assert report.max_psi < 0.05 and report.class_mix_shift < 0.05
    assert report.reasons[0].startswith("max PSI")


def test_calibration_step_crosses_on_the_ir_features(reference):
    stats, baseline = reference
    day = feature_table(2000, seed=3, ir_factor=0.9)
    report = evaluate_drift("2025-03-22", day, stats, labels_for(day, 3), baseline)
    assert report.detected
    assert "refl_norm_1.05um" in report.features_over_threshold
    assert all(float(name.split("_")[2][:-2]) >= 1.0 for name in report.features_over_threshold)
    assert "feature(s) with PSI > 0.2" in report.reasons[0]


def test_class_mix_shift_in_one_sector_is_found(reference):
    stats, baseline = reference
    day = feature_table(2000, seed=4)
    report = evaluate_drift("2025-03-15", day, stats, labels_for(day, 4, m_share_in_sector_3=0.6), baseline)
    assert report.detected
    assert report.sectors_over_threshold == [3]
    assert report.class_mix_shift < DriftThresholds().class_mix_shift  # invisible fleet-wide
    assert any("sector(s) [3]" in reason for reason in report.reasons)


def test_too_few_rows_are_not_judged(reference):
    stats, baseline = reference
    day = feature_table(50, seed=5, ir_factor=0.5)
    report = evaluate_drift("2025-03-23", day, stats, labels_for(day, 5), baseline)
    assert not report.detected and "too few to judge" in report.reasons[0]


def test_without_predictions_only_features_count(reference):
    stats, _ = reference
    report = evaluate_drift("2025-01-02", feature_table(1000, seed=6), stats)
    assert not report.detected and math.isnan(report.class_mix_shift)
    assert "class mix not evaluated" in report.reasons[0]


def test_mismatched_predictions_are_an_error(reference):
    stats, baseline = reference
    with pytest.raises(ValueError, match="partition 2025-01-02: 3 predicted labels, 1000 feature rows"):
        evaluate_drift("2025-01-02", feature_table(1000, seed=7), stats, ["S", "C", "M"], baseline)


def test_baseline_round_trips_through_json(reference):
    _, baseline = reference
    again = PredictionBaseline.from_json(baseline.to_json())
    assert again == baseline
    with pytest.raises(ValueError, match="format_version"):
        PredictionBaseline.from_json('{"format_version": 99}')


@pytest.mark.parametrize(
    ("field", "value"), [("psi", 0.0), ("ks_pvalue", 1.5), ("sector_pvalue", 0.0), ("min_rows", 0)]
)
def test_thresholds_are_validated(field, value):
    with pytest.raises(ValueError, match=f"DriftThresholds.{field}"):
        DriftThresholds(**{field: value})
