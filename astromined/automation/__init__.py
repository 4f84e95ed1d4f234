"""Jobs, schedules and sensors, as one Definitions piece."""

import dagster as dg

from astromined.automation.jobs import downlink_to_uplink, ingest_day_job, readiness_job
from astromined.automation.schedules import daily_retrain_schedule, readiness_schedule
from astromined.automation.sensors import downlink_arrival_sensor

defs = dg.Definitions(
    jobs=[downlink_to_uplink, ingest_day_job, readiness_job],
    schedules=[readiness_schedule, daily_retrain_schedule],
    sensors=[downlink_arrival_sensor],
)
