"""`astromined run` as a process keeps the cyclic GC off its long-lived heap (astromined/cli.py): paused
while starting up, the start-up heap frozen before the steps, the heap frozen again at exit. An in-process
caller of ``main(argv)`` (tests, other tools) keeps its collector untouched."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from astromined import cli

# A fresh interpreter that runs main() as the console script does (no argv), with the run command's
# handler replaced by a probe of the collector's state.
_AS_PROCESS = r"""
import atexit, gc, json, sys

def after_every_exit_handler():
    # Registered before main(): atexit runs it after the ones main() registers.
    print(json.dumps({**seen, "frozen_at_exit": gc.get_freeze_count()}), flush=True)

atexit.register(after_every_exit_handler)

from astromined import cli

seen = {}

def probe_run(settings, args):
    seen["enabled_during_start_up"] = gc.isenabled()
    seen["frozen_during_start_up"] = gc.get_freeze_count()
    cli._resume_collector_after_start_up()
    seen["enabled_during_steps"] = gc.isenabled()
    seen["frozen_during_steps"] = gc.get_freeze_count()
    return 0

cli._cmd_run = probe_run
sys.argv = ["astromined", "run", "--partition", "2026-06-14"]
code = cli.main()
kept = [[i] for i in range(20_000)]  # alive at exit, created after the start-up freeze
seen["rc"] = code
sys.exit(code)
"""


def _clean_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTROMINED_", "DAGSTER_"))}
    env["ASTROMINED_STATE_DIR"] = str(tmp_path / "state")
    return env


def test_the_run_process_pauses_then_freezes_its_start_up_heap_and_freezes_again_at_exit(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _AS_PROCESS], env=_clean_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["enabled_during_start_up"] is False
    assert seen["frozen_during_start_up"] == 0
    assert seen["enabled_during_steps"] is True
    assert seen["frozen_during_steps"] > 10_000  # the modules and objects start-up built
    # The exit freeze took what was created after the start-up one (the 20,000 lists kept alive; a few
    # start-up objects frozen earlier have been freed since).
    assert seen["frozen_at_exit"] > seen["frozen_during_steps"] + 15_000


def test_an_in_process_caller_keeps_its_collector(monkeypatch, tmp_path):
    for variable in [v for v in os.environ if v.startswith("ASTROMINED_") or v == "DAGSTER_HOME"]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("ASTROMINED_STATE_DIR", str(tmp_path / "state"))
    seen = {}

    def probe_run(settings, args):
        seen["enabled"] = gc.isenabled()
        cli._resume_collector_after_start_up()  # a no-op: nothing was paused
        return 0

    monkeypatch.setattr(cli, "_cmd_run", probe_run)
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    assert cli.main(["run", "--partition", "2026-06-14"]) == 0
    assert seen == {"enabled": True}
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
