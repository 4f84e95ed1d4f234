"""The drift sensor on real materializations: clean vs drifted partitions, guards, and the sensor daemon."""

import datetime as dt
import logging
import shutil

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from support.automation_world import CLEAN_DAY, DRIFTED_DAY, REFERENCE_DAYS, TRAIN_CONFIG

from astromined.automation import retrain_budget
from astromined.automation.drift_sensor import SENSOR_NAME, DriftPolicyResource, drift_sensor
from astromined.automation.jobs import RETRAIN_JOB_NAME
from astromined.definitions import build_definitions
from astromined.environment import load_settings
from resources import LocalLakeResource

FEATURES = dg.AssetKey("asteroid_features")
OPEN_POLICY = DriftPolicyResource(cooldown_hours=0.0, daily_gpu_hours_cap=1e9)


def _tick(world, cursor, policy=OPEN_POLICY, lake=None):
    context = dg.build_sensor_context(
        instance=world.instance,
        cursor=cursor,
        resources={"lake": lake or world.resources["lake"], "drift_policy": policy},
    )
    return drift_sensor.evaluate_tick(context)


def _metadata(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_clean_partition_is_observed_and_not_retrained(world):
    tick = _tick(world, world.cursor_before(CLEAN_DAY))
    assert not tick.run_requests
    assert f"no drift vs champion {world.champion}" in tick.skip_message
    [observation] = tick.asset_events
    assert observation.asset_key == FEATURES and observation.partition == CLEAN_DAY
    meta = _metadata(observation)
    assert meta["drift/detected"] is False
    assert 0 <= meta["drift/max_psi"] < 0.05
    assert meta["drift/features_over_threshold"] == 0
    assert 0 <= meta["drift/class_mix_shift"] < 0.05
    assert set(meta["drift/feature_scores"]) >= {"log_albedo", "refl_norm_1.05um"}
    assert tick.cursor == str(world.features_record(CLEAN_DAY).storage_id)


def test_drifted_partition_requests_one_retraining(world):
    tick = _tick(world, world.cursor_before(DRIFTED_DAY))
    by_partition = {event.partition: _metadata(event) for event in tick.asset_events}
    assert set(by_partition) == {DRIFTED_DAY, CLEAN_DAY}  # each new partition scored once
    drifted = by_partition[DRIFTED_DAY]
    assert drifted["drift/detected"] is True
    assert drifted["drift/max_psi"] > 1.0  # the 0.93 IR calibration step moves normalized IR reflectance
    assert drifted["drift/features_over_threshold"] >= 5
    assert "refl_norm_1.05um" in drifted["drift/drifted_features"]
    assert by_partition[CLEAN_DAY]["drift/detected"] is False

    [request] = tick.run_requests
    assert request.job_name == RETRAIN_JOB_NAME
    assert request.run_key == f"drift:{world.champion}:{DRIFTED_DAY}"
    assert request.tags[retrain_budget.TRIGGER_TAG] == retrain_budget.DRIFT_TRIGGER
    # The same evaluation asks for the same run key: Dagster launches a run key once per sensor.
    assert _tick(world, world.cursor_before(DRIFTED_DAY)).run_requests[0].run_key == request.run_key
    # Past the cursor, nothing is evaluated twice.
    again = _tick(world, tick.cursor)
    assert not again.run_requests and "no new asteroid_features materializations" in again.skip_message

    # What the daemon does with the events: they land on the asset, per partition.
    for event in tick.asset_events:
        world.instance.report_runless_asset_event(event)
    [record] = world.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=FEATURES, asset_partitions=[DRIFTED_DAY]), limit=1
    ).records
    assert record.asset_observation.metadata["drift/detected"].value is True


def test_no_champion_skips_and_moves_on(world, tmp_path):
    empty_lake = LocalLakeResource(root=str(tmp_path / "lake"))
    tick = _tick(world, world.cursor_before(REFERENCE_DAYS[0]), lake=empty_lake)
    assert not tick.run_requests and not tick.asset_events
    assert tick.skip_message.startswith("no champion model yet")
    assert CLEAN_DAY in tick.skip_message
    assert int(tick.cursor) >= world.features_record(CLEAN_DAY).storage_id


