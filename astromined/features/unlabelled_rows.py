"""Unlabelled rows: the window's feature rows of asteroids the survey catalog has no label for, stored
beside the training set for candidate_model's self-training (astromined/ml/self_training.py).

None of them is in any split (a split is a labelled asteroid's), so none is in the holdout the candidate
is judged on. They are each day's own rows (on a one-day window: the day's combined rows), oldest day
first and by id within a day, with a ``day`` column: the rows the eighth session measured self-training
on (BENCHMARKS.md), and those `benchmarks/model_quality.py` now reads back.

Stored only on windows of at most ``max_days`` days (SELF_TRAINING_MAX_DAYS: self-training gained on a
lone first day and nothing on 2- or 3-day windows, BENCHMARKS.md, model quality, eighth session) and
within a row budget. At full scale a day observes ~160,000 unlabelled asteroids, far over it: labels are
plentiful there and the candidate trains on them alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from astromined.features.engineering import FEATURE_TABLE_COLUMNS, finite_model_inputs

# Self-training's window: windows of at most this many days store their unlabelled rows.
SELF_TRAINING_MAX_DAYS = 1
# Most unlabelled rows stored: a one-day window of `make run`'s scale has ~9,900; the student then
# trains on at most twice the train rows.
UNLABELLED_ROW_BUDGET = 50_000


def unlabelled_rows_plan(
    daily: list[pd.DataFrame],
    days: list[str],
    table: pd.DataFrame,
    max_days: int = SELF_TRAINING_MAX_DAYS,
    budget: int = UNLABELLED_ROW_BUDGET,
) -> str | None:
    """Why the window gets no unlabelled rows, or None when it does: counted from the daily feature
    tables (one ``isin`` per day) before anything is copied. ``table`` is the training set (its asteroids
    are the labelled ones). A negative ``max_days`` or ``budget`` raises ValueError naming it."""
    if len(daily) != len(days):
        raise ValueError(f"{len(daily)} feature table(s) for {len(days)} day(s)")
    if max_days < 0:
        raise ValueError(f"self_training_max_days must be 0 (off) or more, not {max_days}")
    if budget < 0:
        raise ValueError(f"unlabelled_row_budget must be 0 (off) or more, not {budget}")
    if len(days) > max_days:
        return (
            f"a {len(days)}-day window is longer than self_training_max_days={max_days}: "
            "the candidate trains on the labelled rows alone"
        )
    labelled = table["asteroid_id"].to_numpy()
    count = sum(int((~np.isin(frame["asteroid_id"].to_numpy(), labelled)).sum()) for frame in daily)
    if count == 0:
        return "no unlabelled asteroid in the window: the candidate trains on the labelled rows alone"
    if count > budget:
        return (
            f"{count} unlabelled rows exceed the budget of {budget} "
            "(TrainingSetConfig.unlabelled_row_budget): the candidate trains on the labelled rows alone"
        )
    return None


def window_unlabelled_rows(
    daily: list[pd.DataFrame],
    days: list[str],
    table: pd.DataFrame,
    max_days: int = SELF_TRAINING_MAX_DAYS,
    budget: int = UNLABELLED_ROW_BUDGET,
) -> tuple[pd.DataFrame | None, str]:
    """The unlabelled rows of the window (``daily``: its feature tables, by id; ``table``: the training
    set), or None, and in both cases the note that says what was stored or why nothing was. A row whose
    model inputs are not all finite is left out, and the note counts it."""
    note = unlabelled_rows_plan(daily, days, table, max_days, budget)
    if note is not None:
        return None, note
    labelled = table["asteroid_id"].to_numpy()
    parts, left_out = [], 0
    for day, frame in zip(days, daily, strict=True):
        part = frame.loc[~np.isin(frame["asteroid_id"].to_numpy(), labelled), FEATURE_TABLE_COLUMNS]
        finite = finite_model_inputs(part) if len(part) else np.ones(0, dtype=bool)
        left_out += int((~finite).sum())
        part = part.loc[finite].sort_values("asteroid_id", kind="stable")
        parts.append(part.assign(day=day))
    rows = pd.concat(parts, ignore_index=True)
    note = f"{len(rows)} unlabelled rows over {len(days)} day(s) for self-training"
    if left_out:
        note += f"; {left_out} without finite model inputs left out"
    if rows.empty:
        return None, note + ": none left, the candidate trains on the labelled rows alone"
    return rows, note
