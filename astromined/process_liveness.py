"""Is the process that started a run still that process? (pure: no Dagster)

A run worker is identified by the pid its RUN_START event carries and the time of that event. A pid alone is
not enough: Linux reuses pids, so a live process whose start time is after the run started is another
process. Zombies count as dead (the worker exited; only its parent has not reaped it).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path

# A process started this long after the run's RUN_START event cannot be its worker. RUN_START is written
# by the worker itself, so the real worker always started before it; the margin covers clock-tick rounding.
START_TIME_TOLERANCE_S = 1.0


class Liveness(enum.StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    PID_REUSED = "pid reused by a later process"


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    state: str  # one letter, as in /proc/<pid>/stat (R, S, D, Z, T, ...)
    started_at: float  # seconds since the epoch


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError(f"{proc / 'stat'} has no btime line")


def parse_proc_stat(stat_line: str, boot_time: float, clock_ticks: int) -> ProcessInfo:
    """State and start time from a /proc/<pid>/stat line (the command name may contain spaces/parens)."""
    after_name = stat_line.rsplit(")", 1)[1].split()
    state, start_ticks = after_name[0], int(after_name[19])
    return ProcessInfo(state=state, started_at=boot_time + start_ticks / clock_ticks)


def process_info(pid: int, proc: Path = Path("/proc")) -> ProcessInfo | None:
    """None when no such process exists; raises OSError when /proc cannot tell."""
    try:
        line = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_proc_stat(line, _boot_time(proc), os.sysconf("SC_CLK_TCK"))


def liveness(pid: int, run_started_at: float, proc: Path = Path("/proc")) -> Liveness:
    """Whether ``pid`` is still the worker that started a run at ``run_started_at`` (epoch seconds)."""
    if pid <= 0:
        return Liveness.DEAD
    if proc.is_dir():
        info = process_info(pid, proc)
        if info is None or info.state in ("Z", "X"):
            return Liveness.DEAD
        if info.started_at > run_started_at + START_TIME_TOLERANCE_S:
            return Liveness.PID_REUSED
        return Liveness.ALIVE
    # No /proc (not Linux): signal 0 tells whether the pid exists, not whether it was reused.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return Liveness.DEAD
    except PermissionError:
        return Liveness.ALIVE
    return Liveness.ALIVE
