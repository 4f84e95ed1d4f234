"""The exporter metrics behind the operational alerts (hung and queued runs, failing ticks, freshness never
evaluated, stale exporter data), read from a real SQLite Dagster instance in both event-log layouts, with
the reader's clock fixed so that ages are exact."""

import time

import dagster as dg
import pytest
from dagster import DagsterRunStatus
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, TickData, TickStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._utils.error import SerializableErrorInfo

from astromined.monitoring import catalog
from astromined.monitoring.instance_reader import InstanceReader
from astromined.monitoring.metric_state import MetricState


@pytest.fixture(params=["run_sharded", "one_table"])
def instance(request, tmp_path):
    overrides = None
    if request.param == "one_table":
        overrides = {
            "event_log_storage": {
                "module": "dagster._core.storage.event_log",
                "class": "ConsolidatedSqliteEventLogStorage",
                "config": {"base_dir": str(tmp_path)},
            }
        }
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _origin() -> RemoteRepositoryOrigin:
    return RemoteRepositoryOrigin(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__)), "__repository__"
    )


def _add_run(instance, job: str, status: DagsterRunStatus) -> float:
    run = instance.add_run(
        DagsterRun(job_name=job, status=status, remote_job_origin=RemoteJobOrigin(_origin(), job))
    )
    return instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()


def test_started_run_age_is_per_job_from_its_oldest_started_run(instance):
    first = _add_run(instance, "downlink_to_uplink", DagsterRunStatus.STARTED)
    _add_run(instance, "downlink_to_uplink", DagsterRunStatus.STARTED)
    _add_run(instance, "readiness_check", DagsterRunStatus.SUCCESS)
    _add_run(instance, "ingest_downlinks", DagsterRunStatus.QUEUED)
    state, clock = MetricState(), Clock(first + 5000)
    InstanceReader(instance, state, clock=clock).refresh()
    assert state.value(catalog.STARTED_RUN_OLDEST_AGE, ("downlink_to_uplink",)) == pytest.approx(5000, abs=5)
    assert state.value(catalog.STARTED_RUN_OLDEST_AGE, ("readiness_check",)) == 0
    assert state.value(catalog.STARTED_RUN_OLDEST_AGE, ("ingest_downlinks",)) == 0  # queued, not started
    assert state.value(catalog.QUEUED_RUN_OLDEST_AGE) == pytest.approx(5000, abs=5)


def test_a_run_marked_failed_leaves_the_started_age(instance):
    """What the AstrominedRunHung runbook does (dagster run ... / report a failure) clears the gauge."""
    created = _add_run(instance, "downlink_to_uplink", DagsterRunStatus.STARTED)
    state, clock = MetricState(), Clock(created + 20000)
    reader = InstanceReader(instance, state, clock=clock)
    reader.refresh()
    assert state.value(catalog.STARTED_RUN_OLDEST_AGE, ("downlink_to_uplink",)) > 14400
    [run] = instance.get_runs()
    instance.report_run_failed(run, "marked failed by the on-call: run worker gone")
    reader.refresh()
    assert state.value(catalog.STARTED_RUN_OLDEST_AGE, ("downlink_to_uplink",)) == 0
    assert state.value(catalog.RUN_FAILURES, ("downlink_to_uplink",)) == 1


def _tick(instance, name: str, status: TickStatus, timestamp: float) -> None:
    origin = RemoteInstigatorOrigin(_origin(), name)
    state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING)
    if instance.get_instigator_state(state.instigator_origin_id, state.selector_id) is None:
        instance.add_instigator_state(state)
    instance.create_tick(
        TickData(
            instigator_origin_id=state.instigator_origin_id,
            instigator_name=name,
            instigator_type=InstigatorType.SENSOR,
            status=status,
            timestamp=timestamp,
            selector_id=state.selector_id,
            run_ids=[],
            error=SerializableErrorInfo("landing zone unreachable", [], "ConnectionError")
            if status == TickStatus.FAILURE
            else None,
        )
    )


