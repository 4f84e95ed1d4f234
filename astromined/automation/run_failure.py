"""The run-failure sensor: every failed run pages through Alertmanager's API (docs/contracts.md, Alerts).

Posting directly to Alertmanager means a failure pages even when Prometheus is down. The alert carries
the job, the run id, the failed step key(s) from the run's STEP_FAILURE events ("none" when the run failed
outside any step, e.g. a run worker that died), a link to the run in the Dagster UI and the runbook.
Transient delivery errors are retried with backoff inside the tick (resources/alerting.py). If delivery
still fails, the error (with Alertmanager's answer) is raised: Dagster records it on the sensor tick, which
ends FAILED — but, as for every run-status sensor in Dagster 1.13, its cursor still moves past that run,
so that alert is not re-sent by a later tick. The FAILED tick is what the monitoring stack watches
(``astromined_instigator_last_tick_status``); docs/automation.md says what to do.
"""

import datetime as dt

import dagster as dg

from astromined.monitoring.alert_values import RUN_FAILED, RUN_FAILED_ALERT, runbook_url
from resources.alerting import AlertmanagerResource, alert_timestamp

ALERT_NAME = RUN_FAILED_ALERT
RUNBOOK_URL = runbook_url(ALERT_NAME)
# A run failure is an event, not a state that Prometheus re-evaluates: keep the alert active long enough
# for someone to act, instead of Alertmanager's resolve_timeout (5 min by default).
ALERT_TTL = dt.timedelta(hours=12)
SENSOR_NAME = "run_failure_alert_sensor"
MAX_DESCRIPTION_CHARS = 2000


def failed_steps(context: dg.RunFailureSensorContext) -> list[str]:
    return sorted({event.step_key for event in context.get_step_failure_events() if event.step_key})


def _first_error(context: dg.RunFailureSensorContext) -> str:
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return f"{event.step_key}: {error.message.strip()}"
    return context.failure_event.message or "the run failed outside any step"


def failure_alert(
    job: str, run_id: str, steps: list[str], error: str, run_url: str, now: dt.datetime
) -> dict:
    """One alert in Alertmanager's API v2 ``postableAlert`` shape."""
    step = ",".join(steps) if steps else "none"
    where = f" at step {step}" if steps else ""
    return {
        "labels": {
            "alertname": ALERT_NAME,
            "severity": RUN_FAILED.severity,
            "team": RUN_FAILED.team,
            "job": job,
            "run_id": run_id,
            "step": step,
        },
        "annotations": {
            "summary": f"Dagster run {run_id[:8]} of job {job} failed{where}",
            "description": error[:MAX_DESCRIPTION_CHARS],
            "runbook_url": RUNBOOK_URL,
            "run_url": run_url,
        },
        "startsAt": alert_timestamp(now),
        "endsAt": alert_timestamp(now + ALERT_TTL),
        "generatorURL": run_url,
    }


def build_run_failure_sensor(
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        default_status=default_status,
        minimum_interval_seconds=30,
        description="Posts AstrominedRunFailed (critical, team mlops) to Alertmanager for every failed run "
        "of this code location, with job, run id, failed step(s) and a link to the run.",
    )
    def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alertmanager: AlertmanagerResource):
        run = context.dagster_run
        steps = failed_steps(context)
        alert = failure_alert(
            job=run.job_name,
            run_id=run.run_id,
            steps=steps,
            error=_first_error(context),
            run_url=alertmanager.run_url(run.run_id),
            now=dt.datetime.now(dt.UTC),
        )
        alertmanager.post_alerts([alert])
        context.log.info(
            f"posted {ALERT_NAME} for run {run.run_id} ({run.job_name}, step {alert['labels']['step']}) "
            f"to {alertmanager.alerts_url()}"
        )

    return run_failure_alert_sensor


run_failure_alert_sensor = build_run_failure_sensor()