def test_sensor_daemon_requests_one_run_and_records_observations(world, settings_env):
    """The real sensor daemon iteration over the code location (QueuedRunCoordinator: runs are created,
    not launched). Placed before the tests that add a drift run, so the default 6 h cooldown is clear."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="astromined.definitions"),
        location_name="astromined",
    )
    logger = logging.getLogger("drift_sensor_test")
    target = InProcessWorkspaceLoadTarget(origin)
    with create_test_daemon_workspace_context(target, world.instance) as context:
        list(execute_sensor_iteration(context, logger, None, None))
        sensor = _remote_sensor(context)
        [tick] = world.instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id, limit=1)
    assert tick.status == TickStatus.SUCCESS, tick.error or tick.skip_reason
    [record] = retrain_budget.drift_retrain_records(world.instance)
    run = record.dagster_run
    assert run.job_name == RETRAIN_JOB_NAME and run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags["dagster/run_key"] == f"drift:{world.champion}:{DRIFTED_DAY}"
    assert run.tags["astromined/drift_partition"] == DRIFTED_DAY
    # Every partition materialized so far was scored once, and only the drifted one drifted.
    detected = {}
    for day in [*REFERENCE_DAYS, DRIFTED_DAY, CLEAN_DAY]:
        [observation] = world.instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=FEATURES, asset_partitions=[day]), limit=1
        ).records
        detected[day] = observation.asset_observation.metadata["drift/detected"].value
    assert detected == {
        REFERENCE_DAYS[0]: False,
        REFERENCE_DAYS[1]: False,
        DRIFTED_DAY: True,
        CLEAN_DAY: False,
    }


def _remote_sensor(context):
    entries = context.create_request_context().get_code_location_entries().values()
    location = next(iter(entries)).code_location
    repository = next(iter(location.get_repositories().values()))
    return repository.get_sensor(SENSOR_NAME)


@pytest.fixture(scope="module")
def drift_retrain_run(world, tmp_path_factory):
    """A real retrain_champion run tagged as drift-triggered, on a copy of the lake (the world keeps its
    champion): the cost history the cooldown and the daily cap read."""
    state = tmp_path_factory.mktemp("retrain") / "state"
    shutil.copytree(world.state_dir, state)
    settings = load_settings(
        {"ASTROMINED_STATE_DIR": str(state), "ASTROMINED_SCALE": "tiny", "ASTROMINED_DRIFT": "demo"}
    )
    job = build_definitions(settings).resolve_job_def(RETRAIN_JOB_NAME)
    result = job.execute_in_process(
        instance=world.instance,
        run_config=TRAIN_CONFIG,
        tags={retrain_budget.TRIGGER_TAG: retrain_budget.DRIFT_TRIGGER},
    )
    assert result.success
    return result.run_id


def test_cooldown_blocks_a_second_retraining(world, drift_retrain_run):
    policy = DriftPolicyResource(cooldown_hours=6.0, daily_gpu_hours_cap=1e9)
    tick = _tick(world, world.cursor_before(DRIFTED_DAY), policy=policy)
    assert not tick.run_requests
    assert "cooldown" in tick.skip_message and drift_retrain_run[:8] in tick.skip_message
    assert len(tick.asset_events) == 2  # still observed, only the retraining is held back


def test_daily_gpu_hour_cap(world, drift_retrain_run):
    [stats] = world.instance.get_run_step_stats(drift_retrain_run, step_keys=["candidate_model"])
    expected_hours = (stats.end_time - stats.start_time) / 3600.0  # candidate_model asks for 1 GPU
    used, costs = retrain_budget.gpu_hours_today(world.instance, dt.datetime.now(dt.UTC))
    assert [c.run_id for c in costs if c.run_id == drift_retrain_run] == [drift_retrain_run]
    cost = next(c for c in costs if c.run_id == drift_retrain_run)
    assert cost.gpus == 1
    assert cost.gpu_hours == pytest.approx(expected_hours)
    assert used >= expected_hours > 0

    cursor = world.cursor_before(DRIFTED_DAY)
    capped = _tick(world, cursor, DriftPolicyResource(cooldown_hours=0.0, daily_gpu_hours_cap=used / 2))
    assert not capped.run_requests and "daily cap" in capped.skip_message
    room = _tick(world, cursor, DriftPolicyResource(cooldown_hours=0.0, daily_gpu_hours_cap=used * 10))
    assert len(room.run_requests) == 1
