"""A small real world for the automation tests: an instance, a lake and a champion, all at tiny scale.

``world`` ingests the two clean reference days of tests/support/automation_world.py, trains a champion on
them (few epochs: its quality does not matter here, its reference statistics do), then ingests the
drifted day and one more clean day. Every materialization is real (simulated CCSDS downlinks →
raw_telemetry → asteroid_features), so the drift sensor reads real event records and real partitions.
"""

import dataclasses
from pathlib import Path

import dagster as dg
import pytest
from support.automation_world import CLEAN_DAY, DRIFTED_DAY, REFERENCE_DAYS, TRAIN_CONFIG

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
import assets.uplink
from astromined.environment import load_settings
from astromined.ml.registry import ModelRegistry
from resources import build_resources

INGEST = [assets.telemetry.raw_telemetry, assets.features.asteroid_features]
TRAIN = [
    assets.readiness.infrastructure_readiness,
    assets.features.training_set,
    assets.models.candidate_model,
    assets.models.model_evaluation,
]
QUEUED_COORDINATOR = {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
}


@dataclasses.dataclass
class World:
    instance: dg.DagsterInstance
    resources: dict
    state_dir: Path
    champion: str

    def features_record(self, partition: str):
        """The latest asteroid_features materialization record of a partition."""
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("asteroid_features"), asset_partitions=[partition]),
            limit=1,
        ).records
        assert records, f"asteroid_features[{partition}] was never materialized"
        return records[0]

    def cursor_before(self, partition: str) -> str:
        return str(self.features_record(partition).storage_id - 1)


def ingest(instance: dg.DagsterInstance, resources: dict, day: str) -> None:
    result = dg.materialize(INGEST, partition_key=day, resources=resources, instance=instance)
    assert result.success, day


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    state = tmp_path_factory.mktemp("automation") / "state"
    settings = load_settings(
        {"ASTROMINED_STATE_DIR": str(state), "ASTROMINED_SCALE": "tiny", "ASTROMINED_DRIFT": "demo"}
    )
    resources = build_resources(settings)
    with dg.instance_for_test(overrides=QUEUED_COORDINATOR) as instance:
        for day in REFERENCE_DAYS:
            ingest(instance, resources, day)
        trained = dg.materialize(TRAIN, resources=resources, instance=instance, run_config=TRAIN_CONFIG)
        assert trained.success
        # A 15-epoch tiny model need not beat the baseline (the promotion gate would rightly keep it out);
        # these tests need *a* champion with reference statistics, so an operator approves it by hand.
        champion = trained.asset_materializations_for_node("candidate_model")[0].metadata["version"].value
        ModelRegistry(resources["lake"].store()).promote(champion, reason="test fixture: approved by hand")
        kept = dg.materialize([assets.models.champion_model], resources=resources, instance=instance)
        assert kept.success  # "already the champion": champion_model is materialized, as after a promotion
        for day in (DRIFTED_DAY, CLEAN_DAY):
            ingest(instance, resources, day)
        yield World(instance=instance, resources=resources, state_dir=state, champion=champion)


@pytest.fixture(scope="session")
def settings_env(world):
    """Environment under which ``astromined.definitions`` loads the world's settings (for daemons)."""
    values = {
        "ASTROMINED_STATE_DIR": str(world.state_dir),
        "ASTROMINED_SCALE": "tiny",
        "ASTROMINED_DRIFT": "demo",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        patch.delenv("ASTROMINED_ENV", raising=False)
        yield values
