"""Exporter refresh and scrape time on an instance with 10,000 runs, against a re-read-everything baseline.

Usage:  .venv/bin/python benchmarks/exporter_scrape.py [--runs 10000] [--new-runs 100] [--repeats 5]

Builds (once, cached under .state/bench/exporter-<runs>/) a Dagster instance on SQLite with one
events table (ConsolidatedSqliteEventLogStorage: the layout of the production Postgres storage)
holding RUNS finished runs spread over 30 days, with a realistic mix: 60% ``ingest_downlinks``
(raw_telemetry, asteroid_features), 30% ``readiness_check``, 10% the full ``downlink_to_uplink`` job
(nine steps, a GPU step with a placement engine event, model metrics, promotion, uplink latency); 4%
of runs fail. Every step has its resource-init, start, output, materialization and success records,
so the exporter filters, as in production. Then, on a copy of that instance:

  1. first refresh: a fresh exporter reads the whole instance (what a restarted exporter pays once,
     in its background thread, before /metrics is served);
  2. NEW_RUNS more runs are written, then
     - incremental: the running exporter's refresh (reads only what changed),
     - baseline: a naive exporter that rebuilds everything from the instance on every scrape;
     the two must report identical counters and histograms (the benchmark stops otherwise);
  3. scrape: GET /metrics over HTTP on 127.0.0.1 (what Prometheus waits for; it renders the latest
     refresh and never touches the database).
Step 2 is repeated REPEATS times (best and median reported).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
from dagster import DagsterInstance, DagsterRunStatus  # noqa: E402
from dagster._core.events import (  # noqa: E402
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
    JobFailureData,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry  # noqa: E402
from dagster._core.execution.plan.objects import StepSuccessData  # noqa: E402
from dagster._core.execution.plan.outputs import StepOutputData, StepOutputHandle  # noqa: E402
from dagster._core.storage.dagster_run import DagsterRun  # noqa: E402
from dagster._core.storage.runs.schema import RunsTable  # noqa: E402
from dagster._serdes import serialize_value  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from astromined.monitoring.exporter import start_exporter  # noqa: E402
from astromined.monitoring.instance_reader import InstanceReader  # noqa: E402
from astromined.monitoring.metric_state import MetricState  # noqa: E402

INSTANCE_YAML = """
telemetry:
  enabled: false
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config:
    base_dir: {base}/history
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {base}/history
"""

FULL_JOB = (
    "infrastructure_readiness",
    "raw_telemetry",
    "asteroid_features",
    "training_set",
    "candidate_model",
    "model_evaluation",
    "champion_model",
    "sector_rankings",
    "uplink_package",
)
JOBS = (
    ("ingest_downlinks", ("raw_telemetry", "asteroid_features"), 0.6),
    ("readiness_check", ("infrastructure_readiness",), 0.3),
    ("downlink_to_uplink", FULL_JOB, 0.1),
)


def _metadata(step: str, rng: random.Random) -> dict:
    if step == "raw_telemetry":
        ok, crc, truncated, dup = (
            rng.randint(5000, 6000),
            rng.randint(0, 9),
            rng.randint(0, 5),
            rng.randint(0, 30),
        )
        return {
            "packets_in": ok + crc + truncated + dup,
            "packets_ok": ok,
            "packets_quarantined": crc + truncated,
            "duplicates": dup,
            "quarantine_by_reason": dg.MetadataValue.json(
                {"crc_mismatch": crc, "truncated_packet": truncated}
            ),
            "newest_downlink_landed_at": dg.MetadataValue.timestamp(time.time() - 3600),
        }
    if step == "model_evaluation":
        return {
            "accuracy": rng.uniform(0.8, 0.95),
            "macro_f1": rng.uniform(0.8, 0.95),
            "m_type_recall": rng.uniform(0.6, 0.9),
            "ece": rng.uniform(0.01, 0.05),
            "baseline_accuracy": 0.75,
            "baseline_macro_f1": 0.7,
            "champion_macro_f1": rng.uniform(0.8, 0.95),
        }
    if step == "champion_model":
        return {"promoted": rng.random() < 0.3, "decision": "benchmark"}
    if step == "infrastructure_readiness":
        return {"ready/lake": True, "ready/lake_disk": True, "ready/compute_device": rng.random() > 0.01}
    if step == "uplink_package":
        return {"data_to_model_latency_s": rng.uniform(600, 7200), "size_bytes": 80_000}
    return {"dagster/row_count": rng.randint(1000, 5000)}


def _entry(run: DagsterRun, event: DagsterEvent, timestamp: float) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=run.run_id,
        timestamp=timestamp,
        step_key=event.step_key,
        job_name=run.job_name,
        dagster_event=event,
    )


def plan_run(rng: random.Random, started_at: float) -> tuple[DagsterRun, dict, list[EventLogEntry]]:
    """One finished run: its run-table row and its event-log records, in the order they are written."""
    job, steps, _ = rng.choices(JOBS, weights=[w for *_, w in JOBS])[0]
    run_id = str(uuid.uuid4())
    now = started_at
    fails_at = rng.randrange(len(steps)) if rng.random() < 0.04 else None
    entries: list[EventLogEntry] = []

    def store(kind: DagsterEventType, step: str | None = None, data=None) -> None:
        event = DagsterEvent(kind.value, job_name=job, step_key=step, event_specific_data=data)
        entries.append(
            EventLogEntry(
                error_info=None,
                level=logging.DEBUG,
                user_message="",
                run_id=run_id,
                timestamp=now,
                step_key=step,
                job_name=job,
                dagster_event=event,
            )
        )

    store(DagsterEventType.RUN_START)
    store(DagsterEventType.ENGINE_EVENT, data=EngineEventData(metadata={"pid": 1234}))
    status = DagsterRunStatus.SUCCESS
    for index, step in enumerate(steps):
        now += 0.01
        if step == "candidate_model":
            site = "onprem" if rng.random() < 0.8 else "cloud"
            placement = {"placement/site": site, "placement/cluster": "eks-a", "placement/gpus": 1}
            store(DagsterEventType.ENGINE_EVENT, step, EngineEventData(metadata=placement))
        store(DagsterEventType.RESOURCE_INIT_STARTED, step, EngineEventData({}))
        store(DagsterEventType.STEP_START, step)
        duration = rng.uniform(0.5, 120.0)
        now += duration
        if index == fails_at:
            store(DagsterEventType.STEP_FAILURE, step, _failure())
            store(DagsterEventType.RUN_FAILURE, data=JobFailureData(None))
            status = DagsterRunStatus.FAILURE
            break
        store(DagsterEventType.STEP_OUTPUT, step, StepOutputData(StepOutputHandle(step, "result")))
        materialization = dg.AssetMaterialization(asset_key=step, metadata=_metadata(step, rng))
        store(DagsterEventType.ASSET_MATERIALIZATION, step, StepMaterializationData(materialization))
        store(DagsterEventType.STEP_SUCCESS, step, StepSuccessData(duration_ms=duration * 1000))
    else:
        store(DagsterEventType.RUN_SUCCESS)
    run = DagsterRun(job_name=job, run_id=run_id, status=status)
    naive_utc = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)
    row = {
        "run_id": run_id,
        "pipeline_name": job,
        "status": status.value,
        "run_body": serialize_value(run),
        "create_timestamp": dt.datetime.fromtimestamp(started_at, dt.UTC).replace(tzinfo=None),
        "update_timestamp": naive_utc,
        "start_time": started_at,
        "end_time": now,
    }
    return run, row, entries


def write_runs(instance: DagsterInstance, rng: random.Random, count: int, first_start: float, spacing: float):
    """Write ``count`` finished runs in two transactions, with Dagster's own tables and insert statements.

    Going through ``store_event`` one record at a time costs 35-90 ms per record on this machine (a
    connection and a commit each): hours for 10,000 runs. The rows are the ones Dagster writes.
    """
    rows, entries = [], []
    for index in range(count):
        _, row, run_entries = plan_run(rng, first_start + index * spacing)
        rows.append(row)
        entries.extend(run_entries)
    with instance.run_storage.connect() as conn:
        conn.execute(RunsTable.insert(), rows)
    storage = instance.event_log_storage
    with storage.index_connection() as conn:
        for entry in entries:
            conn.execute(storage.prepare_insert_event(entry))
    return len(entries)


def _failure():
    from dagster._core.execution.plan.objects import StepFailureData
    from dagster._utils.error import SerializableErrorInfo

    return StepFailureData(
        error=SerializableErrorInfo("simulated", [], "RuntimeError"), user_failure_data=None
    )


def fill(home: Path, runs: int, seed: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML.format(base=home))
    rng = random.Random(seed)
    # The history: RUNS runs over the last 30 days, finished well before the benchmark starts.
    start = time.time() - 30 * 86400
    spacing = 29 * 86400 / runs
    with DagsterInstance.from_config(str(home)) as instance:
        for batch in range(0, runs, 1000):
            count = min(1000, runs - batch)
            records = write_runs(instance, rng, count, start + batch * spacing, spacing)
            print(f"  wrote runs {batch + 1}-{batch + count} ({records} records)", flush=True)
            for _ in range(count // 100):
                instance.report_runless_asset_event(
                    dg.AssetObservation(
                        asset_key="asteroid_features",
                        metadata={
                            "drift/max_psi": rng.uniform(0, 0.4),
                            "drift/features_over_threshold": rng.randint(0, 3),
                            "drift/class_mix_shift": rng.uniform(0, 0.2),
                            "drift/detected": False,
                        },
                    )
                )


def _counters(state: MetricState) -> dict:
    """Every counter and histogram series (what must not differ between the two exporters)."""
    values = {}
    for family in state.families():
        if family.type in ("counter", "histogram") and not family.name.startswith("astromined_exporter"):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = round(sample.value, 6)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--new-runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.ERROR)

    cache = REPO / ".state" / "bench" / f"exporter-{args.runs}"
    if not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        print(f"building an instance with {args.runs} runs at {cache} (once)", flush=True)
        fill(cache, args.runs, seed=7)
        (cache / ".complete").touch()

    work = Path(tempfile.mkdtemp(prefix="exporter-bench-"))
    try:
        home = work / "home"
        shutil.copytree(cache, home)
        (home / "dagster.yaml").write_text(INSTANCE_YAML.format(base=home))
        rng = random.Random(11)
        with DagsterInstance.from_config(str(home)) as instance:
            storage_class = type(instance.event_log_storage).__name__
            print(f"instance: {instance.get_runs_count()} runs, event log storage {storage_class}")
            state = MetricState()
            reader = InstanceReader(instance, state)
            first = reader.refresh()
            read = f"{first.runs_read} runs, {first.records_read} records"
            print(f"first refresh: {first.duration_s:.2f} s ({read})")
            incremental, naive = [], []
            for _ in range(args.repeats):
                write_runs(instance, rng, args.new_runs, time.time() - 60, 0.5)
                stats = reader.refresh()
                incremental.append(stats.duration_s)
                baseline_state = MetricState()
                baseline = InstanceReader(instance, baseline_state).refresh()
                naive.append(baseline.duration_s)
                if _counters(state) != _counters(baseline_state):
                    raise SystemExit("the incremental exporter and the baseline disagree on a counter")
                print(
                    f"  +{args.new_runs} runs: incremental {stats.duration_s * 1000:.0f} ms "
                    f"({stats.runs_read} runs, {stats.records_read} records), "
                    f"naive {baseline.duration_s:.2f} s",
                    flush=True,
                )
            with start_exporter(instance, port=0, refresh_interval_s=3600) as handle:
                scrapes = []
                for _ in range(20):
                    started = time.perf_counter()
                    with urllib.request.urlopen(handle.url, timeout=60) as response:
                        body = response.read().decode()
                    scrapes.append(time.perf_counter() - started)
                series = sum(len(f.samples) for f in text_string_to_metric_families(body))
        total_runs = args.runs + args.repeats * args.new_runs
        print()
        print(
            f"| measurement (SQLite, one events table; {args.runs:,}–{total_runs:,} runs) | best | median |"
        )
        print("|---|---|---|")
        print(f"| first refresh (whole instance, once per exporter start) | {first.duration_s:.2f} s | – |")
        print(
            f"| naive re-read after +{args.new_runs} runs (baseline) | {min(naive):.2f} s "
            f"| {statistics.median(naive):.2f} s |"
        )
        print(
            f"| incremental refresh after +{args.new_runs} runs | {min(incremental) * 1000:.0f} ms "
            f"| {statistics.median(incremental) * 1000:.0f} ms |"
        )
        ratio_best = min(naive) / min(incremental)
        ratio_median = statistics.median(naive) / statistics.median(incremental)
        print(f"| ratio naive / incremental | {ratio_best:.0f}× | {ratio_median:.0f}× |")
        print(
            f"| GET /metrics ({series} series, {len(body) / 1024:.0f} KiB) | {min(scrapes) * 1000:.1f} ms "
            f"| {statistics.median(scrapes) * 1000:.1f} ms |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    sys.exit(main())
