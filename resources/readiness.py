"""Where the readiness assets look: the Kubernetes clusters (one kubeconfig context each), the monitoring
stack's URLs and the probe timeout. Unset means "not configured" (reported as such, never as a failure).

Production takes it from the deployment's environment, read by astromined/environment.py (the one place
that reads variables) and handed to ``ReadinessResource.from_environment``:

- ``ASTROMINED_READINESS_CLUSTERS``: JSON ``{"eks-a": {"in_cluster": true}, "eks": {}}``; per context
  optionally ``namespace``, ``in_cluster``, ``expect_gpus``, ``gpu_node_selector``,
  ``device_plugin_namespace``, ``device_plugin_name``;
- ``ASTROMINED_KUBECONFIG``: the kubeconfig holding those contexts (the in-cluster one needs none);
- ``ASTROMINED_PIPELINE_NAMESPACE`` (default ``astromined``);
- ``ASTROMINED_PROMETHEUS_URL``, ``ASTROMINED_ALERTMANAGER_URL``, ``ASTROMINED_GRAFANA_URL``,
  ``ASTROMINED_GRAFANA_DATASOURCE_UID`` and ``ASTROMINED_GRAFANA_TOKEN_FILE`` (a mounted Secret: the token is
  read at probe time, never kept in config or metadata).
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from astromined.placement.settings import DEFAULT_CLUSTERS
from astromined.readiness.kube import ClusterProbeConfig, cluster_probes
from astromined.readiness.result import DEFAULT_PROBE_TIMEOUT_S, Probe
from astromined.readiness.services import alertmanager_probes, grafana_probes, prometheus_probes

if TYPE_CHECKING:
    import kubernetes.client

# The clusters that have a readiness asset: the placement executor's default contexts (docs/kubernetes.md).
READINESS_CLUSTERS: tuple[str, ...] = tuple(DEFAULT_CLUSTERS)
_CLUSTER_KEYS = {
    "namespace",
    "in_cluster",
    "expect_gpus",
    "gpu_node_selector",
    "device_plugin_namespace",
    "device_plugin_name",
}


class ReadinessConfigError(ValueError):
    pass


class ReadinessResource(dg.ConfigurableResource):
    clusters_json: str = ""  # {} / "": no cluster configured (local mode)
    kubeconfig_file: str = ""
    namespace: str = "astromined"
    prometheus_url: str = ""
    alertmanager_url: str = ""
    grafana_url: str = ""
    grafana_datasource_uid: str = ""
    grafana_token_file: str = ""
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> "ReadinessResource":
        return cls(
            clusters_json=env.get("ASTROMINED_READINESS_CLUSTERS", ""),
            kubeconfig_file=env.get("ASTROMINED_KUBECONFIG", ""),
            namespace=env.get("ASTROMINED_PIPELINE_NAMESPACE", "astromined"),
            prometheus_url=env.get("ASTROMINED_PROMETHEUS_URL", ""),
            alertmanager_url=env.get("ASTROMINED_ALERTMANAGER_URL", ""),
            grafana_url=env.get("ASTROMINED_GRAFANA_URL", ""),
            grafana_datasource_uid=env.get("ASTROMINED_GRAFANA_DATASOURCE_UID", ""),
            grafana_token_file=env.get("ASTROMINED_GRAFANA_TOKEN_FILE", ""),
        )

    def clusters(self) -> dict[str, dict[str, Any]]:
        if not self.clusters_json.strip():
            return {}
        try:
            clusters = json.loads(self.clusters_json)
        except ValueError as error:
            raise ReadinessConfigError(f"readiness resource clusters_json is not JSON: {error}") from None
        if not isinstance(clusters, dict):
            raise ReadinessConfigError(
                "readiness resource clusters_json must map kubeconfig contexts to objects"
            )
        for context, entry in clusters.items():
            if not isinstance(entry, dict):
                raise ReadinessConfigError(f"readiness resource clusters_json.{context} must be an object")
            unknown = set(entry) - _CLUSTER_KEYS
            if unknown:
                raise ReadinessConfigError(
                    f"readiness resource clusters_json.{context}: unknown field(s) {sorted(unknown)}; "
                    f"allowed: {sorted(_CLUSTER_KEYS)}"
                )
        return clusters

    def cluster_probes(self, context: str) -> tuple[list[Probe], bool]:
        """The probes of one cluster and whether it is configured here."""
        entry = self.clusters().get(context)
        base = ClusterProbeConfig(context, namespace=self.namespace, timeout_s=self.probe_timeout_s)
        if entry is None:
            return cluster_probes(None, base), False
        config = ClusterProbeConfig(
            context,
            namespace=entry.get("namespace", self.namespace),
            gpu_node_selector=entry.get("gpu_node_selector") or base.gpu_node_selector,
            device_plugin_namespace=entry.get("device_plugin_namespace", base.device_plugin_namespace),
            device_plugin_name=entry.get("device_plugin_name", base.device_plugin_name),
            expect_gpus=bool(entry.get("expect_gpus", True)),
            timeout_s=self.probe_timeout_s,
        )
        try:
            api_client = self._api_client(context, bool(entry.get("in_cluster", False)))
        except Exception as error:  # a broken kubeconfig fails this cluster's rows, not the asset

            def broken(error: Exception = error) -> tuple[bool, str]:
                return False, f"no API client for context {context}: {type(error).__name__}: {error}"

            return [
                Probe(p.component, p.site, broken, p.timeout_s, p.scope) for p in cluster_probes(None, config)
            ], True
        return cluster_probes(api_client, config), True

    def _api_client(self, context: str, in_cluster: bool) -> "kubernetes.client.ApiClient":
        # Imported here, when a cluster is probed: the client costs ~0.5 s to import, and every process that
        # loads the definitions (CLI, webserver, local runs) would pay it (BENCHMARKS.md, data-to-model).
        import kubernetes

        from astromined.placement.snapshot import load_api_client

        if in_cluster:
            configuration = kubernetes.client.Configuration()
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            configuration.retries = 1
            return kubernetes.client.ApiClient(configuration)
        return load_api_client(self.kubeconfig_file or None, context)

    def monitoring_probes(self) -> list[Probe]:
        token = ""
        if self.grafana_token_file:
            path = Path(self.grafana_token_file)
            token = path.read_text().strip() if path.is_file() else ""
        timeout = self.probe_timeout_s
        return [
            *prometheus_probes(self.prometheus_url, timeout),
            *alertmanager_probes(self.alertmanager_url, timeout),
            *grafana_probes(self.grafana_url, self.grafana_datasource_uid, token, timeout),
        ]
