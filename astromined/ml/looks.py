"""An asteroid's prediction from each of its looks: the mean of the looks' class probabilities.

The network trains on single looks (``features/training_set.py``: one row per observation on windows of
1–3 days, per asteroid and day on longer ones), each an independent noisy measurement. An asteroid's
combined row takes the median of its looks' bands, so a faint look at 7 % reflectance noise counts as
much as a bright one at 0.5 %. Scoring each look and averaging the probabilities lets a noisy look, on
which the network is unsure, weigh less than a clean one it is sure of; an asteroid looked at once gets
exactly its combined row's prediction (its one look *is* that row). Measured in BENCHMARKS.md (model
quality, fifteenth session); model_evaluation scores the holdout this way wherever the training set
stores the holdout asteroids' looks.

The mean is under-confident where the looks agree: two independent looks that both say "S, 0.8" are
better evidence than one, yet their mean says 0.8 again (the holdout ECE roughly doubled). So the mean of
an asteroid with n looks is raised to the power n^γ and renormalised (``sharpen_by_looks``): one look
stays exactly as the network calibrated it (n^γ = 1), the class the mean ranks first stays first, and
γ, the looks' calibration exponent, is fitted on the validation asteroids' looks by their cross-entropy
(``fit_looks_exponent``): 0 where an asteroid's looks add nothing to one another, 1 where each is as
informative as an independent measurement (the product of n agreeing looks' likelihoods).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from astromined.features.engineering import model_inputs
from astromined.ml.model import CompositionNet
from astromined.ml.train import predict


@dataclasses.dataclass(frozen=True)
class AsteroidLooks:
    """The looks of a split's asteroids: each look's model inputs (``x``) and the index of the split's
    row (asteroid) it is a look at (``row``); ``rows`` is the number of asteroids, each with a look."""

    x: np.ndarray
    row: np.ndarray
    rows: int

    def __post_init__(self) -> None:
        if len(self.x) != len(self.row):
            raise ValueError(f"{len(self.x)} look input row(s) for {len(self.row)} asteroid index(es)")
        outside = self.row[(self.row < 0) | (self.row >= self.rows)]
        if len(outside):
            raise ValueError(f"a look names asteroid row {int(outside[0])}, outside the {self.rows} row(s)")
        counts = np.bincount(self.row, minlength=self.rows)
        if self.rows and counts.min() == 0:
            missing = np.flatnonzero(counts == 0)
            raise ValueError(
                f"{len(missing)} asteroid row(s) without a look, e.g. row(s) {missing[:5].tolist()}"
            )

    def __len__(self) -> int:
        return len(self.x)

    def looks_per_row(self) -> np.ndarray:
        return np.bincount(self.row, minlength=self.rows)


def asteroid_looks(asteroid_ids: np.ndarray, look_ids: np.ndarray, look_x: np.ndarray) -> AsteroidLooks:
    """The looks (``look_ids``, ``look_x``: one row each) of the asteroids ``asteroid_ids`` (a split's
    rows, in order). A ValueError names a look at an asteroid not in the split, or an asteroid with no
    look."""
    if len(look_ids) != len(look_x):
        raise ValueError(f"{len(look_ids)} look id(s) for {len(look_x)} look input row(s)")
    row = pd.Index(asteroid_ids).get_indexer(look_ids)  # -1: not one of the split's asteroids
    strangers = row < 0
    if strangers.any():
        raise ValueError(
            f"{int(strangers.sum())} look(s) at asteroid(s) not in the split, e.g. asteroid_id "
            f"{np.unique(look_ids[strangers])[:5].tolist()}"
        )
    counts = np.bincount(row, minlength=len(asteroid_ids))
    if (counts == 0).any():
        raise ValueError(
            f"{int((counts == 0).sum())} asteroid(s) without a look, e.g. asteroid_id "
            f"{asteroid_ids[counts == 0][:5].tolist()}"
        )
    return AsteroidLooks(np.asarray(look_x), row.astype(np.int64), len(asteroid_ids))


def split_looks(
    table: pd.DataFrame, looks: pd.DataFrame | None, split: str = "holdout"
) -> AsteroidLooks | None:
    """The ``looks`` (feature rows with ``asteroid_id``: ``training_set.load_holdout_looks``) of the
    training-set ``table``'s ``split`` asteroids, in the split's row order (``split_arrays``'s); None
    without looks. A ValueError names a look at another asteroid or an asteroid without one."""
    if looks is None:
        return None
    ids = table.loc[table["split"] == split, "asteroid_id"].to_numpy()
    return asteroid_looks(ids, looks["asteroid_id"].to_numpy(), model_inputs(looks))


def mean_over_looks(values: np.ndarray, looks: AsteroidLooks) -> np.ndarray:
    """Per asteroid, the mean of ``values`` (one row, or one value, per look) over its looks."""
    values = np.asarray(values, dtype=np.float64)
    total = np.zeros((looks.rows, *values.shape[1:]))
    np.add.at(total, looks.row, values)
    counts = looks.looks_per_row().reshape((-1,) + (1,) * (values.ndim - 1))
    return total / counts


# The range the looks' calibration exponent is fitted in: 0 (the plain mean) to 1 (n looks worth n
# independent measurements, the most they can be). Without the upper bound a validation split whose
# multi-look asteroids are all right keeps lowering its cross-entropy as it sharpens (7 of 56 first days
# reached 2 when the bound was 2), and with the bound at 2 the holdout's cross-entropy was higher on 1-, 2-
# and 7-day windows than with 1 (BENCHMARKS.md, model quality, sixteenth session).
LOOKS_EXPONENT_RANGE = (0.0, 1.0)
# Probabilities are floored here before their logarithm: a float32 softmax can round a class to 0.
_FLOOR = 1e-12


def sharpen_by_looks(probabilities: np.ndarray, looks_per_row: np.ndarray, exponent: float) -> np.ndarray:
    """Each row's class probabilities (the mean over its looks) raised to the power n^``exponent``, n its
    number of looks, and renormalised: unchanged for n = 1 or ``exponent`` 0; the argmax never changes."""
    if exponent < 0:
        raise ValueError(f"the looks' calibration exponent must be 0 or more, not {exponent}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    looks_per_row = np.asarray(looks_per_row)
    if len(looks_per_row) != len(probabilities):
        raise ValueError(f"{len(looks_per_row)} look count(s) for {len(probabilities)} row(s)")
    if len(looks_per_row) and looks_per_row.min() < 1:
        raise ValueError(f"a row with {int(looks_per_row.min())} looks: every row has at least one")
    power = looks_per_row.astype(np.float64) ** exponent
    logits = np.log(np.maximum(probabilities, _FLOOR)) * power[:, None]
    logits -= logits.max(axis=1, keepdims=True)
    sharpened = np.exp(logits)
    return sharpened / sharpened.sum(axis=1, keepdims=True)


def looks_cross_entropy(
    probabilities: np.ndarray, looks_per_row: np.ndarray, labels: np.ndarray, exponent: float
) -> float:
    """Mean cross-entropy of ``labels`` under ``sharpen_by_looks`` (what ``fit_looks_exponent`` minimises)."""
    sharpened = sharpen_by_looks(probabilities, looks_per_row, exponent)
    return float(-np.mean(np.log(np.maximum(sharpened[np.arange(len(labels)), labels], _FLOOR))))


def fit_looks_exponent(probabilities: np.ndarray, looks_per_row: np.ndarray, labels: np.ndarray) -> float:
    """The looks' calibration exponent (``sharpen_by_looks``) that minimises the cross-entropy of
    ``labels`` given each asteroid's mean probabilities over its looks, within ``LOOKS_EXPONENT_RANGE``:
    fitted on the asteroids with more than one look (the others do not depend on it); 0 where there are
    none. Deterministic (a bounded Brent search, and the bounds)."""
    labels = np.asarray(labels)
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} label(s) for {len(probabilities)} row(s) of probabilities")
    several = np.asarray(looks_per_row) > 1
    if not several.any():
        return 0.0
    rows = (np.asarray(probabilities)[several], np.asarray(looks_per_row)[several], labels[several])

    def loss(exponent: float) -> float:
        return looks_cross_entropy(*rows, exponent)

    fit = minimize_scalar(loss, bounds=LOOKS_EXPONENT_RANGE, method="bounded", options={"xatol": 1e-4})
    # The bounded search never evaluates the bounds themselves; 0 (the looks add nothing) is a real answer.
    return float(min((float(fit.x), *LOOKS_EXPONENT_RANGE), key=loss))


def predict_from_looks(
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    looks: AsteroidLooks,
    exponent: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness per asteroid: ``predict`` (inputs → probabilities, metal)
    on every look, averaged over each asteroid's looks, the probabilities sharpened by the looks'
    calibration ``exponent`` (``sharpen_by_looks``; 0: the plain mean). Float32, as ``predict`` returns."""
    probabilities, metal = predict(looks.x)
    mean = mean_over_looks(probabilities, looks)
    if exponent:
        mean = sharpen_by_looks(mean, looks.looks_per_row(), exponent)
    return mean.astype(np.float32), mean_over_looks(metal, looks).astype(np.float32)


def model_looks_exponent(model: CompositionNet, looks: AsteroidLooks, labels: np.ndarray) -> float:
    """``fit_looks_exponent`` for ``model`` on a split's ``looks`` and its asteroids' ``labels`` (the
    validation split's: candidate_model registers it with the model, model_evaluation applies it)."""
    mean, _ = predict_from_looks(lambda inputs: predict(model, inputs), looks)
    return fit_looks_exponent(mean, looks.looks_per_row(), labels)


def predict_split(
    model: CompositionNet, x: np.ndarray, looks: AsteroidLooks | None, exponent: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness per asteroid of a split: from its looks where they are
    given (``predict_from_looks``, with the model's looks' calibration ``exponent``), else from its
    combined rows ``x``."""
    if looks is None:
        return predict(model, x)
    return predict_from_looks(lambda inputs: predict(model, inputs), looks, exponent)
