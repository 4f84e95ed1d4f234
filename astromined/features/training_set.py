"""The training set: feature partitions of a rolling window joined with survey labels, split by asteroid."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from astromined import lake_layout
from astromined.calibration import FleetCalibration
from astromined.features.engineering import (
    FEATURE_TABLE_COLUMNS,
    INPUT_COLUMNS,
    features_per_look,
    finite_model_inputs,
)
from astromined.features.reference_stats import ReferenceStatistics
from astromined.storage import (
    BlobNotFoundError,
    BlobStore,
    read_arrow_columns,
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


# Look rows: the candidate trains on every look at a train asteroid, not only on its combined row. Each
# look is an independent noisy measurement of the asteroid. The unit of a look (BENCHMARKS.md, model
# quality; default-scale windows, 8 populations x 7 days):
# - "observation": one row per observation, built from the raw observations (features_per_look). On a
#   one-day window (~1,700 train asteroids, 1.6 looks each) it cut the candidate's holdout errors by 6 %
#   and its losses to the baseline from 20 to 11 of 168 (case, training seed) pairs, for ~1.4x the
#   training time. On 2-day windows it beats "day" rows (56 of 56 wins against 54; fewer holdout errors
#   on 36 cases, more on 14), on 3-day windows it is level with them (55 against 54; 27 / 21);
# - "day": one row per asteroid and day, that day's feature row. On 7-day windows it wins 56 of 56 cases
#   (50 with the combined rows), and it beats "observation" rows there (fewer holdout errors on 29 cases,
#   more on 16; 627 against 656 in all); on 4-day windows the two are level (956 errors each). Either way
#   for ~0.75x the training time of "observation" rows;
# - "auto" (the default): "observation" on windows shorter than OBSERVATION_LOOKS_BELOW_DAYS, else "day".
# Above the budget (at full scale every asteroid is seen every day, many times) labels are plentiful and
# the combined rows are kept.
LOOK_UNITS = ("auto", "observation", "day")
OBSERVATION_LOOKS_BELOW_DAYS = 4
LOOK_ROW_BUDGET = 50_000
# How long a superseded look-rows object is kept: a reader that loaded the previous manifest a moment
# ago, or a concurrent writer between its two writes, still finds its object.
LOOK_ROWS_GRACE_S = 3600.0
# The `day` of a train asteroid's combined row, used when none of its looks has finite model inputs.
COMBINED_DAY = "combined"
_LABELS = ["asteroid_id", "complex", "metal_richness", "split"]


@dataclasses.dataclass(frozen=True)
class LookRows:
    """Train rows of the training set, one per look (``unit``) at a train asteroid, with its labels and a
    ``day`` column; and the holdout and validation asteroids' looks in the same form (``holdout``: what
    model_evaluation scores the networks on, ``ml/looks.py``; ``validation``: what candidate_model fits
    the looks' calibration exponent on; None in a set written before them)."""

    rows: pd.DataFrame
    unit: str
    holdout: pd.DataFrame | None = None
    validation: pd.DataFrame | None = None

    @property
    def kind(self) -> str:
        """What one train row is, as the candidate's metadata and the run summary say it."""
        return "per look" if self.unit == "observation" else "per asteroid and day"


def resolve_look_unit(unit: str, days: int) -> str:
    """The unit of a look on a window of ``days`` days: ``unit`` itself, or what "auto" means there."""
    if unit not in LOOK_UNITS:
        raise ValueError(f"look_unit must be one of {list(LOOK_UNITS)}, not {unit!r}")
    if unit != "auto":
        return unit
    return "observation" if days < OBSERVATION_LOOKS_BELOW_DAYS else "day"


def look_rows_plan(
    daily: list[pd.DataFrame],
    days: list[str],
    table: pd.DataFrame,
    unit: str = "auto",
    budget: int = LOOK_ROW_BUDGET,
) -> str | None:
    """Why the window gets no look rows, or None when it does: counted from the daily feature tables
    (``n_observations`` of each train asteroid's row, or one per row for ``"day"``) before anything is
    read or copied, so a window over the budget costs one ``isin`` per day."""
    if len(daily) != len(days):
        raise ValueError(f"{len(daily)} feature table(s) for {len(days)} day(s)")
    if budget < 0:
        raise ValueError(f"look_row_budget must be 0 (off) or more, not {budget}")
    unit = resolve_look_unit(unit, len(days))
    if unit == "day" and len(days) < 2:
        return "one-day window: its per-day rows are the combined rows"
    train_ids = table.loc[table["split"] == "train", "asteroid_id"].to_numpy()
    count = 0
    for frame in daily:
        seen = np.isin(frame["asteroid_id"].to_numpy(), train_ids)
        looks = frame["n_observations"].to_numpy()[seen] if unit == "observation" else seen[seen]
        count += int(looks.sum())
    if count > budget:
        return (
            f"{count} train looks ({unit}) exceed the budget of {budget} "
            "(TrainingSetConfig.look_row_budget): the candidate trains on the combined rows"
        )
    return None


