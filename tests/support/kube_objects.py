"""Kubernetes list-JSON objects for the placement tests: a GPU node and a pod requesting GPUs."""

from astromined.placement.snapshot import PLACEMENT_ID_LABEL


def node(name: str, gpus: int = 2, ready: bool = True, **spec) -> dict:
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}], **spec},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": str(gpus), "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(name: str, node_name: str | None, gpus: int = 1, phase: str = "Running", placement_id=None) -> dict:
    labels = {PLACEMENT_ID_LABEL: placement_id} if placement_id else {}
    return {
        "metadata": {"name": name, "namespace": "astromined", "labels": labels},
        "spec": {
            **({"nodeName": node_name} if node_name else {}),
            "containers": [
                {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"cpu": "500m"}}}
            ],
        },
        "status": {"phase": phase},
    }
