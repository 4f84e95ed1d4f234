"""An asteroid's prediction from each of its looks: the mean of the looks' class probabilities.

The network trains on single looks (``features/training_set.py``: one row per observation on windows of
1–3 days, per asteroid and day on longer ones), each an independent noisy measurement. An asteroid's
combined row takes the median of its looks' bands, so a faint look at 7 % reflectance noise counts as
much as a bright one at 0.5 %. Scoring each look and averaging the probabilities lets a noisy look, on
which the network is unsure, weigh less than a clean one it is sure of; an asteroid looked at once gets
exactly its combined row's prediction (its one look *is* that row). The mean is under-confident where
the looks agree (the holdout ECE roughly doubles), which the gate does not judge. Measured in
BENCHMARKS.md (model quality, fifteenth session); model_evaluation scores the holdout this way wherever
the training set stores the holdout asteroids' looks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

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


def predict_from_looks(
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], looks: AsteroidLooks
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness per asteroid: ``predict`` (inputs → probabilities, metal)
    on every look, averaged over each asteroid's looks (float32, as ``predict`` returns them)."""
    probabilities, metal = predict(looks.x)
    return (
        mean_over_looks(probabilities, looks).astype(np.float32),
        mean_over_looks(metal, looks).astype(np.float32),
    )


def predict_split(
    model: CompositionNet, x: np.ndarray, looks: AsteroidLooks | None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness per asteroid of a split: from its looks where they are
    given (``predict_from_looks``), else from its combined rows ``x``."""
    if looks is None:
        return predict(model, x)
    return predict_from_looks(lambda inputs: predict(model, inputs), looks)
