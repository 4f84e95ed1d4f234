"""Holdout metrics for the composition model and the baseline it must beat."""

from __future__ import annotations

import io

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES, METAL_RICH_COMPLEX


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE over confidence bins of the top-1 prediction."""
    if len(labels) == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    all_classes = list(range(len(COMPLEXES)))
    metal = COMPLEX_INDEX[METAL_RICH_COMPLEX]
    per_class_recall = recall_score(labels, predicted, labels=all_classes, average=None, zero_division=0)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=all_classes, average="macro", zero_division=0)),
        "m_type_recall": float(per_class_recall[metal]),
    }
    for name, value in zip(COMPLEXES, per_class_recall, strict=True):
        metrics[f"recall_{name}"] = float(value)
    return metrics


def model_metrics(
    probabilities: np.ndarray, metal_pred: np.ndarray, labels: np.ndarray, metal_true: np.ndarray
) -> dict[str, float]:
    metrics = classification_metrics(labels, probabilities.argmax(axis=1))
    metrics["ece"] = expected_calibration_error(probabilities, labels)
    metrics["metal_richness_mae"] = (
        float(np.mean(np.abs(metal_pred - metal_true))) if len(labels) else float("nan")
    )
    return metrics


def fit_baseline(x_train: np.ndarray, y_train: np.ndarray, seed: int = 7) -> Pipeline:
    """The baseline the candidate must beat: standardized multinomial logistic regression on the same
    features, fit on the train rows."""
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return baseline.fit(x_train, y_train)


def baseline_predictions(
    x_train: np.ndarray, y_train: np.ndarray, x_holdout: np.ndarray, seed: int = 7
) -> np.ndarray:
    """The baseline's (``fit_baseline``) predicted class per holdout row."""
    return fit_baseline(x_train, y_train, seed).predict(x_holdout)


def baseline_metrics(
    x_train: np.ndarray, y_train: np.ndarray, x_holdout: np.ndarray, y_holdout: np.ndarray, seed: int = 7
) -> dict[str, float]:
    """Holdout metrics of ``baseline_predictions``."""
    return classification_metrics(y_holdout, baseline_predictions(x_train, y_train, x_holdout, seed))


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return confusion_matrix(labels, predicted, labels=list(range(len(COMPLEXES))))


def confusion_markdown(matrix: np.ndarray) -> str:
    header = "| true \\ predicted | " + " | ".join(COMPLEXES) + " |"
    rule = "|---" * (len(COMPLEXES) + 1) + "|"
    rows = [
        f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + " |"
        for name, row in zip(COMPLEXES, matrix, strict=True)
    ]
    return "\n".join([header, rule, *rows])


def confusion_png(matrix: np.ndarray, title: str) -> bytes:
    """The confusion matrix as a PNG (row-normalized colours, counts written in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix, dtype=float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(COMPLEXES)), COMPLEXES)
    ax.set_yticks(range(len(COMPLEXES)), COMPLEXES)
    ax.set_xlabel("predicted complex")
    ax.set_ylabel("true complex")
    ax.set_title(title)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
                fontsize=8,
            )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
