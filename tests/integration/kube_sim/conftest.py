"""A small two-node simulated cluster and `kubernetes` clients bound to it through a generated kubeconfig."""

from pathlib import Path

import kubernetes
import pytest

from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

SMALL_CLUSTER = {
    "name": "eks-a",
    "site": "onprem",
    "nodes": [
        {
            "name": "gpu-v100-01",
            "labels": {"astromined.io/gpu": "v100", "nvidia.com/gpu.present": "true"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1},
        },
        {"name": "cpu-01", "allocatable": {"cpu": "4", "memory": "16Gi"}},
    ],
}


class Clients:
    def __init__(self, kubeconfig: Path, context: str):
        self.configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(kubeconfig), context=context, client_configuration=self.configuration
        )
        self.api_client = kubernetes.client.ApiClient(self.configuration)
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.batch = kubernetes.client.BatchV1Api(self.api_client)


@pytest.fixture
def cluster(tmp_path: Path):
    sim = SimulatedCluster(ClusterSpec.from_dict(SMALL_CLUSTER), workdir=tmp_path, job_backoff_seconds=0.2)
    with sim:
        yield sim


@pytest.fixture
def clients(cluster: SimulatedCluster, tmp_path: Path) -> Clients:
    path = write_kubeconfig({"eks-a": cluster}, tmp_path / "kubeconfig.yaml", current_context="eks-a")
    clients = Clients(path, "eks-a")
    clients.core.create_namespace({"metadata": {"name": "dagster"}})
    return clients
