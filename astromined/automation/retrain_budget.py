"""What drift-triggered retraining has cost so far, read from the Dagster instance.

The drift sensor may request a retraining run only when (a) the previous drift-triggered run was created
more than the cooldown ago and (b) today's (UTC) drift-triggered GPU-hours are below the daily cap.
GPU-hours of a run = duration of its ``candidate_model`` step × the GPUs that step asks for (the
``astromined/gpus`` op tag in the run's own job snapshot, so a later change of the tag does not rewrite
history). A step still running counts up to now.
"""

import dataclasses
import datetime as dt

import dagster as dg

from astromined.automation.jobs import RETRAIN_JOB_NAME

TRIGGER_TAG = "astromined/trigger"
DRIFT_TRIGGER = "drift"
GPU_STEP = "candidate_model"
GPUS_TAG = "astromined/gpus"


@dataclasses.dataclass(frozen=True)
class RunCost:
    run_id: str
    created_at: dt.datetime
    status: str
    step_seconds: float
    gpus: int

    @property
    def gpu_hours(self) -> float:
        return self.step_seconds * self.gpus / 3600.0


def drift_retrain_records(instance: dg.DagsterInstance, created_after: dt.datetime | None = None, limit=None):
    """Run records of drift-triggered retraining runs, newest first."""
    return instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=RETRAIN_JOB_NAME, tags={TRIGGER_TAG: DRIFT_TRIGGER}, created_after=created_after
        ),
        limit=limit,
        order_by="create_timestamp",
        ascending=False,
    )


def step_gpus(instance: dg.DagsterInstance, run: dg.DagsterRun, step: str = GPU_STEP) -> int:
    """GPUs the step asked for, from the op tags in the run's job snapshot (1 if the tag is absent)."""
    snapshot = instance.get_job_snapshot(run.job_snapshot_id) if run.job_snapshot_id else None
    if snapshot is not None:
        for op in snapshot.node_defs_snapshot.op_def_snaps:
            if op.name == step:
                raw = (op.tags or {}).get(GPUS_TAG, "1")
                try:
                    return max(int(raw), 0)
                except ValueError as exc:
                    raise ValueError(
                        f"run {run.run_id}: op tag {GPUS_TAG}={raw!r} on {step} is not an integer"
                    ) from exc
    return 1


def run_cost(instance: dg.DagsterInstance, record, now: dt.datetime) -> RunCost:
    run = record.dagster_run
    stats = instance.get_run_step_stats(run.run_id, step_keys=[GPU_STEP])
    seconds = 0.0
    for stat in stats:
        if stat.start_time is None:
            continue
        end = stat.end_time
        if end is None:
            # Still running (or the run died mid-step): count up to the run's end, else up to now.
            end = record.end_time if run.is_finished and record.end_time else now.timestamp()
        seconds += max(end - stat.start_time, 0.0)
    return RunCost(
        run_id=run.run_id,
        created_at=record.create_timestamp,
        status=run.status.value,
        step_seconds=seconds,
        gpus=step_gpus(instance, run),
    )


def utc_midnight(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def gpu_hours_today(instance: dg.DagsterInstance, now: dt.datetime) -> tuple[float, list[RunCost]]:
    """GPU-hours of drift-triggered retraining runs created since UTC midnight, and the runs."""
    records = drift_retrain_records(instance, created_after=utc_midnight(now))
    costs = [run_cost(instance, record, now) for record in records]
    return sum(c.gpu_hours for c in costs), costs


def latest_drift_retrain(instance: dg.DagsterInstance):
    records = drift_retrain_records(instance, limit=1)
    return records[0] if records else None
