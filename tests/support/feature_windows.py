"""Small synthetic feature windows for the training-set tests: daily feature tables whose values say
which asteroid and day they came from, a survey catalog, and the training set built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.features.training_set import build_training_set, combine_days

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


def feature_day(ids: list[int], day_index: int, looks: int = 1) -> pd.DataFrame:
    """A feature table whose values say which asteroid and day they came from; ``looks`` each."""
    ids = sorted(ids)
    frame = pd.DataFrame({c: np.zeros(len(ids)) for c in FEATURE_TABLE_COLUMNS})
    frame["asteroid_id"] = np.array(ids, dtype=np.int64)
    frame["sector"] = np.array(ids, dtype=np.int64) % 7
    frame["n_observations"] = np.full(len(ids), looks, dtype=np.int64)
    frame["n_satellites"] = np.ones(len(ids), dtype=np.int64)
    frame["albedo"] = 0.1 + 0.01 * day_index + np.array(ids) * 1e-6
    frame["radar_albedo"] = np.where(np.array(ids) % 2 == 0, np.nan, 0.2 + 0.01 * day_index)
    return frame[FEATURE_TABLE_COLUMNS]


def catalog(ids) -> pd.DataFrame:
    ids = np.array(sorted(ids), dtype=np.int64)
    return pd.DataFrame(
        {
            "asteroid_id": ids,
            "complex": np.where(ids % 3 == 0, "S", "C"),
            "metal_richness": (ids % 10) / 10.0,
        }
    )


def window(daily_ids: list[list[int]], labelled: set[int], looks: int = 1):
    """(days, daily feature tables, training set) of a window whose day i observes ``daily_ids[i]``."""
    days = DAYS[: len(daily_ids)]
    daily = [feature_day(ids, i, looks) for i, ids in enumerate(daily_ids)]
    table = build_training_set(combine_days(daily), catalog(labelled))
    return days, daily, table
