"""The documented backfill, for real: `dagster-daemon run` plus `dagster job backfill` over three days.

docs/operations.md, "Backfill a range of days": telemetry and features for a range, one run per day,
executed by the daemon, without retraining. The daemon launches each run as a subprocess through the
instance's default run launcher, against a temporary DAGSTER_HOME holding a copy of the repo's dagster.yaml.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from support.waiting import poll_until, wait_until

from astromined import lake_layout
from astromined.storage import LocalBlobStore, read_parquet

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB = "ingest_downlinks"
DAYS = ["2026-06-01", "2026-06-02", "2026-06-03"]
DEADLINE_S = 480
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS"}


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no output)"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen) -> None:
    """SIGINT to the daemon's process group (daemon, code server, run workers), then SIGKILL if needed."""
    try:
        os.killpg(process.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    # A code server or run worker left in the group gets 5 s to finish on its own.
    if poll_until(lambda: not _group_alive(process.pid), 5, interval_s=0.1):
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    root = tmp_path_factory.mktemp("backfill")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    state = root / "state"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ASTROMINED_STATE_DIR": str(state),
        "ASTROMINED_SCALE": "tiny",
    }
    for name in ("ASTROMINED_ENV", "ASTROMINED_SEED"):
        env.pop(name, None)
    daemon_out, daemon_err = root / "daemon.out", root / "daemon.err"

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        # Create the SQLite schema before two processes race to create it: the daemon and the backfill
        # command both initialize a fresh instance on start ("table runs already exists" otherwise).
        instance = dg.DagsterInstance.get()
        daemon = None
        try:
            assert Path(instance.root_directory) == home
            with daemon_out.open("wb") as out, daemon_err.open("wb") as err:
                daemon = subprocess.Popen(
                    [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )

            # As documented, the daemon is already running when the backfill is requested.
            def daemon_started() -> bool:
                if daemon.poll() is not None:
                    pytest.fail(f"dagster-daemon exited with {daemon.returncode}:\n{_tail(daemon_err)}")
                return "BACKFILL" in instance.get_daemon_heartbeats()

            wait_until(
                daemon_started,
                180,
                lambda: f"dagster-daemon's backfill heartbeat:\n{_tail(daemon_err)}",
                interval_s=1,
            )
            launched = subprocess.run(
                [
                    str(BIN / "dagster"),
                    *("job", "backfill", "-w", "workspace.yaml", "-j", JOB),
                    *("--from", DAYS[0], "--to", DAYS[-1], "--noprompt"),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
            match = re.search(r"Launched backfill job `(\w+)`", launched.stdout)
            assert match, launched.stdout[-3000:]
            backfill_id = match.group(1)

            def finished():
                """The backfill's runs once it and all of them are finished."""
                if daemon.poll() is not None:
                    pytest.fail(f"dagster-daemon exited with {daemon.returncode}:\n{_tail(daemon_err)}")
                runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB))
                status = instance.get_backfill(backfill_id).status.value
                done = len(runs) >= len(DAYS) and all(r.is_finished for r in runs)
                return runs if done and status in FINISHED_BACKFILL else None

            def unfinished() -> str:
                runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB))
                summary = [(r.tags.get("dagster/partition"), r.status.value) for r in runs]
                status = instance.get_backfill(backfill_id).status.value
                return (
                    f"backfill {backfill_id} ({status}) to finish; runs: {summary}\n"
                    f"daemon stderr tail:\n{_tail(daemon_err)}"
                )

            runs = wait_until(finished, DEADLINE_S, unfinished, interval_s=2)
            _stop(daemon)  # the backfill is done: nothing may change the instance while tests read it
            yield {
                "instance": instance,
                "backfill_id": backfill_id,
                "runs": runs,
                "lake": LocalBlobStore(state / "lake"),
                "state": state,
                "daemon_err": daemon_err,
            }
        finally:
            if daemon is not None:
                _stop(daemon)
            instance.dispose()


def test_three_runs_succeeded_one_per_partition(backfill):
    runs = backfill["runs"]
    details = [(r.tags.get("dagster/partition"), r.status.value) for r in runs]
    assert len(runs) == len(DAYS), details
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), (
        f"{details}\n{_tail(backfill['daemon_err'])}"
    )
    assert sorted(r.tags["dagster/partition"] for r in runs) == DAYS
    assert {r.tags["dagster/backfill"] for r in runs} == {backfill["backfill_id"]}
    instance = backfill["instance"]
    for asset in ("raw_telemetry", "asteroid_features"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(DAYS), asset


def test_lake_holds_observations_and_features_for_each_day(backfill):
    store = backfill["lake"]
    records = backfill["instance"].fetch_materializations(dg.AssetKey("raw_telemetry"), limit=10).records
    metadata = {
        record.partition_key: {
            k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()
        }
        for record in records
    }
    assert sorted(metadata) == DAYS
    for day in DAYS:
        observations = read_parquet(store, lake_layout.raw_observations(day))
        quarantine = read_parquet(store, lake_layout.raw_quarantine(day))
        features = read_parquet(store, lake_layout.asteroid_features(day))
        raw = metadata[day]
        assert raw["files"] == 500, day  # the tiny fleet still has 500 satellites
        assert len(observations) == raw["packets_ok"] > 0, day
        assert len(quarantine) == raw["packets_quarantined"], day
        assert raw["packets_in"] == raw["packets_ok"] + raw["packets_quarantined"] + raw["duplicates"], day
        assert observations["observed_at"].dt.strftime("%Y-%m-%d").eq(day).all(), day
        assert set(features["asteroid_id"]) == set(observations["asteroid_id"]), day
        assert int(features["n_observations"].sum()) == len(observations), day
    assert lake_layout.feature_days(store.list_keys(lake_layout.FEATURES_PREFIX)) == DAYS
    landing = LocalBlobStore(backfill["state"] / "landing_zone")
    for day in DAYS:
        assert len([k for k in landing.list_keys(f"downlinks/{day}/") if k.endswith(".ccsds")]) == 500


def test_no_training_happened(backfill):
    store = backfill["lake"]
    assert store.list_keys("models/") == []
    assert store.list_keys("training/") == []
    assert store.list_keys("uplink/") == []
    instance = backfill["instance"]
    for asset in ("training_set", "candidate_model", "champion_model", "uplink_package"):
        assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is None, asset
    other_jobs = {r.job_name for r in instance.get_runs()} - {JOB}
    # Only the readiness schedule (on by default) may have ticked meanwhile; it never trains.
    assert other_jobs <= {"readiness_check"}, other_jobs
