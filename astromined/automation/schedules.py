"""Schedules: readiness every five minutes, and a daily full retrain after the night's downlinks."""

import dagster as dg

from astromined.automation.jobs import downlink_to_uplink, readiness_job

READINESS_SCHEDULE = "readiness_every_5_minutes"
DAILY_RETRAIN_SCHEDULE = "daily_retrain"


def build_schedules(daily_retrain_status: dg.DefaultScheduleStatus) -> list[dg.ScheduleDefinition]:
    readiness = dg.ScheduleDefinition(
        name=READINESS_SCHEDULE,
        job=readiness_job,
        cron_schedule="*/5 * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Probes the lake, its disk and the compute device every 5 minutes (cheap, no GPU).",
    )
    # Downlinks for day D land by ~00:30 UTC on D+1 (light delay ≤ 25 min); retrain at 01:00.
    daily = dg.build_schedule_from_partitioned_job(
        downlink_to_uplink,
        name=DAILY_RETRAIN_SCHEDULE,
        hour_of_day=1,
        minute_of_hour=0,
        default_status=daily_retrain_status,
        description="At 01:00 UTC: the whole graph for yesterday's partition (ingest, features, retrain, "
        "evaluate, promote if better, package).",
    )
    return [readiness, daily]