def train_look_rows(
    looks: list[pd.DataFrame], days: list[str], table: pd.DataFrame, unit: str
) -> tuple[LookRows, str]:
    """The look rows of ``table``'s train asteroids from each day's ``looks`` (rows of feature columns:
    ``features_per_look`` of the day's observations for ``"observation"``, the day's feature table for
    ``"day"``), oldest day first and by id within a day, with the asteroid's labels and a ``day`` column;
    the holdout and validation asteroids' looks too (``LookRows.holdout``, ``LookRows.validation``), the
    same way.

    A look whose model inputs are not all finite (an observation lacking a measurement that its
    asteroid's medians skip) is left out; an asteroid left with no look gets its combined row instead
    (``day`` = COMBINED_DAY). Returns the rows and a note that counts the train rows and both cases."""
    if len(looks) != len(days):
        raise ValueError(f"{len(looks)} look table(s) for {len(days)} day(s)")
    if unit not in ("observation", "day"):
        raise ValueError(f"the look rows' unit is 'observation' or 'day', not {unit!r}")
    rows, left_out, lookless = split_look_rows(looks, days, table, "train")
    note = f"{len(rows)} train rows, one per {unit}, over {len(days)} day(s)"
    if left_out:
        note += (
            f"; {left_out} look(s) without finite model inputs left out, {lookless} asteroid(s) "
            "with no other look train on their combined row"
        )
    holdout, _, _ = split_look_rows(looks, days, table, "holdout")
    validation, _, _ = split_look_rows(looks, days, table, "validation")
    note += f"; {len(holdout)} holdout looks; {len(validation)} validation looks"
    return LookRows(rows, unit, holdout, validation), note


def split_look_rows(
    looks: list[pd.DataFrame], days: list[str], table: pd.DataFrame, split: str
) -> tuple[pd.DataFrame, int, int]:
    """The looks of ``table``'s ``split`` asteroids (``train_look_rows``), the number of looks left out
    for non-finite inputs, and the number of asteroids that have their combined row instead."""
    labels = table.loc[table["split"] == split, _LABELS]
    parts, left_out = [], 0
    for day, frame in zip(days, looks, strict=True):
        part = frame.loc[frame["asteroid_id"].isin(labels["asteroid_id"]), FEATURE_TABLE_COLUMNS]
        finite = finite_model_inputs(part) if len(part) else np.ones(0, dtype=bool)
        left_out += int((~finite).sum())
        # By id, as the feature tables are; a stable sort keeps each asteroid's looks in the raw
        # partition's order.
        part = part.loc[finite].sort_values("asteroid_id", kind="stable")
        part = part.merge(labels, on="asteroid_id", how="inner")
        part.insert(len(part.columns), "day", day)
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True)
    lookless = labels.loc[~labels["asteroid_id"].isin(rows["asteroid_id"])]
    if len(lookless):
        combined = table.loc[
            table["asteroid_id"].isin(lookless["asteroid_id"]), FEATURE_TABLE_COLUMNS + _LABELS[1:]
        ]
        rows = pd.concat([rows, combined.assign(day=COMBINED_DAY)], ignore_index=True)
    return rows, left_out, len(lookless)


def observation_looks(
    store: BlobStore,
    days: list[str],
    calibrations: dict[str, str],
    asteroid_ids: np.ndarray,
    calibration_for: Callable[[str], FleetCalibration],
) -> tuple[list[pd.DataFrame] | None, str | None]:
    """Each day's looks at ``asteroid_ids``: ``features_per_look`` of the day's raw observations in the
    lake, under the calibration its feature partition was computed with (``calibrations``, by day).
    Returns None and why instead when the window has to train without them: a raw partition that is gone
    or unreadable, or a day whose calibration (``calibration_for``) changed since its features."""
    looks = []
    for day in days:
        calibration = calibration_for(day)
        if str(calibration.version) != calibrations[day]:
            return None, (
                f"asteroid_features[{day}] was computed with calibration {calibrations[day]}, the landing "
                f"zone now has {calibration.version} for that day: re-materialize asteroid_features[{day}] "
                "to train on its looks; the candidate trains on the combined rows"
            )
        try:
            observations = read_arrow_columns(store, lake_layout.raw_observations(day), INPUT_COLUMNS)
        except (BlobNotFoundError, ValueError) as exc:
            return (
                None,
                f"raw_telemetry[{day}] cannot be read ({exc}): the candidate trains on the combined rows",
            )
        ids = observations["asteroid_id"]
        seen = pc.is_in(ids, value_set=pa.array(asteroid_ids, ids.type))
        looks.append(features_per_look(observations.filter(seen), calibration))
    return looks, None


