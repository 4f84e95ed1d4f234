"""What the drift sensor compares a partition with: the champion, its reference statistics, its baseline.

No Dagster here (the sensor wraps it): everything is read from the lake through a ``BlobStore``, so the
same code scores a partition from a notebook or the CLI.

The prediction baseline (the champion's predicted class mix over its reference window, fleet-wide and per
sector) is derived once per champion version from the daily feature partitions named in the version's
lineage and cached at ``drift/baselines/<version>.json``; the model version is content-addressed, so the
cache never goes stale.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from astromined import lake_layout
from astromined.features.drift import DriftReport, DriftThresholds, PredictionBaseline, evaluate_drift
from astromined.features.engineering import model_inputs
from astromined.features.reference_stats import MODEL_SOURCE_COLUMNS, ReferenceStatistics
from astromined.ml.model import CompositionNet
from astromined.ml.registry import ModelRegistry
from astromined.ml.train import predict
from astromined.storage import BlobNotFoundError, BlobStore, read_parquet
from astromined.taxonomy import COMPLEXES

REFERENCE_STATS = "reference_stats.json"
BASELINE_PREFIX = "drift/baselines"


class NoChampionError(LookupError):
    """The registry has no champion yet: there is nothing to compare with."""


class DriftInputError(RuntimeError):
    """A champion exists but what drift needs from it is missing or unreadable."""


def baseline_key(version: str) -> str:
    return f"{BASELINE_PREFIX}/{version}.json"


@dataclasses.dataclass(frozen=True)
class ChampionReference:
    version: str
    model: CompositionNet
    reference: ReferenceStatistics
    baseline: PredictionBaseline


def predicted_complexes(model: CompositionNet, features: pd.DataFrame) -> list[str]:
    """The model's most probable complex for each row of a feature table whose inputs are finite.

    Rows with a non-finite model input are a validation failure of the partition (the blocking
    ``model_inputs_finite`` check), not drift; they are excluded, and the caller scores the same rows.
    """
    if features.empty:
        return []
    probabilities, _ = predict(model, model_inputs(features))
    return [COMPLEXES[i] for i in probabilities.argmax(axis=1)]


def finite_rows(features: pd.DataFrame) -> pd.DataFrame:
    """The rows for which ``model_inputs`` is finite (see ``predicted_complexes``)."""
    finite = np.isfinite(features[MODEL_SOURCE_COLUMNS].to_numpy(np.float64)).all(axis=1)
    return features.loc[finite]


def _build_baseline(
    store: BlobStore, version: str, model: CompositionNet, manifest: dict
) -> PredictionBaseline:
    partitions = manifest.get("lineage", {}).get("training_partitions") or []
    if not partitions:
        raise DriftInputError(f"champion {version}: its manifest names no training_partitions")
    frames = []
    for day in partitions:
        key = lake_layout.asteroid_features(day)
        try:
            frames.append(finite_rows(read_parquet(store, key)))
        except BlobNotFoundError as exc:
            raise DriftInputError(
                f"champion {version}: reference partition {day} is gone from the lake ({store.describe(key)})"
            ) from exc
    window = pd.concat(frames, ignore_index=True)
    return PredictionBaseline.from_predictions(
        version, predicted_complexes(model, window), window["sector"], window["n_observations"]
    )


def load_champion_reference(store: BlobStore) -> ChampionReference:
    """The champion, its ``reference_stats.json`` and its prediction baseline (built and cached if new)."""
    registry = ModelRegistry(store)
    record = registry.champion()
    if record is None:
        raise NoChampionError("no champion model in the registry yet")
    version = record["version"]
    model, manifest = registry.load(version)
    try:
        reference = ReferenceStatistics.from_json(registry.attachment(version, REFERENCE_STATS))
    except KeyError as exc:
        raise DriftInputError(f"champion {version} has no {REFERENCE_STATS} attachment") from exc
    key = baseline_key(version)
    baseline = None
    if store.exists(key):
        try:
            baseline = PredictionBaseline.from_json(store.get_bytes(key))
        except (ValueError, KeyError):
            baseline = None  # an older format or a damaged cache entry: rebuild it below
    if baseline is None or baseline.model_version != version:
        baseline = _build_baseline(store, version, model, manifest)
        store.put_bytes(key, baseline.to_json().encode())
    return ChampionReference(version=version, model=model, reference=reference, baseline=baseline)


def score_partition(
    store: BlobStore, partition: str, champion: ChampionReference, thresholds: DriftThresholds
) -> DriftReport:
    """Read a day's feature partition from the lake and score it against the champion."""
    key = lake_layout.asteroid_features(partition)
    try:
        features = finite_rows(read_parquet(store, key))
    except BlobNotFoundError as exc:
        raise DriftInputError(f"feature partition {partition} not found at {store.describe(key)}") from exc
    labels = predicted_complexes(champion.model, features)
    return evaluate_drift(partition, features, champion.reference, labels, champion.baseline, thresholds)


def report_json(report: DriftReport) -> str:
    return json.dumps(report.to_dict(), sort_keys=True, allow_nan=True)
