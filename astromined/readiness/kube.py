"""Readiness probes of one Kubernetes cluster, through the kubernetes client against its own API client.

Rows (each its own probe and timeout): ``kubernetes_api`` (version), ``nodes_ready``, ``gpu_nodes`` (Ready
GPU nodes with allocatable ``nvidia.com/gpu`` > 0), ``device_plugin`` (the NVIDIA device plugin DaemonSet
fully available), ``default_storage_class``, ``namespace`` and ``executor_rbac`` (SelfSubjectAccessReview
of every verb the placement executor uses). ``gpu_nodes`` and ``device_plugin`` have GPU scope: when they
fail, the site still takes steps without GPUs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from astromined.readiness.result import DEFAULT_PROBE_TIMEOUT_S, Probe, Scope

if TYPE_CHECKING:  # the client is imported when a cluster is probed: ~0.5 s saved on every CLI start
    import kubernetes.client

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_STORAGE_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@dataclasses.dataclass(frozen=True)
class Access:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespaced: bool = True

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {what}" + (f".{self.group}" if self.group else "")


# What the placement executor (astromined/placement: executor, placer, informer) does on every cluster:
# submit, follow and delete step jobs, read their pods and logs, and read nodes and pods cluster-wide for its
# placement snapshots and watch caches (infra/k8s/base/rbac.yaml grants exactly these).
EXECUTOR_ACCESS: tuple[Access, ...] = (
    Access("create", "jobs", "batch"),
    Access("list", "jobs", "batch"),
    Access("delete", "jobs", "batch"),
    Access("get", "jobs", "batch", subresource="status"),
    Access("get", "pods"),
    Access("list", "pods"),
    Access("delete", "pods"),
    Access("get", "pods", subresource="log"),
    Access("get", "nodes", namespaced=False),
    Access("list", "nodes", namespaced=False),
    Access("watch", "nodes", namespaced=False),
    Access("list", "pods", namespaced=False),
    Access("watch", "pods", namespaced=False),
)


@dataclasses.dataclass(frozen=True)
class ClusterProbeConfig:
    context: str
    namespace: str = "astromined"
    gpu_node_selector: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    device_plugin_namespace: str = "kube-system"
    device_plugin_name: str = "nvidia-device-plugin"
    expect_gpus: bool = True
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    access: tuple[Access, ...] = EXECUTOR_ACCESS


def _read(response: Any) -> Any:
    return json.loads(response.data)


def _ready(node: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions") or []
    )


def _is_gpu_node(node: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _gpus(node: Mapping[str, Any]) -> int:
    value = (node.get("status", {}).get("allocatable") or {}).get(GPU_RESOURCE, "0")
    try:
        return int(str(value))
    except ValueError:
        return 0


def _names(nodes: list[Mapping[str, Any]], limit: int = 5) -> str:
    names = sorted(n["metadata"]["name"] for n in nodes)
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def cluster_probes(api_client: kubernetes.client.ApiClient | None, config: ClusterProbeConfig) -> list[Probe]:
    """The probes of one cluster. ``api_client`` None: the cluster is not configured here (every row says
    so). The API's answers are read as raw JSON (``_preload_content=False``): no model deserialization."""
    site, timeout = config.context, config.timeout_s
    request_timeout = (min(3.0, timeout), timeout)
    if api_client is None:
        return [
            Probe(name, site, None, timeout, scope)
            for name, scope in (
                ("kubernetes_api", Scope.SITE),
                ("nodes_ready", Scope.SITE),
                ("gpu_nodes", Scope.GPU),
                ("device_plugin", Scope.GPU),
                ("default_storage_class", Scope.SITE),
                ("namespace", Scope.SITE),
                ("executor_rbac", Scope.SITE),
            )
        ]
    import kubernetes.client

    core_api = kubernetes.client.CoreV1Api(api_client)

    def api_version() -> tuple[bool, str]:
        version = _read(
            kubernetes.client.VersionApi(api_client).get_code(
                _preload_content=False, _request_timeout=request_timeout
            )
        )
        return True, f"reachable, Kubernetes {version.get('gitVersion', '?')}"

    def list_nodes() -> list[dict[str, Any]]:
        return _read(core_api.list_node(_preload_content=False, _request_timeout=request_timeout))["items"]

    def nodes_ready() -> tuple[bool, str]:
        nodes = list_nodes()
        other = [n for n in nodes if not _is_gpu_node(n, config.gpu_node_selector)]
        not_ready = [n for n in other if not _ready(n)]
        if not nodes:
            return False, "the cluster has no nodes"
        if not_ready:
            return False, f"{len(not_ready)} of {len(other)} non-GPU node(s) NotReady: {_names(not_ready)}"
        return True, f"{len(nodes)} node(s), every non-GPU node Ready ({len(other)})"

    def gpu_nodes() -> tuple[bool, str]:
        gpu = [n for n in list_nodes() if _is_gpu_node(n, config.gpu_node_selector)]
        selector = dict(config.gpu_node_selector)
        if not gpu:
            return False, f"no node labelled {selector}"
        not_ready = [n for n in gpu if not _ready(n)]
        without = [n for n in gpu if _ready(n) and _gpus(n) <= 0]
        total = sum(_gpus(n) for n in gpu if _ready(n))
        if not_ready:
            return False, f"{len(not_ready)} of {len(gpu)} GPU node(s) NotReady: {_names(not_ready)}"
        if without:
            return (
                False,
                f"{len(without)} Ready GPU node(s) with no allocatable {GPU_RESOURCE}: {_names(without)}",
            )
        return True, f"{len(gpu)} GPU node(s) Ready, {total} allocatable {GPU_RESOURCE}"

    def device_plugin() -> tuple[bool, str]:
        apps_api = kubernetes.client.AppsV1Api(api_client)
        where = f"DaemonSet {config.device_plugin_namespace}/{config.device_plugin_name}"
        try:
            daemonset = _read(
                apps_api.read_namespaced_daemon_set(
                    config.device_plugin_name,
                    config.device_plugin_namespace,
                    _preload_content=False,
                    _request_timeout=request_timeout,
                )
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return False, f"{where} not found: no NVIDIA device plugin, GPUs are not allocatable"
            raise
        status = daemonset.get("status") or {}
        desired = int(status.get("desiredNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        if desired == 0:
            return False, f"{where} is scheduled on no node (desiredNumberScheduled 0)"
        if available < desired:
            return False, f"{where}: {available} of {desired} pod(s) available"
        return True, f"{where}: {available} of {desired} pod(s) available"

    def storage_class() -> tuple[bool, str]:
        storage_api = kubernetes.client.StorageV1Api(api_client)
        classes = _read(
            storage_api.list_storage_class(_preload_content=False, _request_timeout=request_timeout)
        )
        defaults = [
            c["metadata"]["name"]
            for c in classes["items"]
            if any(
                (c["metadata"].get("annotations") or {}).get(a) == "true"
                for a in DEFAULT_STORAGE_CLASS_ANNOTATIONS
            )
        ]
        if not defaults:
            return False, f"no default StorageClass among {len(classes['items'])}"
        return True, f"default StorageClass {', '.join(sorted(defaults))}"

    def namespace() -> tuple[bool, str]:
        try:
            ns = _read(
                core_api.read_namespace(
                    config.namespace, _preload_content=False, _request_timeout=request_timeout
                )
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return False, f"namespace {config.namespace} does not exist"
            raise
        phase = (ns.get("status") or {}).get("phase", "Active")
        return phase == "Active", f"namespace {config.namespace} {phase}"

    def rbac() -> tuple[bool, str]:
        authorization_api = kubernetes.client.AuthorizationV1Api(api_client)
        denied = []
        for access in config.access:
            body = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "verb": access.verb,
                        "resource": access.resource,
                        "group": access.group,
                        "subresource": access.subresource,
                        **({"namespace": config.namespace} if access.namespaced else {}),
                    }
                },
            }
            review = _read(
                authorization_api.create_self_subject_access_review(
                    body, _preload_content=False, _request_timeout=request_timeout
                )
            )
            if not (review.get("status") or {}).get("allowed"):
                denied.append(str(access))
        if denied:
            return False, f"service account may not: {', '.join(denied)} (namespace {config.namespace})"
        return True, f"service account may do all {len(config.access)} executor actions"

    probes = [
        Probe("kubernetes_api", site, api_version, timeout),
        Probe("nodes_ready", site, nodes_ready, timeout),
        Probe(
            "gpu_nodes",
            site,
            gpu_nodes if config.expect_gpus else None,
            timeout,
            Scope.GPU,
            "no GPU nodes expected on this cluster",
        ),
        Probe(
            "device_plugin",
            site,
            device_plugin if config.expect_gpus else None,
            timeout,
            Scope.GPU,
            "no GPU nodes expected on this cluster",
        ),
        Probe("default_storage_class", site, storage_class, timeout),
        Probe("namespace", site, namespace, timeout),
        Probe("executor_rbac", site, rbac, timeout),
    ]
    return probes
