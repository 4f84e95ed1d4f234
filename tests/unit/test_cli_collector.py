"""`astromined run` as a process freezes its heap at exit, so the interpreter's final garbage collections
skip it (astromined/cli.py ``_skip_collecting_the_heap_at_exit``); the collector is untouched while the
run works, and an in-process caller of ``main(argv)`` (tests, other tools) is never affected."""

from __future__ import annotations

import atexit
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

def after_the_cli_exit_handler():
    # Registered before main(): atexit runs it after the ones main() registers.
    print(json.dumps({**seen, "frozen_at_exit": gc.get_freeze_count()}), flush=True)

atexit.register(after_the_cli_exit_handler)

from astromined import cli

seen = {}

def probe_run(settings, args):
    seen["enabled_during_run"] = gc.isenabled()
    seen["frozen_during_run"] = gc.get_freeze_count()
    return 0

cli._cmd_run = probe_run
sys.argv = ["astromined", "run", "--partition", "2026-06-14"]
code = cli.main()
kept = [[i] for i in range(20_000)]  # alive at exit
sys.exit(code)
"""


def test_the_run_process_freezes_its_heap_at_exit_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTROMINED_", "DAGSTER_"))}
    env["ASTROMINED_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run([sys.executable, "-c", _AS_PROCESS], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["enabled_during_run"] is True
    assert seen["frozen_during_run"] == 0
    assert seen["frozen_at_exit"] > 20_000  # the imported modules, the 20,000 lists kept alive, ...


def test_an_in_process_caller_keeps_its_collector_and_exit(monkeypatch, tmp_path):
    for variable in [v for v in os.environ if v.startswith("ASTROMINED_") or v == "DAGSTER_HOME"]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("ASTROMINED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(cli, "_cmd_run", lambda settings, args: 0)
    handlers, frozen = atexit._ncallbacks(), gc.get_freeze_count()
    assert cli.main(["run", "--partition", "2026-06-14"]) == 0
    assert atexit._ncallbacks() == handlers  # no freeze registered for this (pytest's) process
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
