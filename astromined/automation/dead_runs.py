"""Runs whose worker died: find them, mark them failed, give back their pool slots.

Dagster's run monitoring does this in production, where the K8sRunLauncher can ask Kubernetes whether a run
worker's Job still runs. The local instance has no such launcher: `astromined run` executes in its own process
and `dagster dev` launches subprocesses, and neither can be health-checked by the daemon. A run killed there
(SIGKILL, OOM, a closed laptop) would stay STARTED for ever and keep its `gpu` pool slot, so every later run
would wait for that slot silently. Locally every run worker is a process on this machine (the instance is a
SQLite file), so its RUN_START event's pid tells whether it still runs (see process_liveness.py).

Used by `astromined run` (before it starts and while a step waits for a slot), by the local
`dead_run_reaper` sensor under `dagster dev`, and by `astromined runs reap`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Iterable

import dagster as dg

from astromined.process_liveness import Liveness, liveness

# Set by `astromined run` on its runs; a run tagged with another host is never judged from here.
HOST_TAG = "astromined/host"


@dataclasses.dataclass(frozen=True)
class RunWorker:
    run_id: str
    job_name: str
    status: str
    pid: int | None
    started_at: float | None
    liveness: Liveness | None  # None: cannot be judged from this machine

    def describe(self) -> str:
        if self.pid is None:
            where = "worker pid unknown"
        elif self.liveness is None:
            where = f"worker pid {self.pid} on another host"
        else:
            where = f"worker pid {self.pid} {self.liveness.value}"
        return f"run {self.run_id} ({self.job_name}, {self.status}, {where})"


@dataclasses.dataclass(frozen=True)
class ReapedRun:
    worker: RunWorker
    slots_freed: int
    marked_failed: bool

    def describe(self) -> str:
        action = "marked FAILURE" if self.marked_failed else "already finished"
        return f"{self.worker.describe()}: {action}, {self.slots_freed} pool slot(s) freed"


def _run_start(instance: dg.DagsterInstance, run_id: str) -> tuple[int | None, float | None]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1, ascending=False
    ).records
    if not records:
        return None, None
    entry = records[0].event_log_entry
    return entry.dagster_event.pid if entry.dagster_event else None, entry.timestamp


def inspect_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunWorker:
    pid, started_at = _run_start(instance, run.run_id)
    judged: Liveness | None = None
    host = run.tags.get(HOST_TAG)
    if pid is not None and started_at is not None and (host is None or host == socket.gethostname()):
        judged = liveness(pid, started_at)
    return RunWorker(run.run_id, run.job_name, run.status.value, pid, started_at, judged)


def _slots_held(instance: dg.DagsterInstance, run_id: str) -> int:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0
    return sum(
        1
        for pool in storage.get_concurrency_keys()
        for slot in storage.get_concurrency_info(pool).claimed_slots
        if slot.run_id == run_id
    )


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    held = _slots_held(instance, run_id)
    if instance.event_log_storage.supports_global_concurrency_limits:
        # Also removes the run's pending claims, so no dead run stays in a pool's queue.
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return held


def fail_run(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> ReapedRun:
    """Mark ``run`` failed (if it is not finished) with ``reason`` and free every slot it holds."""
    worker = inspect_worker(instance, run)
    marked = False
    if not run.is_finished:
        instance.report_run_failed(run, reason)
        marked = True
    return ReapedRun(worker, _free_slots(instance, run.run_id), marked)


def reap_dead_runs(instance: dg.DagsterInstance, *, exclude: Iterable[str] = ()) -> list[ReapedRun]:
    """Fail every STARTED run of this machine whose worker is gone; free slots held by finished runs.

    Runs whose worker cannot be judged from here (no RUN_START pid yet, another host) are left alone.
    """
    excluded = set(exclude)
    reaped: list[ReapedRun] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if run.run_id in excluded:
            continue
        worker = inspect_worker(instance, run)
        if worker.liveness in (Liveness.DEAD, Liveness.PID_REUSED):
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            reaped.append(
                fail_run(
                    instance,
                    run,
                    f"run worker (pid {worker.pid}) is gone ({worker.liveness.value}), found at {now}: "
                    "the run was killed; marked failed and its pool slots freed so later runs can proceed",
                )
            )
    reaped.extend(_free_slots_of_finished_runs(instance, excluded))
    return reaped


def _free_slots_of_finished_runs(instance: dg.DagsterInstance, excluded: set[str]) -> list[ReapedRun]:
    """Slots still held by runs that ended (or were deleted): what `free_slots_after_run_end_seconds`
    does in the daemon, done at once because no daemon may be running."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids() - excluded):
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue
        slots = _free_slots(instance, run_id)
        if slots:
            worker = (
                inspect_worker(instance, run)
                if run is not None
                else RunWorker(run_id, "?", "DELETED", None, None, Liveness.DEAD)
            )
            freed.append(ReapedRun(worker, slots, marked_failed=False))
    return freed


def slot_holders(instance: dg.DagsterInstance, pool: str, *, exclude: str | None = None) -> list[RunWorker]:
    """The runs holding slots of ``pool`` (other than ``exclude``), with their workers' liveness."""
    storage = instance.event_log_storage
    run_ids = sorted({s.run_id for s in storage.get_concurrency_info(pool).claimed_slots} - {exclude})
    workers = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            workers.append(RunWorker(run_id, "?", "DELETED", None, None, Liveness.DEAD))
        else:
            workers.append(inspect_worker(instance, run))
    return workers
