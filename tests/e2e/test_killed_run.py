"""A run killed in the middle of training must not block the runs after it.

The first `astromined run` is frozen (SIGSTOP) while `candidate_model` trains, so the test can check that it
really holds the `gpu` pool slot; then it is SIGKILLed, as the OOM killer or a closed laptop would. The next
`astromined run` must notice the dead run worker, mark that run failed, free its slot and finish.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Default scale, a day where the candidate beats the baseline (tests/e2e/test_cli_and_ui.py), so the run
# after the kill can go all the way to a champion and an uplink package.
DAY = "2026-06-01"
TRAINING_STARTED = "training on "


def _env(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "ASTROMINED_STATE_DIR": str(root / "state"),
        "ASTROMINED_SCALE": "default",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DAGSTER_HOME", None)
    env.pop("ASTROMINED_ENV", None)
    return env


def _start_run(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "astromined"), "run", "--partition", DAY],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_for_line(process: subprocess.Popen, log: Path, needle: str, timeout_s: float = 300) -> None:
    def seen() -> bool:
        if needle in log.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            pytest.fail(f"run exited ({process.returncode}) before {needle!r}:\n{log.read_text()[-3000:]}")
        return False

    wait_until(seen, timeout_s, lambda: f"{needle!r} in the run's output:\n{log.read_text()[-3000:]}")


def _gpu_slot_holders(state: Path) -> set[str]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(state / "dagster_home")
    try:
        with dg.DagsterInstance.get() as instance:
            info = instance.event_log_storage.get_concurrency_info("gpu")
            return {slot.run_id for slot in info.claimed_slots}
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def _runs(state: Path) -> list:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(state / "dagster_home")
    try:
        with dg.DagsterInstance.get() as instance:
            return list(instance.get_runs())
    finally:
        os.environ.pop("DAGSTER_HOME", None)


@pytest.mark.fault("kill", "SIGKILL of `astromined run` while candidate_model trains; the next run completes")
def test_a_run_killed_during_training_does_not_block_the_next(tmp_path):
    env = _env(tmp_path)
    first_log = tmp_path / "first.log"
    first = _start_run(env, first_log)
    try:
        _wait_for_line(first, first_log, TRAINING_STARTED)
        first.send_signal(signal.SIGSTOP)
        holders = _gpu_slot_holders(tmp_path / "state")
        assert len(holders) == 1, f"the frozen run should hold the gpu slot, holders: {holders}"
        (killed_run_id,) = holders
    finally:
        first.kill()
        first.wait(timeout=30)

    second = subprocess.run(
        [str(BIN / "astromined"), "run", "--partition", DAY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    assert f"partition {DAY}: SUCCESS" in second.stdout
    assert killed_run_id[:8] in output, "the second run should say which dead run it cleaned up"

    by_id = {run.run_id: run for run in _runs(tmp_path / "state")}
    assert by_id[killed_run_id].status.value == "FAILURE"
    assert _gpu_slot_holders(tmp_path / "state") == set()
