"""asteroid_features[day] and training_set: per-asteroid features and the labelled rolling window."""

import datetime as dt

import dagster as dg
import numpy as np

from assets.partitions import daily_partitions, partition_day
from astromined import lake_layout
from astromined.features.engineering import (
    INPUT_COLUMNS,
    MODEL_FEATURES,
    aggregate_by_asteroid,
    model_inputs,
)
from astromined.features.reference_stats import ReferenceStatistics
from astromined.features.training_set import (
    LOOK_ROW_BUDGET,
    build_training_set,
    combine_days,
    save_training_set,
    window_look_rows,
)
from astromined.features.unlabelled_rows import (
    SELF_TRAINING_MAX_DAYS,
    UNLABELLED_ROW_BUDGET,
    window_unlabelled_rows,
)
from astromined.features.validation import ValidationReport, validate_features, validate_training_set
from astromined.lake_layout import CALIBRATION_VERSION, UNKNOWN_CALIBRATION
from astromined.storage import (
    read_arrow_columns,
    read_parquet,
    read_parquet_metadata,
    write_parquet,
)
from resources import LakeResource, LandingZoneResource

FINITE_INPUTS = "model_inputs_finite"
FEATURE_SCHEMA = "feature_schema_valid"
TRAINING_SCHEMA = "training_set_schema_valid"


def _schema_check(name: str, report: ValidationReport) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=report.passed,
        description=report.message,
        metadata={"failures": dg.MetadataValue.json(report.summary())},
    )


@dg.asset(
    group_name="features",
    partitions_def=daily_partitions,
    deps=["raw_telemetry"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(FINITE_INPUTS, asset="asteroid_features", blocking=True),
        dg.AssetCheckSpec(
            FEATURE_SCHEMA,
            asset="asteroid_features",
            blocking=True,
            description="pandera schema of the feature table: dtypes, ranges, uniqueness",
        ),
    ],
    description="One row per asteroid observed that day, after each satellite's calibration: normalized "
    "spectrum, slope, band depths, albedo, radar albedo, rotation.",
)
def asteroid_features(
    context: dg.AssetExecutionContext, lake: LakeResource, landing_zone: LandingZoneResource
):
    store = lake.store()
    calibration = landing_zone.fleet_calibration(partition_day(context))
    # Arrow straight into Polars (no pandas copy of the day's observations), and only the 20 columns the
    # features read, not all 28: 4.2 s of CPU instead of 7.0 s on a 10.5 M-row day (loaded machine;
    # BENCHMARKS.md, data-to-model latency).
    try:
        observations = read_arrow_columns(
            store, lake_layout.raw_observations(context.partition_key), INPUT_COLUMNS
        )
    except ValueError as exc:
        raise dg.Failure(description=f"partition {context.partition_key}: {exc}") from exc
    features = aggregate_by_asteroid(observations, calibration)
    key = lake_layout.asteroid_features(context.partition_key)
    # The calibration travels with the partition: training_set, the registry and the uplink package name it.
    write_parquet(store, key, features, metadata={CALIBRATION_VERSION: calibration.version})
    try:
        model_inputs(features)
        problem = None
    except ValueError as exc:
        problem = str(exc)
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(store.describe(key)),
            "dagster/row_count": len(features),
            "observations": observations.num_rows,
            "calibration_version": calibration.version,
            "calibration_valid_from": calibration.valid_from.isoformat(),
            "median_observations_per_asteroid": float(np.median(features["n_observations"]))
            if len(features)
            else 0.0,
            "asteroids_with_radar": int(features["radar_albedo"].notna().sum()),
        }
    )
    yield dg.AssetCheckResult(
        check_name=FINITE_INPUTS,
        passed=problem is None,
        description=problem or "every row yields finite model inputs",
    )
    yield _schema_check(FEATURE_SCHEMA, validate_features(features, context.partition_key))


