"""How far a holdout's verdict can be trusted: a paired bootstrap of the candidate's macro-F1 margin over the
baseline.

The promotion gate compares two macro-F1s on one holdout of a few hundred asteroids, and macro-F1 weighs
the small classes (one E-type of ~15 moves it by ~0.005). On a first day the candidate's expected margin
on some days is about one asteroid (BENCHMARKS.md, model quality), so the verdict there is decided by which
asteroids happen to be in the holdout. Resampling the holdout's rows with replacement, scoring both models'
predictions of the same resampled rows, shows how much: the interval of the margin, and the share of
resamples the candidate wins. The gate's decision does not use it; operators do (docs/operations.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from astromined.taxonomy import COMPLEXES

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_LEVEL = 0.95
# Resample weights held at a time ([resamples, rows] counts): ~16 MB, whatever the holdout's size.
_CHUNK_CELLS = 2_000_000
# Below this a difference of two macro-F1s is float noise: a tie, not a win.
_TIE = 1e-12


@dataclasses.dataclass(frozen=True)
class MarginInterval:
    """The candidate's macro-F1 minus the baseline's on the holdout (``margin``), the ``level`` percentile
    interval of that difference over ``resamples`` paired bootstrap resamples (``low``, ``high``), and the
    share of resamples in which the candidate's macro-F1 is strictly higher (``win_share``)."""

    margin: float
    low: float
    high: float
    win_share: float
    resamples: int
    level: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for a promotion reason or a log."""
        verdict = (
            "above the holdout's noise"
            if self.low > 0
            else "below the holdout's noise"
            if self.high < 0
            else "within the holdout's noise"
        )
        return (
            f"margin over the baseline {self.margin:+.4f}, {self.level:.0%} paired bootstrap interval "
            f"{self.low:+.4f} to {self.high:+.4f} ({verdict}; the candidate wins {self.win_share:.0%} of "
            f"{self.resamples} resampled holdouts)"
        )


def _macro_f1(counts: np.ndarray, classes: int) -> np.ndarray:
    """Macro-F1 per row of ``counts`` ([R, classes²]: weighted confusion counts, true-major), every class
    included, 0 for a class with no true and no predicted rows (sklearn's ``zero_division=0``, as
    ``evaluate.classification_metrics``). All resamples at once: one sklearn call per resample takes ~1 ms,
    2 s per evaluation; the tests check it against sklearn on the drawn rows."""
    matrix = counts.reshape(len(counts), classes, classes)
    true_positive = np.diagonal(matrix, axis1=1, axis2=2)
    denominator = matrix.sum(axis=2) + matrix.sum(axis=1)  # 2·TP + FP + FN
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    return f1.mean(axis=1)


def bootstrap_margin(
    labels: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = BOOTSTRAP_LEVEL,
    classes: int = len(COMPLEXES),
) -> MarginInterval:
    """The paired bootstrap of macro-F1(candidate) − macro-F1(baseline) over the holdout rows.

    ``labels``, ``candidate`` and ``baseline`` are class indices per holdout row. Each resample draws the
    rows with replacement (multinomial counts, ``seed``), and both models are scored on the same draw.
    Deterministic for a seed. Raises ValueError, naming the input at fault, on mismatched lengths, an empty
    holdout, a class index outside ``range(classes)``, fewer than one resample or a level outside (0, 1).
    """
    labels, candidate, baseline = (np.asarray(a) for a in (labels, candidate, baseline))
    if not (labels.ndim == candidate.ndim == baseline.ndim == 1):
        raise ValueError("labels and both models' predictions must be one class index per holdout row")
    if not len(labels) == len(candidate) == len(baseline):
        raise ValueError(
            f"{len(labels)} holdout labels, {len(candidate)} candidate and {len(baseline)} baseline "
            "predictions"
        )
    if len(labels) == 0:
        raise ValueError("the holdout is empty: no margin to bootstrap")
    for name, values in (("labels", labels), ("candidate", candidate), ("baseline", baseline)):
        if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= classes:
            raise ValueError(f"{name} must be class indices in 0..{classes - 1}")
    if resamples < 1:
        raise ValueError(f"at least one bootstrap resample is needed, not {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"the interval level is a probability in (0, 1), not {level}")

    rows = len(labels)
    cells = classes * classes
    candidate_cells = np.eye(cells)[labels * classes + candidate]  # [rows, cells] one-hot
    baseline_cells = np.eye(cells)[labels * classes + baseline]
    observed = _macro_f1(np.ones((1, rows)) @ candidate_cells, classes) - _macro_f1(
        np.ones((1, rows)) @ baseline_cells, classes
    )
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // rows)
    differences = []
    for start in range(0, resamples, chunk):
        weights = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=min(chunk, resamples - start))
        differences.append(
            _macro_f1(weights @ candidate_cells, classes) - _macro_f1(weights @ baseline_cells, classes)
        )
    difference = np.concatenate(differences)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(difference, [tail, 1.0 - tail])
    return MarginInterval(
        margin=float(observed[0]),
        low=float(low),
        high=float(high),
        win_share=float(np.mean(difference > _TIE)),
        resamples=resamples,
        level=level,
    )
