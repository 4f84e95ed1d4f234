"""Event metadata -> metric values: the pure half of the exporter.

Each function takes the metadata of one Dagster event, already unwrapped to plain Python values
(``{"packets_ok": 120, "quarantine_by_reason": {"crc": 3}, ...}``), and returns what the exporter adds
or sets. The keys are the ones docs/contracts.md lists under "Dagster event metadata read by the
exporter". Malformed metadata raises ``MetadataError`` naming the key at fault; the exporter counts it
and skips the record. No Dagster import, so these are unit-tested without an instance.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from astromined.monitoring.catalog import MARGIN_STATISTICS, MODEL_METRICS, READINESS_STATUSES, SITES

# Asset names the domain metrics come from (the last component of the asset key).
RAW_TELEMETRY = "raw_telemetry"
ASTEROID_FEATURES = "asteroid_features"
MODEL_EVALUATION = "model_evaluation"
CHAMPION_MODEL = "champion_model"
INFRASTRUCTURE_READINESS = "infrastructure_readiness"
UPLINK_PACKAGE = "uplink_package"

# Metadata keys (docs/contracts.md).
PACKETS_OK = "packets_ok"
PACKETS_QUARANTINED = "packets_quarantined"
DUPLICATES = "duplicates"
QUARANTINE_BY_REASON = "quarantine_by_reason"
DRIFT_PREFIX = "drift/"
DRIFT_MAX_PSI = "drift/max_psi"
DRIFT_FEATURES_OVER_THRESHOLD = "drift/features_over_threshold"
DRIFT_CLASS_MIX_SHIFT = "drift/class_mix_shift"
DRIFT_DETECTED = "drift/detected"
PROMOTED = "promoted"
READY_PREFIX = "ready/"
READINESS_ROWS = "readiness/rows"  # assets/readiness.py: [{site, component, status, detail, seconds}, ...]
DATA_TO_MODEL_LATENCY = "data_to_model_latency_s"
PLACEMENT_SITE = "placement/site"
PLACEMENT_CLUSTER = "placement/cluster"
PLACEMENT_REASON = "placement/reason"
PLACEMENT_GPUS = "placement/gpus"


class MetadataError(ValueError):
    """Event metadata that cannot be turned into a metric; the message names the key at fault."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _count(metadata: Mapping[str, Any], key: str, kind: str) -> int:
    if key not in metadata:
        raise MetadataError(kind, f"metadata key {key!r} is missing")
    value = metadata[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise MetadataError(kind, f"metadata key {key!r} must be a non-negative integer, got {value!r}")
    return int(value)


def _number(value: Any, key: str, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise MetadataError(kind, f"metadata key {key!r} must be a number, got {value!r}")
    return float(value)


def _flag(value: Any, key: str, kind: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise MetadataError(kind, f"metadata key {key!r} must be a boolean, got {value!r}")


@dataclasses.dataclass(frozen=True)
class PacketCounts:
    by_outcome: Mapping[str, int]
    quarantined_by_reason: Mapping[str, int]


def packets_from_raw_telemetry(metadata: Mapping[str, Any]) -> PacketCounts:
    """Packet outcomes of one raw_telemetry materialization (added to the packet counters)."""
    kind = "raw_telemetry_metadata"
    by_outcome = {
        "ok": _count(metadata, PACKETS_OK, kind),
        "quarantined": _count(metadata, PACKETS_QUARANTINED, kind),
        "duplicate": _count(metadata, DUPLICATES, kind),
    }
    reasons = metadata.get(QUARANTINE_BY_REASON, {})
    if isinstance(reasons, str):
        try:
            reasons = json.loads(reasons)
        except json.JSONDecodeError as exc:
            raise MetadataError(kind, f"metadata key {QUARANTINE_BY_REASON!r} is not JSON: {exc}") from exc
    if not isinstance(reasons, Mapping):
        raise MetadataError(kind, f"metadata key {QUARANTINE_BY_REASON!r} must map reason -> count")
    by_reason = {str(reason): _count(reasons, reason, kind) for reason in reasons}
    if sum(by_reason.values()) != by_outcome["quarantined"]:
        raise MetadataError(
            kind,
            f"metadata key {QUARANTINE_BY_REASON!r} sums to {sum(by_reason.values())}, "
            f"but {PACKETS_QUARANTINED!r} is {by_outcome['quarantined']}",
        )
    return PacketCounts(by_outcome=by_outcome, quarantined_by_reason=by_reason)


@dataclasses.dataclass(frozen=True)
class DriftScores:
    max_psi: float | None
    features_over_threshold: float | None
    class_mix_shift: float | None
    detected: bool | None


def drift_from_observation(metadata: Mapping[str, Any]) -> DriftScores | None:
    """Drift scores of one asteroid_features observation; None when it carries no ``drift/*`` key."""
    if not any(key.startswith(DRIFT_PREFIX) for key in metadata):
        return None
    kind = "drift_metadata"

    def number(key: str) -> float | None:
        return _number(metadata[key], key, kind) if key in metadata else None

    detected = _flag(metadata[DRIFT_DETECTED], DRIFT_DETECTED, kind) if DRIFT_DETECTED in metadata else None
    over = number(DRIFT_FEATURES_OVER_THRESHOLD)
    if over is not None and over < 0:
        raise MetadataError(kind, f"metadata key {DRIFT_FEATURES_OVER_THRESHOLD!r} is negative: {over}")
    return DriftScores(
        max_psi=number(DRIFT_MAX_PSI),
        features_over_threshold=over,
        class_mix_shift=number(DRIFT_CLASS_MIX_SHIFT),
        detected=detected,
    )


def model_metrics_from_evaluation(metadata: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(role, metric) -> value from a model_evaluation materialization.

    The candidate's metrics are unprefixed (``macro_f1``) or ``candidate_``-prefixed; the champion's and
    the baseline's carry their role as prefix (``champion_macro_f1``, ``baseline_accuracy``). A NaN
    (e.g. no champion yet) means "not measured" and is left out.
    """
    kind = "model_evaluation_metadata"
    values: dict[tuple[str, str], float] = {}
    for metric in MODEL_METRICS:
        keys = {
            "candidate": (f"candidate_{metric}", metric),
            "champion": (f"champion_{metric}",),
            "baseline": (f"baseline_{metric}",),
        }
        for role, candidates in keys.items():
            key = next((k for k in candidates if k in metadata), None)
            if key is None:
                continue
            value = metadata[key]
            if isinstance(value, float) and math.isnan(value):
                continue
            values[(role, metric)] = _number(value, key, kind)
    return values


MODEL_ROLES = ("candidate", "champion", "baseline")

# model_evaluation's metadata key of each catalog.MARGIN_STATISTICS.
BASELINE_MARGIN_KEYS = {
    "margin": "baseline_margin",
    "low": "baseline_margin_low",
    "high": "baseline_margin_high",
    "win_share": "baseline_margin_win_share",
}


def baseline_margin_from_evaluation(metadata: Mapping[str, Any]) -> dict[tuple[str], float]:
    """(statistic,) -> value of the candidate's bootstrapped margin over the baseline, from a model_evaluation
    materialization; empty for one recorded before the bootstrap existed (none of its keys). Some of the keys
    without the others, or a value that is not a number, raise MetadataError naming the key."""
    kind = "model_evaluation_metadata"
    if not any(key in metadata for key in BASELINE_MARGIN_KEYS.values()):
        return {}
    values: dict[tuple[str], float] = {}
    for statistic in MARGIN_STATISTICS:
        key = BASELINE_MARGIN_KEYS[statistic]
        if key not in metadata:
            raise MetadataError(kind, f"metadata key {key!r} is missing")
        values[(statistic,)] = _number(metadata[key], key, kind)
    return values


def champion_metrics_from_promotion(metadata: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """("champion", metric) -> value from a champion_model materialization.

    ``champion_<metric>`` there are the holdout metrics of the model that is champion once the step has
    decided (the promoted candidate's or the kept champion's), so the champion role exists from the
    first promotion on. A NaN or absent key means "not known" and is left out.
    """
    kind = "champion_model_metadata"
    values: dict[tuple[str, str], float] = {}
    for metric in MODEL_METRICS:
        key = f"champion_{metric}"
        value = metadata.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        values[("champion", metric)] = _number(value, key, kind)
    return values


def with_champion_metrics(
    current: Mapping[tuple[str, str], float], champion: Mapping[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """The model-metric series after a champion_model event: its champion role replaces the previous
    champion values; the candidate's and the baseline's (from model_evaluation) stay."""
    return {**{k: v for k, v in current.items() if k[0] != "champion"}, **champion}


def promotion_outcome(metadata: Mapping[str, Any]) -> str:
    """``promoted`` or ``blocked`` from a champion_model materialization."""
    kind = "champion_model_metadata"
    if PROMOTED not in metadata:
        raise MetadataError(kind, f"metadata key {PROMOTED!r} is missing")
    return "promoted" if _flag(metadata[PROMOTED], PROMOTED, kind) else "blocked"


def readiness_from_metadata(metadata: Mapping[str, Any]) -> dict[str, bool]:
    """component -> ready from an infrastructure_readiness materialization (``ready/<component>``)."""
    kind = "readiness_metadata"
    ready = {
        key.removeprefix(READY_PREFIX): _flag(value, key, kind)
        for key, value in metadata.items()
        if key.startswith(READY_PREFIX)
    }
    if not ready:
        raise MetadataError(kind, f"no {READY_PREFIX}<component> metadata key")
    return ready


def data_to_model_latency(metadata: Mapping[str, Any]) -> float | None:
    """Seconds from downlink landed to package signed, or None when the package does not record it."""
    if DATA_TO_MODEL_LATENCY not in metadata:
        return None
    value = _number(metadata[DATA_TO_MODEL_LATENCY], DATA_TO_MODEL_LATENCY, "uplink_metadata")
    if value < 0:
        raise MetadataError("uplink_metadata", f"metadata key {DATA_TO_MODEL_LATENCY!r} is negative: {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Placement:
    site: str
    gpus: int


def placement_from_engine_event(metadata: Mapping[str, Any]) -> Placement | None:
    """The placement decision of one executor engine event; None for other engine events."""
    if PLACEMENT_SITE not in metadata:
        return None
    kind = "placement_metadata"
    site = metadata[PLACEMENT_SITE]
    if site not in SITES:
        raise MetadataError(kind, f"metadata key {PLACEMENT_SITE!r} must be one of {SITES}, got {site!r}")
    gpus = _count(metadata, PLACEMENT_GPUS, kind) if PLACEMENT_GPUS in metadata else 0
    return Placement(site=site, gpus=gpus)


def readiness_rows_from_metadata(metadata: Mapping[str, Any]) -> list[tuple[str, str, str]] | None:
    """(component, site, status) of every row of a readiness materialization; None when it has no rows."""
    kind = "readiness_metadata"
    if READINESS_ROWS not in metadata:
        return None
    rows = metadata[READINESS_ROWS]
    if isinstance(rows, str):
        try:
            rows = json.loads(rows)
        except ValueError:
            raise MetadataError(kind, f"metadata key {READINESS_ROWS!r} is not JSON") from None
    if not isinstance(rows, list):
        raise MetadataError(kind, f"metadata key {READINESS_ROWS!r} must be a list of rows")
    found = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or not all(
            isinstance(row.get(k), str) for k in ("component", "site")
        ):
            raise MetadataError(kind, f"{READINESS_ROWS}[{index}] needs string component and site")
        status = row.get("status")
        if status not in READINESS_STATUSES:
            raise MetadataError(
                kind, f"{READINESS_ROWS}[{index}].status {status!r} is not one of {list(READINESS_STATUSES)}"
            )
        found.append((row["component"], row["site"], status))
    return found
