"""Readiness rows become astromined_readiness_status{component,site,status} and the per-site checked
timestamp: the real readiness assets materialized (local mode, plus one simulated cluster with its API
down), then scraped from the exporter over HTTP."""

import json
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from prometheus_client.parser import text_string_to_metric_families

import assets.readiness as readiness_assets
from astromined.monitoring import catalog
from astromined.monitoring.exporter import start_exporter
from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig
from resources import ComputeResource, ReadinessResource
from resources.lake import LocalLakeResource
from resources.landing_zone import LocalLandingZoneResource


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _status(metrics, component: str, site: str) -> str:
    catalog.spec("astromined_readiness_status")
    current = [
        status
        for status in catalog.READINESS_STATUSES
        if metrics[
            (
                "astromined_readiness_status",
                frozenset({("component", component), ("site", site), ("status", status)}),
            )
        ]
        == 1.0
    ]
    assert len(current) == 1, current
    return current[0]


@pytest.fixture
def down_cluster(tmp_path: Path):
    spec = ClusterSpec.from_dict(
        {
            "name": "eks-a",
            "site": "onprem",
            "nodes": [{"name": "n1", "allocatable": {"cpu": "4", "memory": "8Gi"}}],
        }
    )
    with SimulatedCluster(spec, workdir=tmp_path) as cluster:
        kubeconfig = write_kubeconfig({"eks-a": cluster}, tmp_path / "kubeconfig")
        cluster.set_api_down(True)
        yield kubeconfig


@pytest.mark.fault("kill", "the on-prem API is down: its rows are exported as not_ready, the rest unchanged")
def test_readiness_rows_are_exported_by_component_site_and_status(tmp_path: Path, down_cluster):
    resources = {
        "readiness": ReadinessResource(
            clusters_json=json.dumps({"eks-a": {}}), kubeconfig_file=str(down_cluster), probe_timeout_s=3.0
        ),
        "lake": LocalLakeResource(root=str(tmp_path / "lake")),
        "landing_zone": LocalLandingZoneResource(root=str(tmp_path / "landing")),
        "compute": ComputeResource(),
    }
    with dg.instance_for_test() as instance:
        dg.materialize(
            readiness_assets.READINESS_ASSETS,
            instance=instance,
            resources=resources,
            run_config={"ops": {"infrastructure_readiness": {"config": {"min_free_disk_gib": 0.0}}}},
            raise_on_error=False,
        )
        with start_exporter(instance, refresh_interval_s=3600) as handle:
            metrics = _scrape(handle.url)
    assert _status(metrics, "kubernetes_api", "eks-a") == "not_ready"
    assert _status(metrics, "executor_rbac", "eks-a") == "not_ready"
    assert _status(metrics, "kubernetes_api", "eks") == "not_configured"
    assert _status(metrics, "lake_bucket", "object_stores") == "ready"
    assert _status(metrics, "prometheus", "monitoring") == "not_configured"
    assert _status(metrics, "run_storage", "instance_storage") == "ready"
    assert _status(metrics, "compute_device", "local") == "ready"
    # eks-a is configured and its GPU rows failed (API down), eks is not configured: no GPU site
    assert _status(metrics, "gpu_sites", "clusters") == "not_ready"
    checked = {
        dict(labels)["site"]: value
        for (name, labels), value in metrics.items()
        if name == "astromined_readiness_checked_timestamp_seconds"
    }
    assert {"eks-a", "eks", "object_stores", "monitoring", "instance_storage", "local", "clusters"} <= set(
        checked
    )
    assert all(value > 0 for value in checked.values())
