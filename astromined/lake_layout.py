"""Object keys in the lake, defined once (the model registry's own keys live in ml/registry.py)."""

from __future__ import annotations

import re

RAW_OBSERVATIONS_PREFIX = "telemetry/raw"
FEATURES_PREFIX = "features/asteroid"
TRAINING_SET = "training/training_set.parquet"
SECTOR_RANKINGS = "rankings/sector_rankings.parquet"
CANDIDATE_POINTER = "models/candidate.json"
UPLINK_LATEST = "uplink/latest.json"

# Parquet metadata entry of a feature partition: the fleet calibration table its observations were
# corrected with ("unknown" for partitions written before the entry existed).
CALIBRATION_VERSION = "calibration_version"
UNKNOWN_CALIBRATION = "unknown"


def raw_observations(day: str) -> str:
    return f"{RAW_OBSERVATIONS_PREFIX}/day={day}/observations.parquet"


def raw_quarantine(day: str) -> str:
    return f"telemetry/quarantine/day={day}/quarantine.parquet"


def asteroid_features(day: str) -> str:
    return f"{FEATURES_PREFIX}/day={day}/features.parquet"


def feature_days(keys: list[str]) -> list[str]:
    """The days for which a feature partition exists, given the keys under FEATURES_PREFIX."""
    days = {m.group(1) for k in keys if (m := re.search(r"/day=(\d{4}-\d{2}-\d{2})/features\.parquet$", k))}
    return sorted(days)


def evaluation(version: str) -> str:
    return f"models/evaluations/{version}.json"


def evaluation_confusion_png(version: str) -> str:
    """The candidate's holdout confusion matrix as a picture, beside its evaluation."""
    return f"models/evaluations/{version}_confusion.png"


def uplink_package(version: str) -> str:
    return f"uplink/{version}/package.tar"


# A package is built and checked under the staging prefix, one folder per run, and copied to
# uplink_package(version) only when every check passed; latest.json is written last. No public key is
# published beside a package: packages are verified with the fleet's configured key.
UPLINK_STAGING_PREFIX = "uplink/staging/"


def uplink_staging_package(run_id: str) -> str:
    return f"{UPLINK_STAGING_PREFIX}{run_id}/package.tar"


def uplink_staging_run_id(key: str) -> str | None:
    """The run id of a staging key (None for any other key)."""
    match = re.fullmatch(re.escape(UPLINK_STAGING_PREFIX) + r"([^/]+)/[^/]+", key)
    return match.group(1) if match else None
