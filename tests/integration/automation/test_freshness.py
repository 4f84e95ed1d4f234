"""Freshness policies are attached once, centrally, and the freshness daemon evaluates them."""

import dagster as dg
from dagster._core.definitions.freshness import CronFreshnessPolicy, FreshnessState, TimeWindowFreshnessPolicy
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from astromined.automation.freshness import FRESHNESS_POLICIES
from astromined.definitions import build_definitions
from astromined.environment import load_settings

WATCHED = ["raw_telemetry", "asteroid_features", "champion_model"]


def test_policies_are_attached_to_exactly_the_watched_assets(tmp_path):
    for environment in ("local", "prod"):
        settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_ENV": environment})
        graph = build_definitions(settings).resolve_asset_graph()
        policies = {
            key.to_user_string(): graph.get(key).freshness_policy
            for key in graph.get_all_asset_keys()
            if graph.get(key).freshness_policy is not None
        }
        assert policies == FRESHNESS_POLICIES
    assert isinstance(policies["raw_telemetry"], CronFreshnessPolicy)
    assert policies["raw_telemetry"].deadline_cron == "0 2 * * *"
    assert isinstance(policies["champion_model"], TimeWindowFreshnessPolicy)
    assert policies["champion_model"].fail_window.to_timedelta().total_seconds() == 26 * 3600


def test_freshness_daemon_evaluates_the_policies(world, settings_env):
    """One iteration of Dagster's own freshness daemon over the code location: the world's assets were
    just materialized, so every watched asset is PASS; an asset without a policy is not applicable."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="astromined.definitions"),
        location_name="astromined",
    )
    with create_test_daemon_workspace_context(
        InProcessWorkspaceLoadTarget(origin), world.instance
    ) as context:
        list(FreshnessDaemon().run_iteration(context))
    keys = [dg.AssetKey(name) for name in [*WATCHED, "training_set"]]
    records = world.instance.get_freshness_state_records(keys)
    states = {key.to_user_string(): record.freshness_state for key, record in records.items()}
    assert {name: states.get(name) for name in WATCHED} == {name: FreshnessState.PASS for name in WATCHED}
    assert states.get("training_set", FreshnessState.NOT_APPLICABLE) == FreshnessState.NOT_APPLICABLE
