"""The training set: feature partitions of a rolling window joined with survey labels, split by asteroid."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.features.reference_stats import ReferenceStatistics
from astromined.storage import BlobStore, read_parquet_metadata, write_parquet

SPLITS = ("train", "validation", "holdout")
# Share of asteroids per split, by a stable hash of the asteroid id: no asteroid is in two splits.
SPLIT_PERCENT = {"train": 70, "validation": 15, "holdout": 15}

_AVERAGED = [
    c for c in FEATURE_TABLE_COLUMNS if c not in ("asteroid_id", "sector", "n_observations", "n_satellites")
]


def combine_days(daily: list[pd.DataFrame]) -> pd.DataFrame:
    """Merge per-day feature tables into one row per asteroid (sorted by id), weighting each day by its
    observations: a feature is the ``n_observations``-weighted mean over the days that measured it (NaN
    where none did), ``n_observations`` the sum, ``sector`` the lowest, ``n_satellites`` the most.

    Plain numpy, one column at a time (one stable sort for the groups, ``np.bincount`` for the weighted
    sums): the former pandas concat + groupby built four copies of the whole window, and on a 7-day
    window of 200 k asteroids a day the memory it touched, not the arithmetic, was most of its time.
    """
    frames = [d for d in daily if not d.empty]
    if not frames:
        raise ValueError("no feature rows in the training window")

    def column(name: str, dtype: type | None = None) -> np.ndarray:
        return np.concatenate([f[name].to_numpy(dtype) for f in frames])

    ids = column("asteroid_id")
    # Each day is already sorted by id: a stable sort merges those runs quickly.
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.empty(len(ids), dtype=bool)
    first[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    group = np.empty(len(ids), dtype=np.intp)
    group[order] = np.cumsum(first) - 1
    n_groups = len(starts)

    observations = column("n_observations")
    weights = observations.astype(np.float64)
    # pandas' groupby sums skip NaN: a day without a count adds nothing, as a zero weight does.
    weights[np.isnan(weights)] = 0.0
    all_weight = np.bincount(group, weights=weights, minlength=n_groups)
    combined: dict[str, np.ndarray] = {
        "asteroid_id": sorted_ids[starts],
        "sector": np.fmin.reduceat(column("sector")[order], starts),
        "n_observations": np.add.reduceat(_nan_to_zero(observations)[order], starts),
        "n_satellites": np.fmax.reduceat(column("n_satellites")[order], starts),
    }
    for name in _AVERAGED:
        values = column(name, np.float64)
        missing = np.isnan(values)
        if missing.any():
            values[missing] = 0.0
            present = np.where(missing, 0.0, weights)
            weight = np.bincount(group, weights=present, minlength=n_groups)
        else:
            weight = all_weight
        total = np.bincount(group, weights=values * weights, minlength=n_groups)
        mean = np.full(n_groups, np.nan)
        np.divide(total, weight, out=mean, where=weight > 0)
        combined[name] = mean
    return pd.DataFrame(combined, columns=FEATURE_TABLE_COLUMNS)


def _nan_to_zero(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f":
        return values
    return np.where(np.isnan(values), 0, values)


def split_of(asteroid_id: np.ndarray) -> np.ndarray:
    """Deterministic split name per asteroid id (a multiplicative hash, stable across runs and hosts)."""
    bucket = (np.asarray(asteroid_id, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    percent = (bucket * np.uint64(100)) >> np.uint64(32)
    train_cut = SPLIT_PERCENT["train"]
    validation_cut = train_cut + SPLIT_PERCENT["validation"]
    return np.where(percent < train_cut, "train", np.where(percent < validation_cut, "validation", "holdout"))


def build_training_set(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Labelled asteroids only, with ``complex``, ``metal_richness`` and ``split`` columns."""
    missing = {"asteroid_id", "complex", "metal_richness"} - set(labels.columns)
    if missing:
        raise ValueError(f"survey catalog is missing column(s) {sorted(missing)}")
    joined = features.merge(
        labels[["asteroid_id", "complex", "metal_richness"]], on="asteroid_id", how="inner"
    )
    joined["split"] = split_of(joined["asteroid_id"].to_numpy())
    return joined.reset_index(drop=True)


MANIFEST_METADATA_KEY = "training_manifest"
REFERENCE_METADATA_KEY = "reference_statistics"


def save_training_set(
    store: BlobStore,
    key: str,
    table: pd.DataFrame,
    manifest: dict[str, Any],
    reference: ReferenceStatistics,
) -> int:
    """Write the table, its manifest (partitions, calibration versions) and the reference statistics of
    its window's daily partitions as ONE object: both travel in the Parquet file's metadata, so a writer
    killed half-way can never leave a new table described by an old manifest or reference (or the
    reverse). Returns the object's size in bytes.

    The reference (what the drift sensor compares each new day with, saved with every model trained on
    this set) belongs to the data, not the model: computed here, from the frames the window was built
    from, a retrain after a change to the model code does not re-read and re-summarize the window."""
    metadata = {MANIFEST_METADATA_KEY: json.dumps(manifest), REFERENCE_METADATA_KEY: reference.to_json()}
    return write_parquet(store, key, table, metadata=metadata)


def load_training_manifest(store: BlobStore, key: str) -> dict[str, Any]:
    """The manifest stored with the training set at ``key``; names the object when it has none."""
    return json.loads(_training_metadata(store, key, MANIFEST_METADATA_KEY))


def load_training_reference(store: BlobStore, key: str) -> ReferenceStatistics:
    """The reference statistics stored with the training set at ``key``; names the object when it has
    none (a training set written before they were stored with it)."""
    return ReferenceStatistics.from_json(_training_metadata(store, key, REFERENCE_METADATA_KEY))


def _training_metadata(store: BlobStore, key: str, entry: str) -> str:
    raw = read_parquet_metadata(store, key).get(entry)
    if raw is None:
        raise ValueError(
            f"{store.describe(key)} has no {entry} metadata: it was written by an older version; "
            "re-materialize training_set"
        )
    return raw
