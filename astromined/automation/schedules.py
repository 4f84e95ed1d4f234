"""Schedules: readiness every five minutes, and a daily full retrain after the night's downlinks."""

import dagster as dg

from astromined.automation.jobs import downlink_to_uplink, readiness_job

readiness_schedule = dg.ScheduleDefinition(
    name="readiness_every_5_minutes",
    job=readiness_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# Downlinks for day D land by ~00:30 UTC on D+1 (light delay ≤ 25 min); retrain at 01:00.
daily_retrain_schedule = dg.build_schedule_from_partitioned_job(
    downlink_to_uplink, name="daily_retrain", hour_of_day=1, minute_of_hour=0
)
