"""The downlink-arrival sensor: ingest a day's partition when new files land for it.

The cursor maps each day to the number of downlink files already seen; a day whose count grows (new
or late files) is requested again with a run key naming that count, so one arrival yields one run.
"""

import datetime as dt
import json

import dagster as dg

from assets.partitions import daily_partitions
from astromined.automation.jobs import ingest_day_job
from resources import LandingZoneResource

LOOKBACK_DAYS = 7


@dg.sensor(job=ingest_day_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def downlink_arrival_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource):
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    today = dt.datetime.now(dt.UTC).date()
    valid = set(daily_partitions.get_partition_keys())
    requests = []
    for offset in range(1, LOOKBACK_DAYS + 1):
        day = today - dt.timedelta(days=offset)
        key = day.isoformat()
        if key not in valid:
            continue
        count = len(landing_zone.list_downlinks(day))
        if count > seen.get(key, 0):
            requests.append(
                dg.RunRequest(
                    run_key=f"{key}:{count}",
                    partition_key=key,
                    tags={"astromined/trigger": "downlink_arrival"},
                )
            )
            seen[key] = count
    cutoff = (today - dt.timedelta(days=LOOKBACK_DAYS + 1)).isoformat()
    seen = {k: v for k, v in seen.items() if k >= cutoff}
    if not requests:
        return dg.SkipReason(f"no new downlink files in the last {LOOKBACK_DAYS} days")
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return requests
