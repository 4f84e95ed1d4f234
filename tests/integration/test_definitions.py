"""The code location loads and holds what operators expect to find in the UI."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from astromined.definitions import build_definitions
from astromined.environment import load_settings
from resources import (
    ComputeResource,
    LakeResource,
    LandingZoneResource,
    UplinkSigningKeyResource,
)
from resources.lake import LocalLakeResource, S3LakeResource
from resources.landing_zone import S3LandingZoneResource
from resources.simulated_landing_zone import SimulatedLandingZoneResource

REPO = Path(__file__).resolve().parents[2]

EXPECTED_GROUPS = {
    "infrastructure_readiness": "infrastructure",
    "readiness_cluster_eks_a": "infrastructure",
    "readiness_cluster_eks": "infrastructure",
    "readiness_object_stores": "infrastructure",
    "readiness_instance_storage": "infrastructure",
    "readiness_monitoring": "infrastructure",
    "raw_telemetry": "telemetry",
    "asteroid_features": "features",
    "training_set": "training",
    "candidate_model": "models",
    "model_evaluation": "models",
    "champion_model": "models",
    "sector_rankings": "models",
    "uplink_package": "uplink",
}
EXPECTED_CHECKS = {
    ("infrastructure_readiness", "all_components_ready"),
    ("readiness_cluster_eks_a", "cluster_ready"),
    ("readiness_cluster_eks", "cluster_ready"),
    ("readiness_object_stores", "object_stores_ready"),
    ("readiness_instance_storage", "instance_storage_ready"),
    ("readiness_monitoring", "monitoring_stack_ready"),
    ("raw_telemetry", "packets_reconcile"),
    ("raw_telemetry", "quarantine_rate_below_threshold"),
    ("raw_telemetry", "every_satellite_reported"),
    ("asteroid_features", "model_inputs_finite"),
    ("asteroid_features", "feature_schema_valid"),
    ("training_set", "training_set_schema_valid"),
    ("uplink_package", "signature_verifies"),
    ("uplink_package", "within_size_budget"),
    ("uplink_package", "int8_parity"),
}


def test_local_definitions_hold_the_whole_graph(tiny_settings):
    defs = build_definitions(tiny_settings)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(EXPECTED_GROUPS)
    for key, group in EXPECTED_GROUPS.items():
        assert graph.get(dg.AssetKey(key)).group_name == group, key

    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def}
    assert partitioned == {"raw_telemetry", "asteroid_features"}
    assert isinstance(graph.get(dg.AssetKey("raw_telemetry")).partitions_def, dg.DailyPartitionsDefinition)

    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS

    assert {s.name for s in defs.schedules} == {"readiness_every_5_minutes", "daily_retrain"}
    assert {s.name for s in defs.sensors} == {
        "downlink_arrival_sensor",
        "drift_sensor",
        "run_failure_alert_sensor",
        "dead_run_reaper",
    }
    assert {"downlink_to_uplink", "ingest_downlinks", "retrain_champion", "readiness_check"} <= {
        j.name for j in defs.resolve_all_job_defs()
    }
    readiness = defs.resolve_job_def("readiness_check")
    assert {k.to_user_string() for k in readiness.asset_layer.selected_asset_keys} == {
        key for key, group in EXPECTED_GROUPS.items() if group == "infrastructure"
    }
    assert {d.to_user_string() for d in graph.get(dg.AssetKey("infrastructure_readiness")).parent_keys} == {
        "readiness_cluster_eks_a",
        "readiness_cluster_eks",
    }

    candidate = graph.get(dg.AssetKey("candidate_model"))
    assert candidate.pools == {"gpu"}
    tags = defs.resolve_assets_def("candidate_model").op.tags
    assert tags["astromined/gpus"] == "1"
    k8s_config = json.loads(tags["dagster-k8s/config"])
    assert k8s_config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_local_environment_uses_local_resources_and_in_process_executor(tiny_settings):
    defs = build_definitions(tiny_settings)
    job = defs.resolve_job_def("downlink_to_uplink")
    assert job.executor_def.name == "in_process"
    resources = defs.resources
    assert isinstance(resources["lake"], LocalLakeResource)
    assert isinstance(resources["landing_zone"], SimulatedLandingZoneResource)
    assert isinstance(resources["compute"], ComputeResource)
    assert isinstance(resources["signing_key"], UplinkSigningKeyResource)
    assert (
        resources["landing_zone"].observations_per_satellite == tiny_settings.scale.observations_per_satellite
    )


def test_prod_environment_uses_object_stores_and_kubernetes(tmp_path):
    settings = load_settings({"ASTROMINED_ENV": "prod", "ASTROMINED_STATE_DIR": str(tmp_path)})
    defs = build_definitions(settings)
    assert isinstance(defs.resources["lake"], S3LakeResource)
    assert isinstance(defs.resources["lake"], LakeResource)
    assert isinstance(defs.resources["landing_zone"], S3LandingZoneResource)
    assert isinstance(defs.resources["landing_zone"], LandingZoneResource)
    assert defs.resolve_job_def("downlink_to_uplink").executor_def.name == "astromined_k8s"


def test_dagster_definitions_validate_accepts_the_workspace(tmp_path):
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
        "ASTROMINED_STATE_DIR": str(tmp_path / "state"),
        "ASTROMINED_SCALE": "tiny",
    }
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_loading_the_local_code_location_does_not_import_the_kubernetes_client(tmp_path):
    """Every CLI command and local run loads the definitions; the Kubernetes client (~0.5 s to import) is
    loaded only when a cluster is actually probed or the production executor is built."""
    code = (
        "import sys\n"
        "from astromined.definitions import build_definitions\n"
        "from astromined.environment import load_settings\n"
        "build_definitions(load_settings())\n"
        "print(sorted(m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.'))[:5])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "ASTROMINED_STATE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
