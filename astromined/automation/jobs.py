"""Jobs: the main downlink-to-uplink job and the readiness probe."""

import dagster as dg

MAIN_JOB_NAME = "downlink_to_uplink"

downlink_to_uplink = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Every asset for one UTC day: ingest the day's downlinks, rebuild features, retrain, "
    "evaluate, promote if better, and package the champion for uplink.",
)

ingest_day_job = dg.define_asset_job(
    "ingest_downlinks",
    selection=dg.AssetSelection.assets("raw_telemetry", "asteroid_features"),
    description="Telemetry and features for one day, without retraining (used for backfills and arrivals).",
)

readiness_job = dg.define_asset_job(
    "readiness_check",
    selection=dg.AssetSelection.assets("infrastructure_readiness"),
    description="Probe the infrastructure the pipeline depends on.",
)
