"""Say who holds the pool slot a step waits for; free it when its holder is dead.

Dagster queues a step whose pool is full without a word at INFO. `astromined run` runs this watcher beside
its run: when one of the run's steps waits for a slot it logs, at INFO, the pool, its limit and each holder
(run, job, status, worker pid and whether it is alive), and records the same as an engine event in the run's
log for the web UI. A holder whose worker is gone is marked failed and its slots freed at once
(astromined/automation/dead_runs.py), so a killed run never blocks the ones after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import dagster as dg

from astromined.automation.dead_runs import fail_run, slot_holders
from astromined.process_liveness import Liveness

# The watcher repeats an unchanged "still waiting" message this often.
REPEAT_EVERY_S = 60.0


class SlotWaitWatcher:
    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        *,
        logger: logging.Logger,
        poll_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._instance = instance
        self._run_id = run_id
        self._logger = logger
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        self._said: dict[tuple[str, str], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"slot-wait-{run_id[:8]}", daemon=True)

    def __enter__(self) -> SlotWaitWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            try:
                self.check_once()
            except Exception:  # a watcher problem must never fail the run it watches
                self._logger.exception("checking pool slots failed (the run goes on)")

    def check_once(self) -> list[str]:
        """One look at the pools: returns (and logs) the messages said this time."""
        storage = self._instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            return []
        messages = []
        for pool in sorted(storage.get_concurrency_keys()):
            info = storage.get_concurrency_info(pool)
            mine = [p for p in info.pending_steps if p.run_id == self._run_id]
            waiting = sorted(p.step_key for p in mine if p.assigned_timestamp is None)
            for step_key in waiting:
                message = self._describe_wait(pool, step_key, info.slot_count)
                if message is not None:
                    messages.append(message)
        return messages

    def _describe_wait(self, pool: str, step_key: str, limit: int) -> str | None:
        holders = slot_holders(self._instance, pool, exclude=self._run_id)
        dead = [h for h in holders if h.liveness in (Liveness.DEAD, Liveness.PID_REUSED)]
        freed = []
        for holder in dead:
            run = self._instance.get_run_by_id(holder.run_id)
            reason = (
                f"run worker (pid {holder.pid}) is gone ({holder.liveness.value if holder.liveness else '?'})"
                f"; found by run {self._run_id} waiting for pool '{pool}'"
            )
            if run is None:
                self._instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
                freed.append(f"deleted run {holder.run_id}")
            else:
                freed.append(fail_run(self._instance, run, reason).describe())
        held_by = "; ".join(h.describe() for h in holders) or "no run (slots are being reassigned)"
        message = f"step {step_key} waits for a slot in pool '{pool}' (limit {limit}), held by {held_by}"
        if freed:
            message += ". Freed the slots of dead runs: " + "; ".join(freed)
        else:
            message += (
                ". If a holder is stuck: `astromined runs fail RUN_ID` marks it failed and frees its slots "
                "(docs/operations.md)"
            )
        key = (pool, step_key)
        last = self._said.get(key)
        now = self._clock()
        if last is not None and last[0] == message and now - last[1] < REPEAT_EVERY_S:
            return None
        self._said[key] = (message, now)
        self._logger.info(message)
        run = self._instance.get_run_by_id(self._run_id)
        if run is not None:
            self._instance.report_engine_event(message, run, step_key=step_key)
        return message
