"""The exporter against a real (SQLite, run-sharded) Dagster instance, scraped over HTTP on 127.0.0.1.

A small asset graph emits the same metadata keys as the real assets (docs/contracts.md), one job
fails, sensors/daemons/freshness are recorded through the instance's own APIs, and a drift
observation is reported the way the drift sensor reports it. The real assets are too slow to run
here (minutes per graph); their metadata keys are covered by tests/unit/monitoring. Everything runs
against both event-log layouts, which the exporter reads differently (instance_reader.py).
"""

import time
import urllib.error
import urllib.request

import dagster as dg
import pytest
from dagster import DagsterRunStatus
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import EngineEventData
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, TickData, TickStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.types import DaemonHeartbeat
from dagster._utils.error import SerializableErrorInfo
from prometheus_client.parser import text_string_to_metric_families

from astromined.monitoring import catalog
from astromined.monitoring.exporter import start_exporter
from astromined.monitoring.instance_reader import InstanceReader
from astromined.monitoring.metric_state import MetricState

PIPELINE_JOB = "test_pipeline"
FAILING_JOB = "test_failing"


def report_placement(context, step_key: str, site: str, gpus: int, reason: str) -> None:
    """The engine event the multi-cluster executor records for a placement decision."""
    context.instance.report_engine_event(
        f"placed {step_key} on {site}: {reason}",
        context.run,
        EngineEventData(
            metadata={
                "placement/site": site,
                "placement/cluster": {"cloud": "eks", "onprem": "eks-a"}[site],
                "placement/reason": reason,
                "placement/gpus": gpus,
            }
        ),
        step_key=step_key,
    )


@dg.asset(check_specs=[dg.AssetCheckSpec("packets_reconcile", asset="raw_telemetry")])
def raw_telemetry(context: dg.AssetExecutionContext):
    # Before candidate_model starts, as the run worker does: placed on-prem, left Unschedulable, moved to
    # the cloud. It runs (and counts) once, in the cloud.
    report_placement(context, "candidate_model", "onprem", 2, "1 GPU free on v100-1")
    report_placement(context, "candidate_model", "cloud", 2, "moved: Unschedulable on eks-a for 301s")
    yield dg.MaterializeResult(
        metadata={
            "packets_in": 115,
            "packets_ok": 100,
            "packets_quarantined": 10,
            "duplicates": 5,
            "quarantine_by_reason": dg.MetadataValue.json({"crc_mismatch": 7, "truncated": 3}),
        }
    )
    yield dg.AssetCheckResult(check_name="packets_reconcile", passed=True)


@dg.asset(deps=[raw_telemetry])
def candidate_model():
    # Real time passing, not a wait for something: the step lasts at least 50 ms, so its duration (and the
    # GPU-seconds derived from it) is a measured, non-zero value the tests below can check.
    time.sleep(0.05)
    return dg.MaterializeResult(metadata={"version": "v0001"})


@dg.asset(deps=[candidate_model])
def model_evaluation(context: dg.AssetExecutionContext):
    # Recorded after the step started, as single-cluster mode does once the pod is bound.
    report_placement(context, "model_evaluation", "cloud", 0, "single cluster: bound to a cloud node")
    return dg.MaterializeResult(
        metadata={
            "accuracy": 0.91,
            "macro_f1": 0.88,
            "m_type_recall": 0.8,
            "ece": 0.03,
            "baseline_accuracy": 0.7,
            "baseline_macro_f1": 0.6,
            "baseline_margin": 0.28,
            "baseline_margin_low": 0.21,
            "baseline_margin_high": 0.35,
            "baseline_margin_win_share": 1.0,
            "champion": "none",
            "champion_macro_f1": float("nan"),
        }
    )


@dg.asset(deps=[model_evaluation])
def champion_model():
    return dg.MaterializeResult(metadata={"promoted": False, "decision": "macro-F1 not better"})


@dg.asset
def infrastructure_readiness():
    return dg.MaterializeResult(metadata={"ready/lake": True, "ready/compute_device": False})


@dg.asset(deps=[champion_model])
def uplink_package():
    return dg.MaterializeResult(metadata={"data_to_model_latency_s": 1500.0})


@dg.asset
def broken_asset():
    raise RuntimeError("simulated step failure")


