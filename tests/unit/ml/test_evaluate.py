"""Holdout metrics, calibration, the baseline and confusion-matrix rendering."""

from __future__ import annotations

import numpy as np
import pytest

from astromined.ml.evaluate import (
    baseline_metrics,
    classification_metrics,
    confusion,
    confusion_markdown,
    confusion_png,
    expected_calibration_error,
    model_metrics,
)
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES

S, C, D, V, E, M, P = (COMPLEX_INDEX[c] for c in COMPLEXES)


def one_hot(indices, n: int = len(COMPLEXES)) -> np.ndarray:
    return np.eye(n)[np.asarray(indices)]


# Every complex twice; three mistakes: one S→C, one M→S, one P→M.
LABELS = np.array([S, S, C, C, D, D, V, V, E, E, M, M, P, P])
PREDICTED = np.array([S, C, C, C, D, D, V, V, E, E, M, S, P, M])


def test_classification_metrics_hand_computed():
    metrics = classification_metrics(LABELS, PREDICTED)
    assert metrics["accuracy"] == pytest.approx(11 / 14)
    # Per-class (precision, recall) → F1:
    #   S: TP 1, FP 1 (M→S), FN 1 → P 1/2, R 1/2 → F1 1/2
    #   C: TP 2, FP 1 (S→C)       → P 2/3, R 1   → F1 4/5
    #   D, V, E: perfect          → 1
    #   M: TP 1, FP 1 (P→M), FN 1 → 1/2
    #   P: TP 1, FN 1             → P 1, R 1/2   → F1 2/3
    expected_f1 = (0.5 + 0.8 + 1 + 1 + 1 + 0.5 + 2 / 3) / 7
    assert metrics["macro_f1"] == pytest.approx(expected_f1)
    assert metrics["m_type_recall"] == pytest.approx(0.5)
    assert metrics["recall_M"] == pytest.approx(0.5)
    assert metrics["recall_S"] == pytest.approx(0.5)
    assert metrics["recall_C"] == pytest.approx(1.0)
    assert metrics["recall_P"] == pytest.approx(0.5)
    assert set(metrics) == {"accuracy", "macro_f1", "m_type_recall", *(f"recall_{c}" for c in COMPLEXES)}
    assert all(isinstance(v, float) for v in metrics.values())


def test_classification_metrics_perfect_and_all_wrong():
    perfect = classification_metrics(LABELS, LABELS)
    assert perfect["accuracy"] == perfect["macro_f1"] == perfect["m_type_recall"] == 1.0
    wrong = classification_metrics(LABELS, (LABELS + 1) % len(COMPLEXES))
    assert wrong["accuracy"] == wrong["macro_f1"] == wrong["m_type_recall"] == 0.0


def test_m_type_recall_ignores_other_classes():
    labels = np.array([M, M, M, M, S, S])
    predicted = np.array([M, M, M, P, M, M])
    metrics = classification_metrics(labels, predicted)
    assert metrics["m_type_recall"] == pytest.approx(0.75)
    assert metrics["accuracy"] == pytest.approx(0.5)


# --- calibration ------------------------------------------------------------------------------


def test_ece_is_zero_for_correct_one_hot_predictions():
    assert expected_calibration_error(one_hot(LABELS), LABELS) == 0.0


def test_ece_is_one_for_confidently_wrong_predictions():
    assert expected_calibration_error(one_hot((LABELS + 1) % 7), LABELS) == pytest.approx(1.0)


def test_ece_hand_computed_one_sample_per_bin():
    probabilities = np.array([[0.95, 0.05], [0.85, 0.15], [0.65, 0.35], [0.25, 0.75]])
    labels = np.array([0, 1, 0, 1])
    # bins 9, 8, 6, 7; correct = [1, 0, 1, 1]
    expected = (abs(1 - 0.95) + abs(0 - 0.85) + abs(1 - 0.65) + abs(1 - 0.75)) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    assert expected == pytest.approx(0.375)


def test_ece_hand_computed_shared_bin():
    probabilities = np.array([[0.92, 0.08], [0.02, 0.98], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 0])
    # bin 9: confidences 0.92 (right), 0.98 (wrong) → |0.5 - 0.95| with weight 2/4
    # bin 5: confidences 0.55 (right), 0.55 (wrong) → |0.5 - 0.55| with weight 2/4
    expected = 0.5 * 0.45 + 0.5 * 0.05
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_ece_of_nothing_is_nan():
    assert np.isnan(expected_calibration_error(np.zeros((0, 7)), np.zeros(0, dtype=int)))


def test_model_metrics_adds_ece_and_metal_mae():
    probabilities = one_hot(LABELS)
    metal_true = np.linspace(0, 1, len(LABELS))
    metal_pred = metal_true + np.where(np.arange(len(LABELS)) % 2, 0.1, -0.3)
    metrics = model_metrics(probabilities, metal_pred, LABELS, metal_true)
    assert metrics["accuracy"] == 1.0
    assert metrics["ece"] == 0.0
    assert metrics["metal_richness_mae"] == pytest.approx(0.2)


# --- confusion --------------------------------------------------------------------------------


def test_confusion_counts():
    matrix = confusion(LABELS, PREDICTED)
    assert matrix.shape == (7, 7)
    assert matrix.sum() == len(LABELS)
    assert matrix[S, C] == 1
    assert matrix[M, S] == 1
    assert matrix[P, M] == 1
    assert matrix[C, C] == 2
    assert np.trace(matrix) == 11
    # classes absent from the holdout still get a row and a column
    assert confusion(np.array([S]), np.array([S])).shape == (7, 7)


def test_confusion_markdown_shape():
    text = confusion_markdown(confusion(LABELS, PREDICTED))
    lines = text.splitlines()
    assert len(lines) == 2 + len(COMPLEXES)
    assert lines[0] == "| true \\ predicted | S | C | D | V | E | M | P |"
    assert lines[1] == "|---" * 8 + "|"
    for line in lines:
        assert line.startswith("|") and line.endswith("|")
        assert line.count("|") == len(COMPLEXES) + 2
    assert lines[2 + M] == "| **M** | 1 | 0 | 0 | 0 | 0 | 1 | 0 |"
    assert lines[2 + C] == "| **C** | 0 | 2 | 0 | 0 | 0 | 0 | 0 |"


def test_confusion_png_is_a_png():
    png = confusion_png(confusion(LABELS, PREDICTED), "holdout")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000


def test_confusion_png_tolerates_empty_rows():
    matrix = np.zeros((7, 7), dtype=np.int64)
    matrix[S, S] = 3
    assert confusion_png(matrix, "mostly empty").startswith(b"\x89PNG")


# --- baseline ---------------------------------------------------------------------------------


def test_baseline_metrics_runs_and_separates_easy_classes():
    rng = np.random.default_rng(0)
    classes = np.array([S, C, M])
    centres = rng.normal(0, 5, size=(3, 5))

    def sample(n):
        which = rng.integers(0, 3, size=n)
        return centres[which] + rng.normal(0, 0.5, size=(n, 5)), classes[which]

    x_train, y_train = sample(300)
    x_holdout, y_holdout = sample(100)
    metrics = baseline_metrics(x_train, y_train, x_holdout, y_holdout)
    assert set(metrics) == set(classification_metrics(y_holdout, y_holdout))
    assert metrics["accuracy"] >= 0.95
    assert metrics["m_type_recall"] >= 0.9
    # deterministic for a seed
    assert baseline_metrics(x_train, y_train, x_holdout, y_holdout) == metrics
