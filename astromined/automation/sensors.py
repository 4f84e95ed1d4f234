"""The downlink-arrival sensor: ingest a day's partition when new or late files land for it.

Works on any ``LandingZoneResource`` (a local directory or an S3 prefix): it only lists
``downlinks/<day>/``. The cursor maps each day of the lookback window to a fingerprint of its files
(count and a digest of names and sizes). A day whose fingerprint changed — new files, a late pass, a
re-delivered file of another size — is requested again with a run key naming the fingerprint, so one
arrival yields exactly one run even if the cursor update were lost. While a run for that day is still
queued or running the day is deferred (cursor unchanged), so two runs never write one partition at once.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from assets.partitions import daily_partitions
from astromined.automation.jobs import INGEST_JOB_NAME, ingest_day_job
from resources import LandingZoneResource

LOOKBACK_DAYS = 7
SENSOR_NAME = "downlink_arrival_sensor"
TRIGGER_TAG = "astromined/trigger"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def fingerprint(files) -> str:
    """``<count>-<digest>`` of a day's downlink files (names and sizes, order-independent)."""
    digest = hashlib.sha256()
    for name, size in sorted((f.name, f.size) for f in files):
        digest.update(f"{name}\0{size}\n".encode())
    return f"{len(files)}-{digest.hexdigest()[:16]}"


def _run_in_flight(instance: dg.DagsterInstance, partition: str) -> str | None:
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=INGEST_JOB_NAME, statuses=IN_FLIGHT, tags={"dagster/partition": partition}
        ),
        limit=1,
    )
    return runs[0].run_id if runs else None


def evaluate_arrivals(
    context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource, today: dt.date
) -> dg.SkipReason | dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid = set(daily_partitions.get_partition_keys())
    requests, deferred = [], []
    for offset in range(1, LOOKBACK_DAYS + 1):
        day = today - dt.timedelta(days=offset)
        key = day.isoformat()
        if key not in valid:
            continue
        files = landing_zone.list_downlinks(day)
        if not files:
            continue
        current = fingerprint(files)
        if seen.get(key) == current:
            continue
        running = _run_in_flight(context.instance, key)
        if running is not None:
            deferred.append(f"{key} (run {running[:8]} still in flight)")
            continue
        previous = seen.get(key)
        context.log.info(
            f"{key}: {len(files)} downlink file(s), "
            + ("first arrival" if previous is None else f"changed since {previous}")
        )
        requests.append(
            dg.RunRequest(
                run_key=f"{key}:{current}",
                partition_key=key,
                tags={TRIGGER_TAG: "downlink_arrival", "astromined/downlink_files": str(len(files))},
            )
        )
        seen[key] = current
    cutoff = (today - dt.timedelta(days=LOOKBACK_DAYS + 1)).isoformat()
    cursor = json.dumps({k: v for k, v in seen.items() if k >= cutoff}, sort_keys=True)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    reason = f"no new downlink files in the last {LOOKBACK_DAYS} days"
    if deferred:
        reason = "new files deferred until the day's ingest run finishes: " + ", ".join(deferred)
    return dg.SensorResult(skip_reason=reason, cursor=cursor)


def build_downlink_arrival_sensor(
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=ingest_day_job,
        minimum_interval_seconds=60,
        default_status=default_status,
        description=f"Requests ingest_downlinks for a day (of the last {LOOKBACK_DAYS}) when its downlink "
        "files change: new, late or re-delivered files. Run key = day + file fingerprint.",
    )
    def downlink_arrival_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource):
        return evaluate_arrivals(context, landing_zone, dt.datetime.now(dt.UTC).date())

    return downlink_arrival_sensor


downlink_arrival_sensor = build_downlink_arrival_sensor()