DEFS = dg.Definitions(
    assets=[
        raw_telemetry,
        candidate_model,
        model_evaluation,
        champion_model,
        infrastructure_readiness,
        uplink_package,
        broken_asset,
    ],
    jobs=[
        dg.define_asset_job(
            PIPELINE_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(broken_asset)
        ),
        dg.define_asset_job(FAILING_JOB, selection=[broken_asset]),
    ],
)


def _run(instance, job_name: str) -> bool:
    return DEFS.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False).success


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(metrics, series: str, **labels) -> float:
    catalog.spec(series)  # only catalog names are asked for
    return metrics[(series, frozenset(labels.items()))]


def _repository_origin() -> RemoteRepositoryOrigin:
    return RemoteRepositoryOrigin(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__)), "__repository__"
    )


def _record_sensor_tick(instance, name: str, status: TickStatus) -> None:
    origin = RemoteInstigatorOrigin(_repository_origin(), name)
    state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING)
    instance.add_instigator_state(state)
    instance.create_tick(
        TickData(
            instigator_origin_id=state.instigator_origin_id,
            instigator_name=name,
            instigator_type=InstigatorType.SENSOR,
            status=status,
            timestamp=time.time(),
            selector_id=state.selector_id,
            error=SerializableErrorInfo("landing zone unreachable", [], "ConnectionError"),
        )
    )


def _instance(storage: str, tmp_dir: str):
    if storage == "run_sharded":  # Dagster's local default: one SQLite file per run
        return dg.instance_for_test()
    # One events table, the layout of the production Postgres storage.
    one_table = {
        "module": "dagster._core.storage.event_log",
        "class": "ConsolidatedSqliteEventLogStorage",
        "config": {"base_dir": tmp_dir},
    }
    return dg.instance_for_test(overrides={"event_log_storage": one_table})


@pytest.fixture(scope="module", params=["run_sharded", "one_table"])
def instance(request, tmp_path_factory):
    with _instance(request.param, str(tmp_path_factory.mktemp("events"))) as instance:
        assert instance.event_log_storage.is_run_sharded == (request.param == "run_sharded")
        assert _run(instance, PIPELINE_JOB)
        assert not _run(instance, FAILING_JOB)
        instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key="asteroid_features",
                partition=None,
                metadata={
                    "drift/max_psi": 0.42,
                    "drift/features_over_threshold": 3,
                    "drift/class_mix_shift": 0.11,
                    "drift/detected": True,
                },
            )
        )
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=dg.AssetKey("raw_telemetry"),
                new_state=FreshnessState.FAIL,
                previous_state=FreshnessState.PASS,
                state_change_timestamp=time.time(),
            )
        )
        instance.add_run(
            DagsterRun(
                job_name=PIPELINE_JOB,
                status=DagsterRunStatus.QUEUED,
                remote_job_origin=RemoteJobOrigin(_repository_origin(), PIPELINE_JOB),
            )
        )
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(timestamp=time.time() - 30, daemon_type="SENSOR", daemon_id="d1", errors=[])
        )
        _record_sensor_tick(instance, "downlink_arrival_sensor", TickStatus.FAILURE)
        yield instance


@pytest.fixture(scope="module")
def exporter(instance):
    # A long interval: the test drives refreshes itself.
    with start_exporter(instance, host="127.0.0.1", port=0, refresh_interval_s=3600) as handle:
        yield handle


@pytest.fixture(scope="module")
def first(exporter):
    return _scrape(exporter.url)


def test_runs_by_job_and_status_and_failures(first):
    assert _value(first, "astromined_runs", job=PIPELINE_JOB, status="SUCCESS") == 1
    assert _value(first, "astromined_runs", job=PIPELINE_JOB, status="QUEUED") == 1
    assert _value(first, "astromined_runs", job=FAILING_JOB, status="FAILURE") == 1
    assert _value(first, "astromined_runs", job=FAILING_JOB, status="SUCCESS") == 0
    assert _value(first, "astromined_run_failures_total", job=FAILING_JOB) == 1
    assert ("astromined_run_failures_total", frozenset({("job", PIPELINE_JOB)})) not in first
    assert _value(first, "astromined_queued_run_oldest_age_seconds") > 0
    assert _value(first, "astromined_started_run_oldest_age_seconds", job=PIPELINE_JOB) == 0


