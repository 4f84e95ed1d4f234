"""The training set: feature partitions of a rolling window joined with survey labels, split by asteroid."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.features.reference_stats import ReferenceStatistics
from astromined.storage import (
    BlobNotFoundError,
    BlobStore,
    read_parquet,
    read_parquet_metadata,
    write_parquet,
)

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


# Per-day train rows: the candidate trains on every day's look at a train asteroid, not only on their
# combined row. On 7-day windows at the default scale (~2,800 train asteroids, each seen on ~4 days) that
# beat the baseline on 56 of 56 (population, day) cases against 50 with the combined rows, for ~3x the
# training time (BENCHMARKS.md, model quality). Above the budget (at full scale every asteroid is seen
# every day: 7x the rows) labels are plentiful and the combined rows are kept.
PER_DAY_ROW_BUDGET = 50_000
# How long a superseded per-day object is kept: a reader that loaded the previous manifest a moment ago,
# or a concurrent writer between its two writes, still finds its object.
PER_DAY_GRACE_S = 3600.0


def per_day_train_rows(
    daily: list[pd.DataFrame], days: list[str], table: pd.DataFrame, budget: int = PER_DAY_ROW_BUDGET
) -> tuple[pd.DataFrame | None, str]:
    """One row per train-split asteroid of ``table`` AND day of the window that observed it: that day's
    own feature row (each day is an independent noisy measurement of the asteroid) with the asteroid's
    labels, a ``day`` column, oldest day first and by id within a day.

    Returns ``(rows, why)``; ``rows`` is None, and ``why`` says so, when the per-day rows would add
    nothing (a one-day window: they are the combined rows) or would exceed ``budget`` rows (0: never).
    Counted before anything is copied, so a window over the budget costs one ``isin`` per day.
    """
    if len(daily) != len(days):
        raise ValueError(f"{len(daily)} feature table(s) for {len(days)} day(s)")
    if budget < 0:
        raise ValueError(f"per_day_row_budget must be 0 (off) or more, not {budget}")
    if len(days) < 2:
        return None, "one-day window: the per-day rows are the combined rows"
    labels = table.loc[table["split"] == "train", ["asteroid_id", "complex", "metal_richness", "split"]]
    train_ids = labels["asteroid_id"].to_numpy()
    observed = [np.isin(frame["asteroid_id"].to_numpy(), train_ids) for frame in daily]
    count = int(sum(mask.sum() for mask in observed))
    if count > budget:
        return None, (
            f"{count} per-day train rows exceed the budget of {budget} "
            "(TrainingSetConfig.per_day_row_budget): the candidate trains on the combined rows"
        )
    parts = []
    for day, frame, mask in zip(days, daily, observed, strict=True):
        part = frame.loc[mask, FEATURE_TABLE_COLUMNS].merge(labels, on="asteroid_id", how="inner")
        part.insert(len(part.columns), "day", day)
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True)
    return rows, f"{len(rows)} per-day train rows over {len(days)} days"


def per_day_prefix(key: str) -> str:
    """Where the per-day train rows of the training set at ``key`` live, one object per write."""
    return f"{key.removesuffix('.parquet')}_per_day_train/"


MANIFEST_METADATA_KEY = "training_manifest"
REFERENCE_METADATA_KEY = "reference_statistics"


def save_training_set(
    store: BlobStore,
    key: str,
    table: pd.DataFrame,
    manifest: dict[str, Any],
    reference: ReferenceStatistics,
    per_day: pd.DataFrame | None = None,
    now: float | None = None,
) -> int:
    """Write the table, its manifest (partitions, calibration versions) and the reference statistics of
    its window's daily partitions as ONE object: both travel in the Parquet file's metadata, so a writer
    killed half-way can never leave a new table described by an old manifest or reference (or the
    reverse). Returns the object's size in bytes.

    The reference (what the drift sensor compares each new day with, saved with every model trained on
    this set) belongs to the data, not the model: computed here, from the frames the window was built
    from, a retrain after a change to the model code does not re-read and re-summarize the window.

    ``per_day`` (``per_day_train_rows``) is written first, to a key of its own that the manifest names
    (``per_day_train``): a reader always finds the rows its manifest names, and a writer killed between
    the two writes leaves only an unreferenced object. Superseded per-day objects older than
    ``PER_DAY_GRACE_S`` are deleted after the table is written."""
    manifest = dict(manifest)
    manifest["per_day_train"] = None
    if per_day is not None:
        per_day_key = f"{per_day_prefix(key)}{uuid.uuid4().hex}.parquet"
        write_parquet(store, per_day_key, per_day)
        manifest["per_day_train"] = {"key": per_day_key, "rows": len(per_day)}
    metadata = {MANIFEST_METADATA_KEY: json.dumps(manifest), REFERENCE_METADATA_KEY: reference.to_json()}
    size = write_parquet(store, key, table, metadata=metadata)
    current = manifest["per_day_train"]["key"] if per_day is not None else None
    now = time.time() if now is None else now
    for stale in store.list_keys(per_day_prefix(key)):
        if stale == current:
            continue
        try:
            if now - store.modified_at(stale) > PER_DAY_GRACE_S:
                store.delete(stale)
        except BlobNotFoundError:
            continue  # a concurrent writer removed it first
    return size


def load_per_day_train(store: BlobStore, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The per-day train rows the manifest names, or None when it names none (a one-day window, a window
    over the row budget, or a training set written before they existed)."""
    entry = manifest.get("per_day_train")
    if not entry:
        return None
    try:
        rows = read_parquet(store, entry["key"])
    except BlobNotFoundError as exc:
        raise ValueError(
            f"the training set names per-day train rows at {store.describe(entry['key'])}, which are gone "
            "(deleted by hand, or superseded over an hour ago): re-materialize training_set"
        ) from exc
    if len(rows) != entry["rows"]:
        raise ValueError(
            f"{store.describe(entry['key'])} holds {len(rows)} rows, the training set names {entry['rows']}: "
            "re-materialize training_set"
        )
    return rows


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
