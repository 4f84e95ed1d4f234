"""Both instance files validate against the installed Dagster's schemas, down to the configurable classes."""

import shutil
from pathlib import Path

import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresEventLogStorage

REPO = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, name: str) -> dict:
    shutil.copyfile(REPO / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return config


def test_local_instance_has_retries_and_a_gpu_capable_pool(tmp_path):
    config = _load(tmp_path, "dagster.yaml")
    assert config["run_retries"]["enabled"] is True
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert "storage" not in config  # SQLite under DAGSTER_HOME


def test_production_instance_is_postgres_k8s_and_queued(tmp_path, monkeypatch):
    for variable in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(variable, f"value-of-{variable}")
    config = _load(tmp_path, "infra/dagster/dagster-prod.yaml")
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    postgres = process_config(PostgresEventLogStorage.config_type(), config["storage"]["postgres"])
    assert postgres.success, postgres.errors
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


@pytest.mark.parametrize("name", ["dagster.yaml", "infra/dagster/dagster-prod.yaml"])
def test_no_secret_values_in_instance_files(name):
    text = (REPO / name).read_text().lower()
    for needle in ("password:", "secret_access_key", "token:"):
        if needle in text:
            line = next(line for line in text.splitlines() if needle in line)
            assert line.strip().endswith(":"), f"{name} holds a literal secret: {line.strip()}"


@pytest.mark.parametrize("name", ["dagster.yaml", "infra/dagster/dagster-prod.yaml"])
def test_run_monitoring_frees_the_slots_of_runs_that_ended(tmp_path, monkeypatch, name):
    """A killed run must not hold a pool slot for ever: run monitoring on, slots freed after the run ends."""
    for variable in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(variable, f"value-of-{variable}")
    monitoring = _load(tmp_path, name)["run_monitoring"]
    assert monitoring["enabled"] is True
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 300
    assert monitoring["start_timeout_seconds"] > 0