def test_step_durations_by_job_and_step(first):
    for step in ("raw_telemetry", "candidate_model", "uplink_package"):
        assert _value(first, "astromined_step_duration_seconds_count", job=PIPELINE_JOB, step=step) == 1
    assert _value(first, "astromined_step_duration_seconds_count", job=FAILING_JOB, step="broken_asset") == 1
    assert (
        _value(first, "astromined_step_duration_seconds_sum", job=PIPELINE_JOB, step="candidate_model")
        >= 0.05
    )
    inf = _value(
        first, "astromined_step_duration_seconds_bucket", job=PIPELINE_JOB, step="raw_telemetry", le="+Inf"
    )
    assert inf == 1


def test_asset_materialization_freshness_and_checks(first):
    now = time.time()
    for asset in ("raw_telemetry", "uplink_package", "infrastructure_readiness"):
        stamp = _value(first, "astromined_asset_last_materialization_timestamp_seconds", asset=asset)
        assert now - 600 < stamp <= now
    assert _value(first, "astromined_asset_freshness_state", asset="raw_telemetry", state="FAIL") == 1
    assert _value(first, "astromined_asset_freshness_state", asset="raw_telemetry", state="PASS") == 0
    since = _value(first, "astromined_asset_freshness_state_timestamp_seconds", asset="raw_telemetry")
    assert now - 600 < since <= now
    # Materialized but never evaluated by the freshness daemon (AstrominedAssetFreshnessNotEvaluated).
    assert _value(first, "astromined_asset_freshness_evaluated", asset="raw_telemetry") == 1
    assert _value(first, "astromined_asset_freshness_evaluated", asset="uplink_package") == 0
    assert (
        _value(first, "astromined_asset_check_passed", asset="raw_telemetry", check="packets_reconcile") == 1
    )


def test_sensor_ticks_and_daemon_heartbeats(first):
    labels = {"name": "downlink_arrival_sensor", "type": "sensor"}
    assert _value(first, "astromined_instigator_last_tick_status", status="FAILURE", **labels) == 1
    assert _value(first, "astromined_instigator_last_tick_status", status="SUCCESS", **labels) == 0
    assert _value(first, "astromined_instigator_last_tick_timestamp_seconds", **labels) > time.time() - 600
    assert _value(first, "astromined_instigator_failed_ticks_1h", **labels) == 1
    assert _value(first, "astromined_daemon_heartbeat_age_seconds", daemon="SENSOR") >= 30


def test_domain_metrics_from_event_metadata(first):
    assert _value(first, "astromined_packets_total", outcome="ok") == 100
    assert _value(first, "astromined_packets_total", outcome="quarantined") == 10
    assert _value(first, "astromined_packets_total", outcome="duplicate") == 5
    assert _value(first, "astromined_packets_quarantined_total", reason="crc_mismatch") == 7
    assert _value(first, "astromined_drift_max_psi") == pytest.approx(0.42)
    assert _value(first, "astromined_drift_features_over_threshold") == 3
    assert _value(first, "astromined_drift_class_mix_shift") == pytest.approx(0.11)
    assert _value(first, "astromined_drift_detected") == 1
    assert _value(first, "astromined_model_metric", role="candidate", metric="macro_f1") == pytest.approx(
        0.88
    )
    assert _value(first, "astromined_model_metric", role="baseline", metric="accuracy") == pytest.approx(0.7)
    assert ("astromined_model_metric", frozenset({("role", "champion"), ("metric", "macro_f1")})) not in first
    margin = {
        s: _value(first, "astromined_model_baseline_margin", statistic=s) for s in ("margin", "low", "high")
    }
    assert margin == pytest.approx({"margin": 0.28, "low": 0.21, "high": 0.35})
    assert _value(first, "astromined_model_baseline_margin", statistic="win_share") == 1.0
    assert _value(first, "astromined_promotions_total", outcome="blocked") == 1
    assert _value(first, "astromined_readiness_ready", component="lake") == 1
    assert _value(first, "astromined_readiness_ready", component="compute_device") == 0
    assert _value(first, "astromined_data_to_model_latency_seconds_count") == 1
    assert _value(first, "astromined_data_to_model_latency_seconds_bucket", le="1800.0") == 1
    assert _value(first, "astromined_data_to_model_latency_seconds_bucket", le="1200.0") == 0


def test_placements_and_gpu_seconds_are_gpus_times_the_step_duration(first):
    # candidate_model (moved on-prem -> cloud before it started) once, model_evaluation (late) once.
    assert _value(first, "astromined_step_placements_total", site="cloud") == 2
    assert ("astromined_step_placements_total", frozenset({("site", "onprem")})) not in first
    duration = _value(first, "astromined_step_duration_seconds_sum", job=PIPELINE_JOB, step="candidate_model")
    assert _value(first, "astromined_gpu_seconds_total", site="cloud") == pytest.approx(2 * duration)


