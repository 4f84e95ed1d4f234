"""Whether a run's worker pid is still its worker: parsing /proc and the pid-reuse rule."""

import os
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from astromined.process_liveness import Liveness, liveness, parse_proc_stat, process_info


def _stat_line(pid: int, name: str, state: str, start_ticks: int) -> str:
    # Fields after the name: state, ppid, pgrp, ..., field 22 (starttime) is the 20th after the state.
    rest = [state, *(str(i) for i in range(1, 19)), str(start_ticks), "0", "0"]
    return f"{pid} ({name}) {' '.join(rest)}\n"


@given(
    name=st.text(alphabet=st.characters(blacklist_characters="\n\x00"), max_size=15),
    state=st.sampled_from("RSDZTX"),
    start_ticks=st.integers(min_value=0, max_value=2**40),
)
def test_stat_lines_parse_whatever_the_command_name(name, state, start_ticks):
    info = parse_proc_stat(_stat_line(123, name, state, start_ticks), boot_time=1_000.0, clock_ticks=100)
    assert info.state == state
    assert info.started_at == 1_000.0 + start_ticks / 100


def _fake_proc(tmp_path: Path, pid: int, state: str, started_at: float, boot: float = 1_000.0) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / "stat").write_text(f"cpu 1 2 3\nbtime {int(boot)}\n")
    ticks = round((started_at - boot) * os.sysconf("SC_CLK_TCK"))
    (proc / str(pid) / "stat").write_text(_stat_line(pid, "python (worker)", state, ticks))
    return proc


def test_this_process_is_alive():
    assert liveness(os.getpid(), run_started_at=time.time()) is Liveness.ALIVE
    assert process_info(os.getpid()).state in "RS"


def test_an_exited_process_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert liveness(child.pid, run_started_at=time.time()) is Liveness.DEAD


def test_a_zombie_is_dead(tmp_path):
    proc = _fake_proc(tmp_path, 4242, "Z", started_at=5_000.0)
    assert liveness(4242, run_started_at=6_000.0, proc=proc) is Liveness.DEAD


def test_a_pid_taken_by_a_later_process_is_not_the_worker(tmp_path):
    proc = _fake_proc(tmp_path, 4242, "S", started_at=7_000.0)
    assert liveness(4242, run_started_at=6_000.0, proc=proc) is Liveness.PID_REUSED
    assert liveness(4242, run_started_at=7_000.0, proc=proc) is Liveness.ALIVE


def test_a_missing_pid_is_dead(tmp_path):
    proc = _fake_proc(tmp_path, 4242, "S", started_at=5_000.0)
    assert liveness(4343, run_started_at=6_000.0, proc=proc) is Liveness.DEAD
    assert liveness(0, run_started_at=6_000.0, proc=proc) is Liveness.DEAD