def test_failed_ticks_are_counted_over_the_last_hour(instance):
    now = time.time()
    _tick(instance, "downlink_arrival_sensor", TickStatus.FAILURE, now - 7200)  # outside the hour
    _tick(instance, "downlink_arrival_sensor", TickStatus.FAILURE, now - 600)
    _tick(instance, "downlink_arrival_sensor", TickStatus.FAILURE, now - 300)
    _tick(instance, "downlink_arrival_sensor", TickStatus.SUCCESS, now - 30)  # latest: a success
    _tick(instance, "drift_sensor", TickStatus.SKIPPED, now - 10)
    state = MetricState()
    InstanceReader(instance, state, clock=Clock(now)).refresh()
    arrival, drift = ("downlink_arrival_sensor", "sensor"), ("drift_sensor", "sensor")
    assert state.value(catalog.INSTIGATOR_FAILED_TICKS_1H, arrival) == 2
    assert state.value(catalog.INSTIGATOR_FAILED_TICKS_1H, drift) == 0
    assert state.value(catalog.INSTIGATOR_LAST_TICK_STATUS, (*arrival, "SUCCESS")) == 1
    assert state.value(catalog.INSTIGATOR_LAST_TICK_STATUS, (*arrival, "FAILURE")) == 0


def _freshness(instance, asset: str, new: FreshnessState, at: float) -> None:
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=dg.AssetKey(asset),
            new_state=new,
            previous_state=FreshnessState.UNKNOWN,
            state_change_timestamp=at,
        )
    )


def test_freshness_evaluated_state_and_since_when(instance):
    now = time.time()
    # raw_telemetry: materialized and evaluated (FAIL since 10 minutes); uplink_package: materialized, never
    # evaluated by the freshness daemon; champion_model: a policy asset never materialized (UNKNOWN, no
    # asset-key row in the instance); training_set: evaluated, no policy (NOT_APPLICABLE).
    for asset in ("raw_telemetry", "uplink_package", "training_set"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset))
    _freshness(instance, "raw_telemetry", FreshnessState.FAIL, now - 600)
    _freshness(instance, "champion_model", FreshnessState.UNKNOWN, now - 100000)
    _freshness(instance, "training_set", FreshnessState.NOT_APPLICABLE, now - 50)
    state = MetricState()
    InstanceReader(instance, state, clock=Clock(now)).refresh()

    evaluated = {labels[0]: v for labels, v in _series(state, catalog.ASSET_FRESHNESS_EVALUATED).items()}
    assert evaluated == {"raw_telemetry": 1, "uplink_package": 0, "champion_model": 1, "training_set": 1}
    assert state.value(catalog.ASSET_FRESHNESS_STATE, ("champion_model", "UNKNOWN")) == 1
    assert state.value(catalog.ASSET_FRESHNESS_STATE, ("raw_telemetry", "FAIL")) == 1
    since = {labels[0]: v for labels, v in _series(state, catalog.ASSET_FRESHNESS_STATE_TIMESTAMP).items()}
    assert since == {"raw_telemetry": pytest.approx(now - 600), "champion_model": pytest.approx(now - 100000)}
    assert not [k for k in _series(state, catalog.ASSET_FRESHNESS_STATE) if k[0] == "training_set"]


def _series(state: MetricState, spec: catalog.MetricSpec) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels[name] for name in spec.labels): sample.value
        for family in state.families()
        if family.name == spec.family_name
        for sample in family.samples
    }


@pytest.mark.fault("alert-edge", "an exporter source fails: last successful refresh stops, errors counted")
def test_last_successful_refresh_stops_while_a_source_fails(instance, monkeypatch):
    state, clock = MetricState(), Clock(1_000_000.0)
    reader = InstanceReader(instance, state, clock=clock)
    assert state.value(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH) == 0  # never, until a refresh succeeds
    reader.refresh()
    assert state.value(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH) == 1_000_000.0

    def unreachable(*_args, **_kwargs):
        raise ConnectionError("could not connect to server: Connection refused")

    monkeypatch.setattr(instance, "get_run_records", unreachable)
    clock.now += 60
    stats = reader.refresh()
    assert not stats.runs_synced
    assert state.value(catalog.EXPORTER_LAST_REFRESH) == 1_000_060.0  # the refresh loop still runs
    assert state.value(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH) == 1_000_000.0  # but serves stale data
    assert state.value(catalog.EXPORTER_ERRORS, ("runs",)) == 1
    assert state.value(catalog.EXPORTER_ERRORS, ("queued_runs",)) == 1

    monkeypatch.undo()
    clock.now += 60
    reader.refresh()
    assert state.value(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH) == 1_000_120.0


@pytest.mark.fault("bad-input", "materialization with unusable metadata: skipped, the refresh still succeeds")
def test_a_skipped_record_does_not_make_the_data_stale(instance):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="raw_telemetry", metadata={"packets_ok": "not a number"})
    )
    state, clock = MetricState(), Clock(2_000_000.0)
    stats = InstanceReader(instance, state, clock=clock).refresh()
    assert stats.errors == 1
    assert state.value(catalog.EXPORTER_ERRORS, ("raw_telemetry_metadata",)) == 1
    assert state.value(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH) == 2_000_000.0
