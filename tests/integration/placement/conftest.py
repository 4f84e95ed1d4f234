"""Two simulated clusters (on-prem EKS-A, cloud EKS), a kubeconfig for both, and a filesystem instance the
step pods share with the test's run worker."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

GPU_NODE_LABELS = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
ONPREM_GPU_NODE = "v100-1"


def onprem_spec(gpus: int = 2) -> dict:
    return {
        "name": "eks-a",
        "site": "onprem",
        "nodes": [
            {"name": "cpu-1", "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"}},
            {
                "name": ONPREM_GPU_NODE,
                "labels": GPU_NODE_LABELS,
                "taints": [GPU_TAINT],
                "allocatable": {"cpu": "62", "memory": "480Gi", "nvidia.com/gpu": str(gpus), "pods": "110"},
            },
        ],
    }


CLOUD_SPEC = {
    "name": "eks",
    "site": "cloud",
    "nodes": [
        {"name": "m6i-1", "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"}},
        {
            "name": "g5-1",
            "labels": {**GPU_NODE_LABELS, "eks.amazonaws.com/nodegroup": "gpu-spill"},
            "taints": [GPU_TAINT],
            "allocatable": {"cpu": "48", "memory": "192Gi", "nvidia.com/gpu": "4", "pods": "110"},
        },
    ],
}


@dataclass
class Clusters:
    onprem: object
    cloud: object
    kubeconfig: Path
    home: Path

    def run_config(self, **overrides) -> dict:
        config = {
            "kubeconfig_file": str(self.kubeconfig),
            "job_namespace": "default",
            "job_image": "astromined:test",
            "image_pull_policy": "IfNotPresent",
            "dagster_home": str(self.home),
            "clusters": {
                "eks-a": {
                    "site": "onprem",
                    "gpu_node_selector": GPU_NODE_LABELS,
                    "gpu_toleration": GPU_TOLERATION,
                },
                "eks": {
                    "site": "cloud",
                    "gpu_node_selector": GPU_NODE_LABELS,
                    "gpu_toleration": GPU_TOLERATION,
                },
            },
            # Short, but generous for a busy 2-core machine: a step process takes 3-10 s to start.
            "unschedulable_timeout_s": 3.0,
            "cloud_unreachable_timeout_s": 4.0,
            "health_check_interval_s": 1,
            "api_timeout_s": 5.0,
        }
        config.update(overrides)
        return {"execution": {"config": config}}

    def occupy_onprem_gpus(self, count: int) -> None:
        """Another team's pods holding GPUs on the on-prem GPU node (Running, no process)."""
        self.onprem.add_bound_pods(
            {
                "metadata": {"name": f"other-team-{i}", "namespace": "default"},
                "spec": {
                    "nodeName": ONPREM_GPU_NODE,
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {"name": "train", "image": "other", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                    ],
                },
            }
            for i in range(count)
        )


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture
def make_clusters(tmp_path: Path, instance: dg.DagsterInstance):
    from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

    started = []

    def make(onprem_gpus: int = 2) -> Clusters:
        onprem = SimulatedCluster(ClusterSpec.from_dict(onprem_spec(onprem_gpus)), workdir=tmp_path).start()
        started.append(onprem)
        cloud = SimulatedCluster(ClusterSpec.from_dict(CLOUD_SPEC), workdir=tmp_path).start()
        started.append(cloud)
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig({"eks-a": onprem, "eks": cloud}, kubeconfig, current_context="eks-a")
        return Clusters(onprem, cloud, kubeconfig, tmp_path / "dagster_home")

    yield make
    for cluster in started:
        cluster.stop()
