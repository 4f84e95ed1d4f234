"""The unseen-asteroids test set of the model-quality benchmark (``model_quality.py --unseen``).

The gate's holdout on a first day holds ~370 asteroids, so one asteroid is 0.0025 macro-F1 and a case
whose network and baseline differ by an asteroid or two is a coin flip of that holdout
(BENCHMARKS.md, model quality). To tell which of the two is the better model on such a day, a case is
also scored on every labelled asteroid its networks and its baseline were not trained on (not in the
case's train or validation split), on each *other* benchmark day of the same population on which it was
looked at: each (asteroid, day) is one item, scored as model_evaluation scores a holdout of that day's
window (the network from the asteroid's looks on that day, the baseline on its combined row). The split
is per asteroid (``features.training_set.split_of``), so no holdout asteroid of any day is trained on, and
the case's own day is left out, so the set shares no observation with the gate's holdout. With seven
benchmark days it holds several thousand items per case.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from astromined.features.engineering import model_inputs
from astromined.features.training_set import LookRows
from astromined.ml.dataset import SplitArrays, concatenated, split_arrays
from astromined.ml.looks import AsteroidLooks, asteroid_looks

SPLITS = ("train", "validation", "holdout")
TRAINED_SPLITS = ("train", "validation")


@dataclasses.dataclass(frozen=True)
class LabelledDay:
    """Every labelled asteroid of one training set (one benchmark day's window), all splits: its id,
    split and combined row, and its looks (``look_ids`` / ``look_x``, one row per look)."""

    ids: np.ndarray
    splits: np.ndarray
    rows: SplitArrays
    look_ids: np.ndarray
    look_x: np.ndarray

    def trained_ids(self) -> np.ndarray:
        """The asteroids a network or baseline trained on this set has seen (train and validation)."""
        return self.ids[np.isin(self.splits, TRAINED_SPLITS)]


def labelled_day(
    table: pd.DataFrame,
    look_rows: LookRows | None,
    validation_looks: pd.DataFrame | None,
    holdout_looks: pd.DataFrame | None,
) -> LabelledDay:
    """A training set's labelled asteroids with their looks: the train asteroids' look rows, the
    validation and holdout asteroids' stored looks. Without look rows (a window over the row budget),
    each asteroid's one look is its combined row, which is how such a window's holdout is scored."""
    ids = np.concatenate([table.loc[table["split"] == s, "asteroid_id"].to_numpy() for s in SPLITS])
    splits = np.concatenate([np.full(int((table["split"] == s).sum()), s) for s in SPLITS])
    rows = concatenated([split_arrays(table, s) for s in SPLITS])
    if look_rows is None or validation_looks is None or holdout_looks is None:
        return LabelledDay(ids, splits, rows, ids, rows.x)
    train_looks = look_rows.rows.loc[look_rows.rows["split"] == "train"]
    looks = [train_looks, validation_looks, holdout_looks]
    look_ids = np.concatenate([frame["asteroid_id"].to_numpy() for frame in looks])
    look_x = np.concatenate([model_inputs(frame) for frame in looks])
    return LabelledDay(ids, splits, rows, look_ids, look_x)


def unseen_items(
    days: dict[str, LabelledDay], case_day: str, splits: tuple[str, ...] = SPLITS
) -> tuple[SplitArrays, AsteroidLooks, int]:
    """The unseen-asteroid items of the case ``case_day``: from every other day of ``days``, each labelled
    asteroid of ``splits`` not in the case's train or validation split (``splits=("holdout",)``: the other
    days' holdouts, drawn as the gate's holdout is; all splits add the asteroids the case's day did not
    look at, which are fainter on average, being looked at less). Returns their combined rows (the
    baseline's inputs and everyone's labels), their looks with each item's row index, and the number of
    distinct asteroids. A ValueError names a day whose looks miss an asteroid or name a stranger."""
    trained = days[case_day].trained_ids()
    parts: list[SplitArrays] = []
    look_x: list[np.ndarray] = []
    look_row: list[np.ndarray] = []
    asteroids: list[np.ndarray] = []
    offset = 0
    for day, labelled in days.items():
        if day == case_day:
            continue
        keep = ~np.isin(labelled.ids, trained) & np.isin(labelled.splits, splits)
        ids = labelled.ids[keep]
        looked = np.isin(labelled.look_ids, ids)
        try:
            looks = asteroid_looks(ids, labelled.look_ids[looked], labelled.look_x[looked])
        except ValueError as error:
            raise ValueError(f"the looks of benchmark day {day}: {error}") from error
        parts.append(
            SplitArrays(labelled.rows.x[keep], labelled.rows.y_class[keep], labelled.rows.y_metal[keep])
        )
        look_x.append(looks.x)
        look_row.append(looks.row + offset)
        asteroids.append(ids)
        offset += len(ids)
    if not parts:
        raise ValueError(f"no benchmark day besides {case_day}: the unseen asteroids need at least two days")
    items = concatenated(parts)
    looks = AsteroidLooks(np.concatenate(look_x), np.concatenate(look_row), offset)
    return items, looks, len(np.unique(np.concatenate(asteroids)))
