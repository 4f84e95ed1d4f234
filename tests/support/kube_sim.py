"""A small two-node simulated cluster spec and `kubernetes` clients bound to a cluster through a kubeconfig
(the kube_sim tests' fixtures in tests/integration/kube_sim/conftest.py use them, and tests that start
their own cluster with other options)."""

from pathlib import Path

import kubernetes

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
