"""Dead run workers on a real (SQLite) instance: a run worker holding a `gpu` slot, then killed.

The worker is a real process running a real Dagster run whose only op sits in the `gpu` pool, so the slot,
the RUN_START pid and the run status are exactly what Dagster writes.
"""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from support.waiting import wait_until

from astromined.automation.dead_runs import fail_run, reap_dead_runs, slot_holders
from astromined.automation.slot_wait import SlotWaitWatcher

WORKER = textwrap.dedent(
    """
    import time
    import dagster as dg

    @dg.op(pool="gpu")
    def hold_gpu():
        print("holding", flush=True)
        time.sleep(600)

    @dg.job
    def trainer():
        hold_gpu()

    with dg.DagsterInstance.get() as instance:
        trainer.execute_in_process(instance=instance)
    """
)


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry: {enabled: false}\nconcurrency: {pools: {default_limit: 1, granularity: op}}\n"
    )
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = previous


@pytest.fixture
def worker(home: Path):
    """A run worker process that holds the one `gpu` slot until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("holding"):
            break
    else:
        pytest.fail(f"worker exited ({process.wait()}) before holding the slot")
    yield process
    process.kill()
    process.wait(timeout=30)


def _only_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    (run,) = instance.get_runs()
    return run


def test_a_live_worker_is_left_alone(worker):
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance)
        assert reap_dead_runs(instance) == []
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        (holder,) = slot_holders(instance, "gpu")
        assert holder.run_id == run.run_id
        assert holder.pid == worker.pid
        assert holder.liveness.value == "alive"


@pytest.mark.fault("kill", "SIGKILL of a run worker holding the gpu slot; reaped and slot freed")
def test_a_killed_worker_is_marked_failed_and_its_slot_freed(worker):
    worker.kill()
    worker.wait(timeout=30)
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        (reaped,) = reap_dead_runs(instance)
        assert reaped.worker.run_id == run.run_id
        assert reaped.marked_failed and reaped.slots_freed == 1
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert slot_holders(instance, "gpu") == []
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"pid {worker.pid}" in failure[-1].message
        assert reap_dead_runs(instance) == [], "a second pass finds nothing left to do"


def test_fail_run_frees_a_live_workers_slot_on_request(worker):
    """The operator's `astromined runs fail RUN_ID` for a worker that hangs rather than died."""
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance)
        reaped = fail_run(instance, run, "operator: hung on a dead NFS mount")
        assert reaped.marked_failed and reaped.slots_freed == 1
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert slot_holders(instance, "gpu") == []


def test_the_waiting_run_names_the_holder_then_frees_it_when_it_dies(worker, caplog):
    """What `astromined run` says while its step waits, and what it does once the holder is killed."""
    with dg.DagsterInstance.get() as instance:
        holder = _only_run(instance)
        waiting_run_id = "waiting-run"
        instance.add_run(
            dg.DagsterRun(
                job_name="downlink_to_uplink", run_id=waiting_run_id, status=dg.DagsterRunStatus.STARTED
            )
        )
        claim = instance.event_log_storage.claim_concurrency_slot("gpu", waiting_run_id, "candidate_model")
        assert not claim.is_claimed, "the slot is held, so the claim must wait"
        watcher = SlotWaitWatcher(instance, waiting_run_id, logger=logging.getLogger("test.slot_wait"))

        with caplog.at_level(logging.INFO, logger="test.slot_wait"):
            (message,) = watcher.check_once()
        assert "step candidate_model waits for a slot in pool 'gpu' (limit 1)" in message
        assert holder.run_id in message and f"worker pid {worker.pid} alive" in message
        assert message in caplog.text
        assert watcher.check_once() == [], "an unchanged wait is not repeated at once"
        engine = instance.all_logs(waiting_run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        assert any(holder.run_id in e.message for e in engine), "the wait is in the run's own log"

        worker.kill()
        worker.wait(timeout=30)
        (message,) = watcher.check_once()
        assert "Freed the slots of dead runs" in message and holder.run_id in message
        assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE
        wait_until(
            lambda: (
                instance.event_log_storage.claim_concurrency_slot(
                    "gpu", waiting_run_id, "candidate_model"
                ).is_claimed
            ),
            30,
            "the freed slot to become claimable",
            interval_s=0.2,
        )


def test_the_local_sensor_reaps_a_killed_worker(worker):
    from astromined.automation.dead_run_sensor import build_dead_run_sensor

    sensor = build_dead_run_sensor(dg.DefaultSensorStatus.RUNNING)
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance)
        quiet = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(quiet, dg.SkipReason) and "no run with a dead worker" in quiet.skip_message
        worker.kill()
        worker.wait(timeout=30)
        result = sensor(dg.build_sensor_context(instance=instance))
        assert run.run_id in result.skip_message and "1 pool slot(s) freed" in result.skip_message
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_the_operator_commands(worker, home):
    """`astromined runs fail RUN_ID` on a live (hung) worker, then `runs reap` finds nothing left."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "ASTROMINED_STATE_DIR": str(home.parent / "state")}
    env.pop("ASTROMINED_ENV", None)
    cli = Path(sys.executable).parent / "astromined"
    with dg.DagsterInstance.get() as instance:
        run = _only_run(instance)
    failed = subprocess.run(
        [str(cli), "runs", "fail", run.run_id, "--reason", "hung"], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 0, failed.stderr
    assert "marked FAILURE, 1 pool slot(s) freed" in failed.stdout
    reap = subprocess.run([str(cli), "runs", "reap"], env=env, capture_output=True, text=True)
    assert reap.returncode == 0, reap.stderr
    assert "no run with a dead worker" in reap.stdout
    unknown = subprocess.run([str(cli), "runs", "fail", "nope"], env=env, capture_output=True, text=True)
    assert unknown.returncode == 1 and "no run nope" in unknown.stderr
