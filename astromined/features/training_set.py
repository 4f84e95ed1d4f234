"""The training set: feature partitions of a rolling window joined with survey labels, split by asteroid."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.storage import BlobStore, read_parquet_metadata, write_parquet

SPLITS = ("train", "validation", "holdout")
# Share of asteroids per split, by a stable hash of the asteroid id: no asteroid is in two splits.
SPLIT_PERCENT = {"train": 70, "validation": 15, "holdout": 15}

_AVERAGED = [
    c for c in FEATURE_TABLE_COLUMNS if c not in ("asteroid_id", "sector", "n_observations", "n_satellites")
]


def combine_days(daily: list[pd.DataFrame]) -> pd.DataFrame:
    """Merge per-day feature tables into one row per asteroid, weighting each day by its observations."""
    frames = [d for d in daily if not d.empty]
    if not frames:
        raise ValueError("no feature rows in the training window")
    stacked = pd.concat(frames, ignore_index=True)
    weights = stacked["n_observations"].to_numpy(np.float64)
    values = stacked[_AVERAGED].to_numpy(np.float64)
    mask = ~np.isnan(values)
    weighted = pd.DataFrame(np.where(mask, values * weights[:, None], 0.0), columns=_AVERAGED)
    present = pd.DataFrame(np.where(mask, weights[:, None], 0.0), columns=_AVERAGED)
    weighted["asteroid_id"] = present["asteroid_id"] = stacked["asteroid_id"].to_numpy()
    sums = weighted.groupby("asteroid_id").sum()
    counts = present.groupby("asteroid_id").sum()
    combined = (sums / counts.where(counts > 0)).reset_index()
    group = stacked.groupby("asteroid_id", sort=True)
    combined["sector"] = group["sector"].min().to_numpy()
    combined["n_observations"] = group["n_observations"].sum().to_numpy()
    combined["n_satellites"] = group["n_satellites"].max().to_numpy()
    return combined[FEATURE_TABLE_COLUMNS]


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


def save_training_set(store: BlobStore, key: str, table: pd.DataFrame, manifest: dict[str, Any]) -> int:
    """Write the table and its manifest (partitions, calibration versions) as ONE object: the manifest
    travels in the Parquet file's metadata, so a writer killed half-way can never leave a new table
    described by an old manifest (or the reverse). Returns the object's size in bytes."""
    return write_parquet(store, key, table, metadata={MANIFEST_METADATA_KEY: json.dumps(manifest)})


def load_training_manifest(store: BlobStore, key: str) -> dict[str, Any]:
    """The manifest stored with the training set at ``key``; names the object when it has none."""
    raw = read_parquet_metadata(store, key).get(MANIFEST_METADATA_KEY)
    if raw is None:
        raise ValueError(
            f"{store.describe(key)} has no {MANIFEST_METADATA_KEY} metadata: it was written by an older "
            "version; re-materialize training_set"
        )
    return json.loads(raw)
