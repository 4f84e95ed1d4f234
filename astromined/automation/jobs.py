"""Jobs: everything (downlink to uplink), ingest only (arrivals, backfills), retrain only, readiness."""

import dagster as dg

MAIN_JOB_NAME = "downlink_to_uplink"
INGEST_JOB_NAME = "ingest_downlinks"
RETRAIN_JOB_NAME = "retrain_champion"
READINESS_JOB_NAME = "readiness_check"

# Everything downstream of the daily features: retrain, evaluate, promote, rank, package. Unpartitioned.
RETRAIN_ASSETS = (
    "infrastructure_readiness",
    "training_set",
    "candidate_model",
    "model_evaluation",
    "champion_model",
    "sector_rankings",
    "uplink_package",
)
INGEST_ASSETS = ("raw_telemetry", "asteroid_features")

downlink_to_uplink = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Every asset for one UTC day: ingest the day's downlinks, rebuild features, retrain, "
    "evaluate, promote if better, and package the champion for uplink.",
)

ingest_day_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.assets(*INGEST_ASSETS),
    description="Telemetry and features for one day, without retraining (used for backfills and arrivals).",
)

retrain_job = dg.define_asset_job(
    RETRAIN_JOB_NAME,
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="Retrain on the current feature window, evaluate, promote if better, rank sectors and "
    "package the champion — no ingestion. Requested by the drift sensor; run it by hand after a backfill.",
)

readiness_job = dg.define_asset_job(
    READINESS_JOB_NAME,
    selection=dg.AssetSelection.groups("infrastructure"),
    description="Probe the infrastructure the pipeline depends on: every readiness asset (per cluster, "
    "object stores, instance storage, monitoring) and infrastructure_readiness.",
)