def test_exporter_reports_on_itself(first):
    assert _value(first, "astromined_exporter_events_processed_total") > 0
    assert _value(first, "astromined_exporter_scrape_duration_seconds") > 0
    assert _value(first, "astromined_exporter_last_refresh_timestamp_seconds") > time.time() - 600
    assert _value(first, "astromined_exporter_last_successful_refresh_timestamp_seconds") == _value(
        first, "astromined_exporter_last_refresh_timestamp_seconds"
    )


def test_second_refresh_reads_only_new_records_and_counters_do_not_double(instance, exporter, first):
    idle = exporter.refresh()
    assert (idle.runs_read, idle.records_read) == (0, 0)
    assert _scrape(exporter.url)[("astromined_packets_total", frozenset({("outcome", "ok")}))] == 100

    assert _run(instance, PIPELINE_JOB)
    stats = exporter.refresh()
    assert stats.runs_read == 1
    assert 0 < stats.records_read < 60  # this run's step/asset records, not the whole history
    second = _scrape(exporter.url)
    assert _value(second, "astromined_packets_total", outcome="ok") == 200
    assert _value(second, "astromined_promotions_total", outcome="blocked") == 2
    assert _value(second, "astromined_run_failures_total", job=FAILING_JOB) == 1
    assert _value(second, "astromined_runs", job=PIPELINE_JOB, status="SUCCESS") == 2
    assert (
        _value(second, "astromined_step_duration_seconds_count", job=PIPELINE_JOB, step="raw_telemetry") == 2
    )
    processed = _value(first, "astromined_exporter_events_processed_total") + stats.records_read
    assert _value(second, "astromined_exporter_events_processed_total") == processed


def test_a_bad_record_is_counted_and_skipped_not_fatal(instance, exporter):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="raw_telemetry",
            metadata={
                "packets_ok": 1,
                "packets_quarantined": 5,
                "duplicates": 0,
                "quarantine_by_reason": {"crc": 1},
            },
        )
    )
    before = _scrape(exporter.url)
    exporter.refresh()
    after = _scrape(exporter.url)
    errors = ("astromined_exporter_errors_total", frozenset({("kind", "raw_telemetry_metadata")}))
    assert after[errors] == before.get(errors, 0) + 1
    ok = ("astromined_packets_total", frozenset({("outcome", "ok")}))
    assert after[ok] == before[ok]
    latest = (
        "astromined_asset_last_materialization_timestamp_seconds",
        frozenset({("asset", "raw_telemetry")}),
    )
    assert after[latest] > before[latest]


def test_a_restarted_exporter_reports_the_same_totals(instance, exporter):
    exporter.refresh()
    running = _scrape(exporter.url)
    with start_exporter(instance, port=0, refresh_interval_s=3600) as restarted:
        fresh = _scrape(restarted.url)
    for name in (
        "astromined_packets_total",
        "astromined_promotions_total",
        "astromined_step_duration_seconds_count",
    ):
        assert {k: v for k, v in fresh.items() if k[0] == name} == {
            k: v for k, v in running.items() if k[0] == name
        }


def test_metrics_are_withheld_until_the_first_refresh_and_health_is_served(instance):
    handle = start_exporter(instance, port=0, refresh_interval_s=3600, wait_until_ready=False)
    try:
        health = handle.url.replace("/metrics", "/healthz")
        with urllib.request.urlopen(health, timeout=30) as response:
            assert response.status == 200
        assert handle.exporter.ready.wait(120)
        with urllib.request.urlopen(handle.url.replace("/metrics", "/ready"), timeout=30) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(handle.url.replace("/metrics", "/nope"), timeout=30)
        assert missing.value.code == 404
    finally:
        handle.stop()


def test_reading_in_tiny_batches_gives_the_same_metrics(instance, exporter):
    """Chunked reads (bounded memory on a large instance) must not reorder a step's start and end."""
    exporter.refresh()

    def accumulated(state: MetricState) -> dict:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in state.families()
            if family.type in ("counter", "histogram") and not family.name.startswith("astromined_exporter")
            for s in family.samples
        }

    small = MetricState()
    InstanceReader(instance, small, batch_size=2).refresh()
    assert accumulated(small) == accumulated(exporter.exporter.state)
    assert any(name == "astromined_step_duration_seconds_count" for name, _ in accumulated(small))