def window_look_rows(
    store: BlobStore,
    daily: list[pd.DataFrame],
    days: list[str],
    table: pd.DataFrame,
    calibrations: dict[str, str],
    calibration_for: Callable[[str], FleetCalibration],
    unit: str = "auto",
    budget: int = LOOK_ROW_BUDGET,
) -> tuple[LookRows | None, str]:
    """The look rows of the window (``daily``: its feature tables; ``calibrations``: the version each was
    computed with), or None, and in both cases the note that says what was stored or why nothing was:
    ``resolve_look_unit``, ``look_rows_plan``, then ``observation_looks`` (unit ``"observation"``) or the
    daily tables (``"day"``), then ``train_look_rows``. A bad ``unit`` or ``budget`` raises ValueError."""
    unit = resolve_look_unit(unit, len(days))
    note = look_rows_plan(daily, days, table, unit, budget)
    if note is not None:
        return None, note
    looks: list[pd.DataFrame] | None = daily
    if unit == "observation":
        # The holdout's and validation's looks too, read in the same pass: model_evaluation scores the
        # networks on the holdout's, candidate_model fits the looks' calibration on the validation's.
        looks, why = observation_looks(
            store, days, calibrations, table["asteroid_id"].to_numpy(), calibration_for
        )
        if looks is None:
            return None, str(why)
    return train_look_rows(looks, days, table, unit)


def look_rows_prefix(key: str) -> str:
    """Where the look rows of the training set at ``key`` live, one object per write."""
    return f"{key.removesuffix('.parquet')}_look_rows/"


def holdout_looks_prefix(key: str) -> str:
    """Where the holdout looks of the training set at ``key`` live, one object per write."""
    return f"{key.removesuffix('.parquet')}_holdout_looks/"


def validation_looks_prefix(key: str) -> str:
    """Where the validation looks of the training set at ``key`` live, one object per write."""
    return f"{key.removesuffix('.parquet')}_validation_looks/"


def unlabelled_rows_prefix(key: str) -> str:
    """Where the unlabelled rows of the training set at ``key`` live, one object per write."""
    return f"{key.removesuffix('.parquet')}_unlabelled_rows/"


def _per_day_prefix(key: str) -> str:
    """Where the previous version wrote its per-day rows (``per_day_train``): cleaned up like look rows."""
    return f"{key.removesuffix('.parquet')}_per_day_train/"


MANIFEST_METADATA_KEY = "training_manifest"
REFERENCE_METADATA_KEY = "reference_statistics"


