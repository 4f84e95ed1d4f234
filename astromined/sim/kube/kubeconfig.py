"""A kubeconfig for simulated clusters: one context per cluster, plain http, a dummy bearer token."""

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from astromined.sim.kube.cluster import SimulatedCluster


def kubeconfig_dict(
    clusters: Mapping[str, "SimulatedCluster"], current_context: str | None = None, namespace: str = "default"
) -> dict:
    if not clusters:
        raise ValueError("a kubeconfig needs at least one cluster")
    current = current_context or next(iter(clusters))
    if current not in clusters:
        raise ValueError(f"current_context {current!r} is not one of {sorted(clusters)}")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": name, "cluster": {"server": cluster.url}} for name, cluster in clusters.items()
        ],
        "users": [{"name": f"{name}-sim", "user": {"token": f"sim-token-{name}"}} for name in clusters],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": f"{name}-sim", "namespace": namespace}}
            for name in clusters
        ],
        "current-context": current,
    }


def write_kubeconfig(
    clusters: Mapping[str, "SimulatedCluster"], path: str | Path, current_context: str | None = None
) -> Path:
    """Write a kubeconfig whose contexts are the mapping's keys (e.g. "eks-a", "eks"); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig_dict(clusters, current_context), sort_keys=False))
    return path
