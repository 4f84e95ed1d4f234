"""The multi-cluster executor's own settings, parsed from its (already schema-checked) config dict.

Pure: no Dagster, no Kubernetes client. The config schema itself lives in ``executor.py``.
"""

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from astromined.placement.policy import PolicyConfig, PolicyError, Site, SitePolicy, Toleration


class Mode(StrEnum):
    MULTI_CLUSTER = "multi_cluster"  # one kubeconfig context per site; the policy picks the cluster
    SINGLE_CLUSTER = (
        "single_cluster"  # one control plane with both kinds of nodes; node affinity prefers on-prem
    )


# Defaults match the production contexts (docs/kubernetes.md) and the simulated clusters (infra/sim/).
DEFAULT_GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
DEFAULT_CLUSTERS: dict[str, dict[str, Any]] = {
    "eks-a": {
        "site": "onprem",
        "gpu_node_selector": {"nvidia.com/gpu.present": "true"},
        "gpu_toleration": DEFAULT_GPU_TOLERATION,
        "site_node_selector": {"astromined.io/site": "onprem"},
        "affinity_weight": 100,
    },
    "eks": {
        "site": "cloud",
        "gpu_node_selector": {"nvidia.com/gpu.present": "true"},
        "gpu_toleration": DEFAULT_GPU_TOLERATION,
        "site_node_selector": {"astromined.io/site": "cloud"},
        "affinity_weight": 1,
    },
}


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    context: str
    site: Site
    gpu_node_selector: Mapping[str, str]
    gpu_toleration: Toleration | None
    # single_cluster mode: the labels of this site's nodes and the weight of the preference for them.
    site_node_selector: Mapping[str, str]
    affinity_weight: int
    in_cluster: bool = False  # use the pod's service account instead of the kubeconfig for this context
    # dagster-k8s user-defined k8s config for the step pods on this cluster (e.g. a cloud service account).
    step_k8s_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def policy(self) -> SitePolicy:
        return SitePolicy(self.context, self.site, dict(self.gpu_node_selector), self.gpu_toleration)


@dataclasses.dataclass(frozen=True)
class PlacementSettings:
    mode: Mode
    kubeconfig_file: str | None
    clusters: tuple[ClusterSettings, ...]
    single_cluster_context: str | None
    unschedulable_timeout_s: float
    cloud_unreachable_timeout_s: float
    health_check_interval_s: int
    api_timeout_s: float
    # A GPU decision reuses an on-prem snapshot this young (the ledger covers placements made since).
    snapshot_ttl_s: float = 2.0
    # GPU decisions read on-prem clusters from a watch-based cache (informer.py) instead of listing them.
    watch_cluster_state: bool = True
    # Placement reads each cluster's latest readiness materialization this young (0: readiness not used).
    readiness_max_age_s: float = 900.0

    @property
    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(tuple(c.policy for c in self.clusters))

    def cluster(self, context: str) -> ClusterSettings:
        for cluster in self.clusters:
            if cluster.context == context:
                return cluster
        raise PolicyError(f"cluster {context!r} is not configured ({[c.context for c in self.clusters]})")


def toleration_from_config(value: Mapping[str, Any] | None, where: str) -> Toleration | None:
    if not value:
        return None
    unknown = set(value) - {"key", "operator", "value", "effect"}
    if unknown:
        raise PolicyError(f"{where}: unknown toleration field(s) {sorted(unknown)}")
    operator = value.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise PolicyError(f"{where}: toleration operator must be Equal or Exists, got {operator!r}")
    return Toleration(
        key=str(value.get("key", "")),
        operator=operator,
        value=str(value.get("value", "") or ""),
        effect=str(value.get("effect", "") or ""),
    )


def settings_from_config(config: Mapping[str, Any]) -> PlacementSettings:
    """PlacementSettings from the executor config; errors name the field at fault."""
    clusters_config = config.get("clusters") or DEFAULT_CLUSTERS
    clusters = []
    for context, entry in clusters_config.items():
        where = f"executor config clusters.{context}"
        try:
            site = Site(entry["site"])
        except (KeyError, ValueError):
            raise PolicyError(f"{where}.site must be one of {[s.value for s in Site]}") from None
        weight = int(entry.get("affinity_weight", 100 if site is Site.ONPREM else 1))
        if not 1 <= weight <= 100:
            raise PolicyError(f"{where}.affinity_weight must be 1..100 (Kubernetes), got {weight}")
        clusters.append(
            ClusterSettings(
                context=context,
                site=site,
                gpu_node_selector=dict(entry.get("gpu_node_selector") or {}),
                gpu_toleration=toleration_from_config(entry.get("gpu_toleration"), f"{where}.gpu_toleration"),
                site_node_selector=dict(entry.get("site_node_selector") or {}),
                affinity_weight=weight,
                in_cluster=bool(entry.get("in_cluster", False)),
                step_k8s_config=dict(entry.get("step_k8s_config") or {}),
            )
        )
    mode = Mode(config.get("mode", Mode.MULTI_CLUSTER.value))
    settings = PlacementSettings(
        mode=mode,
        kubeconfig_file=config.get("kubeconfig_file"),
        clusters=tuple(clusters),
        single_cluster_context=config.get("single_cluster_context"),
        unschedulable_timeout_s=float(config.get("unschedulable_timeout_s", 300.0)),
        cloud_unreachable_timeout_s=float(config.get("cloud_unreachable_timeout_s", 900.0)),
        health_check_interval_s=int(config.get("health_check_interval_s", 20)),
        api_timeout_s=float(config.get("api_timeout_s", 10.0)),
        snapshot_ttl_s=float(config.get("snapshot_ttl_s", 2.0)),
        watch_cluster_state=bool(config.get("watch_cluster_state", True)),
        readiness_max_age_s=float(config.get("readiness_max_age_s", 900.0)),
    )
    if settings.readiness_max_age_s < 0:
        raise PolicyError(
            f"executor config readiness_max_age_s must be >= 0, got {settings.readiness_max_age_s}"
        )
    settings.policy_config  # noqa: B018 - validates: one on-prem cluster at least, no duplicates
    for name in (
        "unschedulable_timeout_s",
        "cloud_unreachable_timeout_s",
        "health_check_interval_s",
        "api_timeout_s",
    ):
        if getattr(settings, name) <= 0:
            raise PolicyError(f"executor config {name} must be positive, got {getattr(settings, name)}")
    if mode is Mode.SINGLE_CLUSTER:
        missing = [c.context for c in settings.clusters if not c.site_node_selector]
        if missing:
            raise PolicyError(
                f"single_cluster mode: clusters {missing} need site_node_selector "
                "(the labels of that site's nodes)"
            )
    return settings
