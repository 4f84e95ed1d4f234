"""Jobs, schedules and sensors, as one Definitions piece built per environment.

Default statuses (what runs without anyone toggling it in the UI; docs/automation.md):

| | local | prod |
|---|---|---|
| readiness_every_5_minutes | RUNNING | RUNNING |
| daily_retrain | STOPPED | RUNNING |
| downlink_arrival_sensor | STOPPED (the simulator fills the landing zone on demand) | RUNNING |
| drift_sensor | RUNNING | RUNNING |
| run_failure_alert_sensor | STOPPED (no Alertmanager unless you start one) | RUNNING |
| dead_run_reaper | RUNNING | not defined (run monitoring asks Kubernetes) |
"""

import dagster as dg

from astromined.automation.dead_run_sensor import build_dead_run_sensor
from astromined.automation.drift_sensor import DriftPolicyResource, build_drift_sensor
from astromined.automation.jobs import downlink_to_uplink, ingest_day_job, readiness_job, retrain_job
from astromined.automation.run_failure import build_run_failure_sensor
from astromined.automation.schedules import build_schedules
from astromined.automation.sensors import build_downlink_arrival_sensor
from astromined.environment import Environment, Settings

__all__ = ["build_automation"]


def build_automation(settings: Settings) -> dg.Definitions:
    prod = settings.environment is Environment.PROD
    running, stopped = dg.DefaultSensorStatus.RUNNING, dg.DefaultSensorStatus.STOPPED
    # Locally no launcher can health-check a run worker; in prod run monitoring does (dagster-prod.yaml).
    local_only = [] if prod else [build_dead_run_sensor(running)]
    return dg.Definitions(
        jobs=[downlink_to_uplink, ingest_day_job, retrain_job, readiness_job],
        schedules=build_schedules(
            dg.DefaultScheduleStatus.RUNNING if prod else dg.DefaultScheduleStatus.STOPPED
        ),
        sensors=[
            build_downlink_arrival_sensor(running if prod else stopped),
            build_drift_sensor(running),
            build_run_failure_sensor(running if prod else stopped),
            *local_only,
        ],
        resources={"drift_policy": DriftPolicyResource()},
    )