def save_training_set(
    store: BlobStore,
    key: str,
    table: pd.DataFrame,
    manifest: dict[str, Any],
    reference: ReferenceStatistics,
    look_rows: LookRows | None = None,
    now: float | None = None,
    unlabelled_rows: pd.DataFrame | None = None,
) -> int:
    """Write the table, its manifest (partitions, calibration versions) and the reference statistics of
    its window's daily partitions as ONE object: both travel in the Parquet file's metadata, so a writer
    killed half-way can never leave a new table described by an old manifest or reference (or the
    reverse). Returns the object's size in bytes.

    The reference (what the drift sensor compares each new day with, saved with every model trained on
    this set) belongs to the data, not the model: computed here, from the frames the window was built
    from, a retrain after a change to the model code does not re-read and re-summarize the window.

    ``look_rows`` (``train_look_rows``; its holdout and validation looks too) and ``unlabelled_rows``
    (``features/unlabelled_rows.py``) are written first, each to a key of its own that the manifest names
    (``look_rows``, ``holdout_looks``, ``validation_looks``, ``unlabelled_rows``): a reader always finds
    the rows its manifest names, and a writer killed between the writes leaves only unreferenced objects.
    Superseded objects of each kind older than ``LOOK_ROWS_GRACE_S`` are deleted after the table is
    written, and so are the previous version's per-day objects."""
    manifest = dict(manifest)
    manifest["look_rows"] = None
    if look_rows is not None:
        look_key = _write_side_rows(store, look_rows_prefix(key), look_rows.rows)
        manifest["look_rows"] = {"key": look_key, "rows": len(look_rows.rows), "unit": look_rows.unit}
    scored_looks = {
        "holdout_looks": (holdout_looks_prefix(key), look_rows.holdout if look_rows else None),
        "validation_looks": (validation_looks_prefix(key), look_rows.validation if look_rows else None),
    }
    for name, (prefix, looks) in scored_looks.items():
        manifest[name] = None
        if looks is not None:
            manifest[name] = {"key": _write_side_rows(store, prefix, looks), "rows": len(looks)}
    manifest["unlabelled_rows"] = None
    if unlabelled_rows is not None:
        unlabelled_key = _write_side_rows(store, unlabelled_rows_prefix(key), unlabelled_rows)
        manifest["unlabelled_rows"] = {"key": unlabelled_key, "rows": len(unlabelled_rows)}
    metadata = {MANIFEST_METADATA_KEY: json.dumps(manifest), REFERENCE_METADATA_KEY: reference.to_json()}
    size = write_parquet(store, key, table, metadata=metadata)
    entries = (
        manifest["look_rows"],
        manifest["holdout_looks"],
        manifest["validation_looks"],
        manifest["unlabelled_rows"],
    )
    current = {entry["key"] for entry in entries if entry}
    now = time.time() if now is None else now
    prefixes = (
        look_rows_prefix(key),
        holdout_looks_prefix(key),
        validation_looks_prefix(key),
        unlabelled_rows_prefix(key),
        _per_day_prefix(key),
    )
    for stale in [k for prefix in prefixes for k in store.list_keys(prefix)]:
        if stale in current:
            continue
        try:
            if now - store.modified_at(stale) > LOOK_ROWS_GRACE_S:
                store.delete(stale)
        except BlobNotFoundError:
            continue  # a concurrent writer removed it first
    return size


def _write_side_rows(store: BlobStore, prefix: str, rows: pd.DataFrame) -> str:
    """Write ``rows`` to a new object under ``prefix`` (one per write: never over what a reader of the
    previous manifest is reading) and return its key."""
    key = f"{prefix}{uuid.uuid4().hex}.parquet"
    write_parquet(store, key, rows)
    return key


def _read_side_rows(store: BlobStore, entry: dict[str, Any], what: str) -> pd.DataFrame:
    """The rows a manifest entry (``key``, ``rows``) names; a ValueError naming the object and the
    remedy when they are gone or are not the rows it names."""
    try:
        rows = read_parquet(store, entry["key"])
    except BlobNotFoundError as exc:
        raise ValueError(
            f"the training set names {what} at {store.describe(entry['key'])}, which are gone "
            "(deleted by hand, or superseded over an hour ago): re-materialize training_set"
        ) from exc
    if len(rows) != entry["rows"]:
        raise ValueError(
            f"{store.describe(entry['key'])} holds {len(rows)} rows, the training set names {entry['rows']}: "
            "re-materialize training_set"
        )
    return rows


def load_look_rows(store: BlobStore, manifest: dict[str, Any]) -> LookRows | None:
    """The look rows the manifest names, or None when it names none (a window over the row budget, or a
    training set written before they existed). A set written with per-day rows only (``per_day_train``)
    reads as unit ``"day"``."""
    entry = manifest.get("look_rows")
    if entry is None and manifest.get("per_day_train"):
        entry = dict(manifest["per_day_train"], unit="day")
    if not entry:
        return None
    return LookRows(_read_side_rows(store, entry, "look rows"), entry["unit"])


def load_holdout_looks(store: BlobStore, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The holdout asteroids' looks the manifest names (``LookRows.holdout``), or None when it names none
    (a window without look rows, or a training set written before them): the holdout is then scored on
    its combined rows."""
    entry = manifest.get("holdout_looks")
    return _read_side_rows(store, entry, "holdout looks") if entry else None


def load_validation_looks(store: BlobStore, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The validation asteroids' looks the manifest names (``LookRows.validation``), or None when it
    names none (a window without look rows, or a training set written before them): candidate_model then
    fits no looks' calibration exponent (0: the plain mean of the looks)."""
    entry = manifest.get("validation_looks")
    return _read_side_rows(store, entry, "validation looks") if entry else None


def load_unlabelled_rows(store: BlobStore, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The unlabelled rows the manifest names (``features/unlabelled_rows.py``), or None when it names
    none (a window longer than self-training's, over the row budget, or a set written before them)."""
    entry = manifest.get("unlabelled_rows")
    return _read_side_rows(store, entry, "unlabelled rows") if entry else None


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
