"""Cluster readiness probes against the Kubernetes simulator, through the real kubernetes client."""

from pathlib import Path

import kubernetes
import pytest

from astromined.placement.snapshot import load_api_client
from astromined.readiness.kube import ClusterProbeConfig, cluster_probes
from astromined.readiness.result import Scope, Status, run_probes, summarize
from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

CLUSTER = {
    "name": "eks-a",
    "site": "onprem",
    "nodes": [
        {
            "name": "gpu-v100-01",
            "labels": {"nvidia.com/gpu.present": "true"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 2},
        },
        {
            "name": "gpu-v100-02",
            "labels": {"nvidia.com/gpu.present": "true"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 2},
        },
        {"name": "cpu-01", "allocatable": {"cpu": "4", "memory": "16Gi"}},
    ],
}


@pytest.fixture
def cluster(tmp_path: Path):
    with SimulatedCluster(ClusterSpec.from_dict(CLUSTER), workdir=tmp_path) as sim:
        yield sim


@pytest.fixture
def api_client(cluster: SimulatedCluster, tmp_path: Path) -> kubernetes.client.ApiClient:
    path = write_kubeconfig({"eks-a": cluster}, tmp_path / "kubeconfig.yaml", current_context="eks-a")
    client = load_api_client(str(path), "eks-a")
    kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": "astromined"}})
    return client


def _probe(api_client, timeout_s: float = 5.0) -> dict:
    results = run_probes(cluster_probes(api_client, ClusterProbeConfig("eks-a", timeout_s=timeout_s)))
    return {r.component: r for r in results}


def test_ready_cluster_every_row_ready(api_client):
    rows = _probe(api_client)
    assert {name: r.status for name, r in rows.items()} == {
        name: Status.READY
        for name in (
            "kubernetes_api",
            "nodes_ready",
            "gpu_nodes",
            "device_plugin",
            "default_storage_class",
            "namespace",
            "executor_rbac",
        )
    }
    assert "v1.30.4" in rows["kubernetes_api"].detail
    assert "4 allocatable nvidia.com/gpu" in rows["gpu_nodes"].detail
    assert "2 of 2 pod(s) available" in rows["device_plugin"].detail
    summary = summarize("eks-a", list(rows.values()))
    assert summary.site_ready and summary.gpu_ready and summary.reason == ""


@pytest.mark.fault("kill", "a GPU node goes NotReady: gpu_nodes and device_plugin fail, the site stays up")
def test_not_ready_gpu_node(cluster: SimulatedCluster, api_client):
    cluster.set_node_ready("gpu-v100-02", False)
    rows = _probe(api_client)
    assert rows["gpu_nodes"].status is Status.NOT_READY
    assert "gpu-v100-02" in rows["gpu_nodes"].detail
    assert rows["device_plugin"].status is Status.NOT_READY
    assert "1 of 2 pod(s) available" in rows["device_plugin"].detail
    assert rows["nodes_ready"].status is Status.READY
    summary = summarize("eks-a", list(rows.values()))
    assert summary.site_ready and not summary.gpu_ready
    assert "gpu_nodes: 1 of 2 GPU node(s) NotReady: gpu-v100-02" in summary.reason


@pytest.mark.fault("bad-config", "no NVIDIA device plugin DaemonSet on the cluster")
def test_no_device_plugin(cluster: SimulatedCluster, api_client):
    cluster.set_device_plugin(False)
    rows = _probe(api_client)
    assert rows["device_plugin"].status is Status.NOT_READY
    assert "not found" in rows["device_plugin"].detail
    assert rows["device_plugin"].scope is Scope.GPU
    assert rows["gpu_nodes"].status is Status.READY


@pytest.mark.fault("kill", "the cluster's API is down: every row fails, none hangs")
def test_api_down(cluster: SimulatedCluster, api_client):
    cluster.set_api_down(True)
    rows = _probe(api_client)
    assert all(r.status is Status.NOT_READY for r in rows.values())
    assert (
        "Connection refused" in rows["kubernetes_api"].detail
        or "MaxRetryError" in rows["kubernetes_api"].detail
    )
    assert not summarize("eks-a", list(rows.values())).site_ready


@pytest.mark.fault("kill", "a hung API (answers after the probe timeout) fails its rows, not the run")
def test_hung_api_fails_rows_by_timeout(cluster: SimulatedCluster, api_client):
    cluster.set_api_latency(3.0)
    rows = _probe(api_client, timeout_s=0.5)
    assert all(r.status is Status.NOT_READY for r in rows.values())
    assert all("timed out" in r.detail or "Timeout" in r.detail for r in rows.values())
    # every probe was bounded by its own timeout (0.5 s), not by the 3 s API latency
    assert all(r.seconds < 3.0 for r in rows.values())


@pytest.mark.fault("bad-config", "RBAC: the service account may not read pod logs or delete jobs")
def test_rbac_denied(cluster: SimulatedCluster, api_client):
    cluster.set_access_denied({"get pods/log", "delete jobs"})
    rows = _probe(api_client)
    assert rows["executor_rbac"].status is Status.NOT_READY
    assert "delete jobs.batch" in rows["executor_rbac"].detail
    assert "get pods/log" in rows["executor_rbac"].detail
    summary = summarize("eks-a", list(rows.values()))
    assert not summary.site_ready


def test_missing_namespace(api_client):
    rows = {
        r.component: r
        for r in run_probes(cluster_probes(api_client, ClusterProbeConfig("eks-a", namespace="nope")))
    }
    assert rows["namespace"].status is Status.NOT_READY
    assert "nope does not exist" in rows["namespace"].detail


def test_not_configured_cluster_is_not_a_failure():
    results = run_probes(cluster_probes(None, ClusterProbeConfig("eks")))
    assert {r.status for r in results} == {Status.NOT_CONFIGURED}
    summary = summarize("eks", results)
    assert summary.site_ready and summary.gpu_ready
