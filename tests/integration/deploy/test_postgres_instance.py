"""The production instance's storage for real: infra/dagster/dagster-prod.yaml's storage section (DAGSTER_PG_*
from the environment, as the Helm chart's pods get them) on a real PostgreSQL started here, the local
graph materialized through it at tiny scale, PostgreSQL restarted between runs, and nothing lost.

Only the port differs from the file (5432 there; a free port here, so parallel runs do not collide).
"""

from __future__ import annotations

import copy
from pathlib import Path

import dagster as dg
import pytest
import yaml
from support.postgres_server import postgres_server

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
from astromined.environment import load_settings
from astromined.ml.registry import ModelRegistry
from resources import build_resources

REPO = Path(__file__).resolve().parents[3]
DAGSTER_PROD = REPO / "infra" / "dagster" / "dagster-prod.yaml"
DAY = "2025-03-01"
INGEST = [assets.telemetry.raw_telemetry, assets.features.asteroid_features]
TRAIN = [
    assets.readiness.infrastructure_readiness,
    assets.features.training_set,
    assets.models.candidate_model,
    assets.models.model_evaluation,
]
TRAIN_CONFIG = {
    "ops": {
        "training_set": {"config": {"window_days": 1}},
        "candidate_model": {"config": {"max_epochs": 5, "patience": 2}},
        "infrastructure_readiness": {"config": {"min_free_disk_gib": 0.0}},
    }
}
GPU_POOL_SLOTS = 54  # `dagster instance concurrency set gpu 54` (dagster-prod.yaml, docs/deploy.md)


def prod_instance_overrides(port: int) -> dict:
    """dagster-prod.yaml's storage and concurrency sections, with the test server's port."""
    config = yaml.safe_load(DAGSTER_PROD.read_text())
    storage = copy.deepcopy(config["storage"])
    db = storage["postgres"]["postgres_db"]
    # The file reads host, user, password and database from the environment: that is what is tested.
    assert {k: db[k] for k in ("hostname", "username", "password", "db_name")} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    db["port"] = port
    return {"storage": storage, "concurrency": copy.deepcopy(config["concurrency"])}


def snapshot(instance: dg.DagsterInstance) -> dict:
    """Everything the runs left in the instance: run records, every run's event log, materializations per
    asset, the `gpu` pool's slots."""
    runs = instance.get_run_records()
    events = {
        r.dagster_run.run_id: [
            (e.storage_id, e.event_log_entry.dagster_event_type)
            for e in instance.get_records_for_run(r.dagster_run.run_id).records
        ]
        for r in runs
    }
    materializations = {}
    for key in instance.get_asset_keys():
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1000).records
        materializations[key.to_user_string()] = sorted(r.storage_id for r in records)
    slots = instance.event_log_storage.get_concurrency_info("gpu")
    return {
        "runs": sorted((r.dagster_run.run_id, r.dagster_run.status.value) for r in runs),
        "events": events,
        "materializations": materializations,
        "gpu_slots": slots.slot_count,
    }


@pytest.fixture
def pg_env(tmp_path, monkeypatch):
    with postgres_server(tmp_path) as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.mark.slow
def test_graph_on_the_prod_postgres_storage_survives_restarts(pg_env, tmp_path):
    server = pg_env
    overrides = prod_instance_overrides(server.port)
    settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path / "state"), "ASTROMINED_SCALE": "tiny"})
    resources = build_resources(settings)

    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        instance.event_log_storage.set_concurrency_slots("gpu", GPU_POOL_SLOTS)
        ingested = dg.materialize(INGEST, partition_key=DAY, resources=resources, instance=instance)
        assert ingested.success
        after_first = snapshot(instance)

    server.restart()

    # A new instance (new engine, new connections) on the restarted server sees exactly the first run.
    with dg.instance_for_test(overrides=overrides) as instance:
        assert snapshot(instance) == after_first, server.log_tail()
        trained = dg.materialize(TRAIN, resources=resources, instance=instance, run_config=TRAIN_CONFIG)
        assert trained.success
        # Tiny scale: the candidate need not beat the baseline, so an operator approves it by hand (as
        # tests/integration/automation/conftest.py does) and champion_model records it.
        version = trained.asset_materializations_for_node("candidate_model")[0].metadata["version"].value
        ModelRegistry(resources["lake"].store()).promote(version, reason="test: approved by hand")
        champion = dg.materialize([assets.models.champion_model], resources=resources, instance=instance)
        assert champion.success
        after_second = snapshot(instance)

    server.restart()

    with dg.instance_for_test(overrides=overrides) as instance:
        final = snapshot(instance)
    assert final == after_second, server.log_tail()
    # Nothing lost, and the second session's work is all there on top of the first's.
    assert len(final["runs"]) == 3
    assert {status for _, status in final["runs"]} == {"SUCCESS"}
    assert set(after_first["materializations"]) < set(final["materializations"])
    for asset, storage_ids in after_first["materializations"].items():
        assert final["materializations"][asset] == storage_ids
    produced = ("raw_telemetry", "asteroid_features", "candidate_model", "model_evaluation", "champion_model")
    for asset in produced:
        assert final["materializations"].get(asset), asset
    assert final["gpu_slots"] == GPU_POOL_SLOTS
    assert all(final["events"][run_id] for run_id, _ in final["runs"])
