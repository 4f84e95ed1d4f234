"""The documented backfill command (docs/automation.md), for real: ``dagster job backfill ... --noprompt``.

In Dagster 1.13 the CLI itself records the backfill and submits one run per partition through the
instance's run coordinator. The instance here uses the QueuedRunCoordinator (as production does), so the
runs are created and queued — the daemon's run queue would launch them under the concurrency limits —
and nothing executes (tests/integration/test_cli_backfill.py runs such a backfill to completion with a
real daemon). The backfilled job holds no training asset: re-processing days never retrains.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from astromined.automation.jobs import INGEST_ASSETS, INGEST_JOB_NAME

REPO = Path(__file__).resolve().parents[3]
DAYS = ["2026-06-01", "2026-06-02", "2026-06-03"]
QUEUED = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
"""


def test_job_backfill_requests_one_ingest_run_per_day(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a") as config:
        config.write(QUEUED)
    env = {
        "DAGSTER_HOME": str(home),
        "ASTROMINED_STATE_DIR": str(tmp_path / "state"),
        "ASTROMINED_SCALE": "tiny",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("ASTROMINED_ENV", "ASTROMINED_DRIFT"):
        monkeypatch.delenv(name, raising=False)

    with dg.DagsterInstance.get() as instance:  # creates the SQLite schema before the CLI opens it
        launched = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                *("job", "backfill", "-w", "workspace.yaml", "-j", INGEST_JOB_NAME),
                *("--from", DAYS[0], "--to", DAYS[-1], "--noprompt"),
            ],
            cwd=REPO,
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
        backfill_id = re.search(r"Launched backfill job `(\w+)`", launched.stdout).group(1)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert sorted(run.tags["dagster/partition"] for run in runs) == DAYS
        for run in runs:
            assert run.job_name == INGEST_JOB_NAME
            assert run.status == dg.DagsterRunStatus.QUEUED
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            assert set(plan.step_keys_to_execute) == set(INGEST_ASSETS)  # no training step
        assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED  # all submitted
        assert set(instance.get_backfill(backfill_id).partition_names) == set(DAYS)