class TrainingSetConfig(dg.Config):
    window_days: int = 7
    # Most look rows (one per look at a train asteroid) stored for candidate_model; a window over it
    # keeps only the combined rows; 0 never stores them (features/training_set.py).
    look_row_budget: int = LOOK_ROW_BUDGET
    # What one look is: "observation" (from the raw observations), "day" (that day's feature row), or
    # "auto": per observation on windows of 1-3 days, per day on longer ones (features/training_set.py).
    look_unit: str = "auto"
    # Windows of at most this many days store their unlabelled rows (each day's rows of asteroids without
    # a label) for candidate_model's self-training, up to `unlabelled_row_budget` rows; 0 never stores
    # them (features/unlabelled_rows.py: it gained on a lone first day only).
    self_training_max_days: int = SELF_TRAINING_MAX_DAYS
    unlabelled_row_budget: int = UNLABELLED_ROW_BUDGET


@dg.asset(
    group_name="training",
    deps=["asteroid_features"],
    kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec(TRAINING_SCHEMA, asset="training_set", blocking=True)],
    description="Labelled asteroids from the latest `window_days` feature partitions, split by asteroid id "
    "into train / validation / holdout; stored with the reference statistics of the window's daily rows "
    "(what each model trained on it judges drift against), and with the look rows candidate_model trains "
    "on, within `look_row_budget`: one per observation of a train asteroid on windows of 1-3 days "
    "(re-read from the raw partitions), one per asteroid and day on longer ones; on a one-day window also "
    "with its unlabelled rows, within `unlabelled_row_budget`, which candidate_model self-trains on.",
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    lake: LakeResource,
    landing_zone: LandingZoneResource,
):
    store = lake.store()
    days = lake_layout.feature_days(store.list_keys(lake_layout.FEATURES_PREFIX))[-config.window_days :]
    if not days:
        raise dg.Failure(
            f"no asteroid_features partitions in the lake at {store.describe(lake_layout.FEATURES_PREFIX)}"
        )
    context.log.info(f"training window: {days[0]} .. {days[-1]} ({len(days)} partitions)")
    daily = [read_parquet(store, lake_layout.asteroid_features(day)) for day in days]
    combined = combine_days(daily)
    # What drift is judged against: the daily rows themselves, not the (multi-day averaged) training set.
    reference = ReferenceStatistics.from_frames(daily)
    table = build_training_set(combined, landing_zone.survey_catalog())
    calibrations = {
        day: read_parquet_metadata(store, lake_layout.asteroid_features(day)).get(
            CALIBRATION_VERSION, UNKNOWN_CALIBRATION
        )
        for day in days
    }
    try:
        look_rows, look_note = window_look_rows(
            store,
            daily,
            days,
            table,
            calibrations,
            lambda day: landing_zone.fleet_calibration(dt.date.fromisoformat(day)),
            config.look_unit,
            config.look_row_budget,
        )
        unlabelled_rows, unlabelled_note = window_unlabelled_rows(
            daily, days, table, config.self_training_max_days, config.unlabelled_row_budget
        )
    except ValueError as exc:
        raise dg.Failure(description=f"training_set: {exc}") from exc
    del daily
    context.log.info(f"look rows: {look_note}")
    context.log.info(f"unlabelled rows: {unlabelled_note}")
    save_training_set(
        store,
        lake_layout.TRAINING_SET,
        table,
        {"partitions": days, "calibration_versions": calibrations},
        reference,
        look_rows,
        unlabelled_rows=unlabelled_rows,
    )
    splits = table["split"].value_counts().to_dict()
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(store.describe(lake_layout.TRAINING_SET)),
            "partitions": dg.MetadataValue.json(days),
            "calibration_versions": dg.MetadataValue.json(sorted(set(calibrations.values()))),
            "dagster/row_count": len(table),
            "asteroids_observed": len(combined),
            "labelled_fraction": len(table) / max(len(combined), 1),
            "class_counts": dg.MetadataValue.json(table["complex"].value_counts().to_dict()),
            **{f"rows_{name}": int(splits.get(name, 0)) for name in ("train", "validation", "holdout")},
            "look_rows": 0 if look_rows is None else len(look_rows.rows),
            "look_rows_note": look_note,
            "unlabelled_rows": 0 if unlabelled_rows is None else len(unlabelled_rows),
            "unlabelled_rows_note": unlabelled_note,
            "features": dg.MetadataValue.json(MODEL_FEATURES),
        }
    )
    yield _schema_check(TRAINING_SCHEMA, validate_training_set(table))


defs = dg.Definitions(assets=[asteroid_features, training_set])
