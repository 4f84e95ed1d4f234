"""Cluster snapshots for the placement policy, read from a Kubernetes API.

One snapshot costs two list calls: every node, and every non-terminated pod (field selector
``status.phase!=Succeeded,status.phase!=Failed``). Both are read as raw JSON (``_preload_content=False``):
deserializing 5,000 pods into kubernetes-client model objects takes seconds, ``json.loads`` plus the few
fields the policy needs takes milliseconds (see benchmarks/placement_decision.py).

An API that does not answer (connection refused, timeout, 5xx) gives an *unreachable* snapshot carrying
the error, never an exception: unreachability is an input of the policy, not a crash.
"""

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.rest import ApiException

from astromined.placement.policy import ClusterSnapshot, NodeSnapshot, PendingPod, Resources, Site, Taint
from astromined.placement.quantities import GPU_RESOURCE, QuantityError, cpu_millis, memory_bytes, whole_units

log = logging.getLogger(__name__)

# Pod label the executor puts on its step pods: the placement id (the Kubernetes Job name).
PLACEMENT_ID_LABEL = "astromined.io/placement-id"
NON_TERMINATED = "status.phase!=Succeeded,status.phase!=Failed"
# (connect, read) seconds: an API that does not answer within these counts as unreachable.
DEFAULT_REQUEST_TIMEOUT = (3.0, 20.0)

_UNREACHABLE_ERRORS = (urllib3.exceptions.HTTPError, OSError, TimeoutError)


def load_api_client(
    kubeconfig_file: str | None, context: str | None, api_client_class: type = kubernetes.client.ApiClient
) -> kubernetes.client.ApiClient:
    """An API client for one kubeconfig context, without touching the process-wide default configuration
    (two clusters are in play: ``load_kube_config`` without ``client_configuration`` would make the last
    one loaded the default for every client)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=kubeconfig_file, context=context, client_configuration=configuration, persist_config=False
    )
    # Fail over fast: the policy retries on the next decision, urllib3's own retries only add latency.
    configuration.retries = 1
    return api_client_class(configuration=configuration)


def describe_api_error(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}".strip()
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


def is_unreachable_error(error: BaseException) -> bool:
    """Errors that mean 'the API is not there right now' (as opposed to 'the request is wrong')."""
    if isinstance(error, ApiException):
        return error.status in (0, 408, 429, 500, 502, 503, 504) or error.status is None
    return isinstance(error, _UNREACHABLE_ERRORS)


def read_json(response) -> dict[str, Any]:
    """The JSON body of a ``_preload_content=False`` response. The body is read to the end before the
    connection goes back to the pool: a connection returned with an unread body breaks the next request
    sent on it (http.client ``ResponseNotReady``)."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def _list_json(call, **kwargs) -> dict[str, Any]:
    timeout = kwargs.pop("timeout", DEFAULT_REQUEST_TIMEOUT)
    return read_json(call(_preload_content=False, _request_timeout=timeout, **kwargs))


def probe(
    core_api: kubernetes.client.CoreV1Api,
    cluster: str,
    site: Site,
    namespace: str,
    timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
) -> ClusterSnapshot:
    """Reachability only: one cheap read of the namespace the step jobs go to."""
    try:
        read_json(core_api.read_namespace(namespace, _preload_content=False, _request_timeout=timeout))
    except ApiException as error:
        if error.status == 404:
            # The API answers; the job creation will name the missing namespace.
            return ClusterSnapshot.reachable_only(cluster, site)
        if not is_unreachable_error(error):
            raise
        return ClusterSnapshot.unreachable(cluster, site, describe_api_error(error))
    except _UNREACHABLE_ERRORS as error:
        return ClusterSnapshot.unreachable(cluster, site, describe_api_error(error))
    return ClusterSnapshot.reachable_only(cluster, site)


def take_snapshot(
    core_api: kubernetes.client.CoreV1Api,
    cluster: str,
    site: Site,
    timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
    node_selector: Mapping[str, str] | None = None,
) -> ClusterSnapshot:
    """Nodes with their free capacity, pods waiting for a node, and which executor pods are visible.

    ``node_selector`` (the site's GPU node labels) lets the API server return only those nodes, and only
    the pods bound to them are then added up: a GPU decision does not need the CPU nodes."""
    label_selector = ",".join(f"{k}={v}" for k, v in sorted((node_selector or {}).items())) or None
    try:
        nodes = _list_json(core_api.list_node, label_selector=label_selector, timeout=timeout)
        pods = _list_json(
            core_api.list_pod_for_all_namespaces, field_selector=NON_TERMINATED, timeout=timeout
        )
    except ApiException as error:
        if not is_unreachable_error(error):
            raise
        return ClusterSnapshot.unreachable(cluster, site, describe_api_error(error))
    except _UNREACHABLE_ERRORS as error:
        return ClusterSnapshot.unreachable(cluster, site, describe_api_error(error))
    return snapshot_from_lists(cluster, site, nodes.get("items") or [], pods.get("items") or [])


@dataclasses.dataclass(frozen=True)
class PodRecord:
    """What the policy needs of one non-terminated pod."""

    name: str
    node_name: str | None
    requests: Resources
    placement_id: str | None


def pod_record(item: Mapping[str, Any], cluster: str, *, count_requests: bool = True) -> PodRecord | None:
    """The record of one pod's JSON, or None for a terminated pod (its requests no longer count). With
    ``count_requests=False`` its requests are not read (nor checked) and recorded as nothing."""
    metadata = item.get("metadata") or {}
    if (item.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    spec = item.get("spec") or {}
    where = f"pod {metadata.get('namespace')}/{metadata.get('name')} on {cluster}"
    return PodRecord(
        name=str(metadata.get("name")),
        node_name=spec.get("nodeName") or None,
        requests=pod_requests(spec, where) if count_requests else Resources(),
        placement_id=(metadata.get("labels") or {}).get(PLACEMENT_ID_LABEL),
    )


def snapshot_from_lists(
    cluster: str, site: Site, node_items: Sequence[Mapping[str, Any]], pod_items: Sequence[Mapping[str, Any]]
) -> ClusterSnapshot:
    """A snapshot from the JSON items of ``list_node`` and ``list_pod_for_all_namespaces``. Requests are
    added up for the pods bound to the listed nodes and for pods not bound yet; other pods only count as
    seen (their node is not a candidate)."""
    node_names = {(item.get("metadata") or {}).get("name") for item in node_items}
    records = [record for pod in pod_items if (record := _listed_pod(pod, cluster, node_names))]
    nodes = [node_from_json(item, cluster) for item in node_items]
    return snapshot_from_records(cluster, site, nodes, records)


def _listed_pod(item: Mapping[str, Any], cluster: str, node_names: set) -> PodRecord | None:
    """Pods bound to nodes outside the listing only count as seen: their requests are not read."""
    node_name = (item.get("spec") or {}).get("nodeName")
    return pod_record(item, cluster, count_requests=not node_name or node_name in node_names)


def snapshot_from_records(
    cluster: str, site: Site, nodes: Iterable[NodeSnapshot], pods: Iterable[PodRecord]
) -> ClusterSnapshot:
    """A snapshot from nodes (their ``requested`` ignored) and the non-terminated pods: requests are added up
    per listed node, unbound pods are pending, pods on other nodes only count as seen."""
    nodes = list(nodes)
    node_names = {node.name for node in nodes}
    requested: dict[str, Resources] = {}
    pending: list[PendingPod] = []
    bound_ids: set[str] = set()
    seen_ids: set[str] = set()
    for pod in pods:
        if pod.placement_id:
            seen_ids.add(pod.placement_id)
            if pod.node_name:
                bound_ids.add(pod.placement_id)
        if pod.node_name is None:
            pending.append(PendingPod(pod.name, pod.requests, pod.placement_id))
        elif pod.node_name in node_names:
            requested[pod.node_name] = requested.get(pod.node_name, Resources()) + pod.requests
    return ClusterSnapshot(
        cluster=cluster,
        site=site,
        reachable=True,
        nodes=tuple(
            sorted(
                (dataclasses.replace(n, requested=requested.get(n.name, Resources())) for n in nodes),
                key=lambda n: n.name,
            )
        ),
        pending=tuple(pending),
        bound_placement_ids=frozenset(bound_ids),
        seen_placement_ids=frozenset(seen_ids),
    )


def node_from_json(item: Mapping[str, Any], cluster: str) -> NodeSnapshot:
    """A node's snapshot from its JSON, with nothing requested yet."""
    metadata = item.get("metadata") or {}
    name = str(metadata.get("name"))
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    allocatable = status.get("allocatable") or {}
    where = f"node {name} on {cluster}"
    try:
        capacity = Resources(
            cpu_millis(allocatable.get("cpu", 0)),
            memory_bytes(allocatable.get("memory", 0)),
            whole_units(allocatable.get(GPU_RESOURCE, 0)),
        )
    except QuantityError as error:
        raise QuantityError(f"{where}: status.allocatable: {error}") from None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("effect", "")), str(t.get("value", "") or ""))
        for t in spec.get("taints") or []
    )
    return NodeSnapshot(
        name=name,
        labels=dict(metadata.get("labels") or {}),
        taints=taints,
        allocatable=capacity,
        requested=Resources(),
        ready=ready,
        schedulable=not spec.get("unschedulable", False),
    )


def pod_requests(spec: Mapping[str, Any], where: str = "pod") -> Resources:
    """What the scheduler counts for a pod: the larger of the app containers' sum and the largest init
    container, per resource. A container without a request but with a limit requests its limit
    (Kubernetes defaulting; always so for extended resources such as nvidia.com/gpu)."""
    try:
        app = sum((_container_requests(c) for c in spec.get("containers") or []), Resources())
        init = [_container_requests(c) for c in spec.get("initContainers") or []]
    except QuantityError as error:
        raise QuantityError(f"{where}: {error}") from None
    overhead = spec.get("overhead") or {}
    return Resources(
        max([app.cpu_millis, *(i.cpu_millis for i in init)]) + cpu_millis(overhead.get("cpu", 0)),
        max([app.memory_bytes, *(i.memory_bytes for i in init)]) + memory_bytes(overhead.get("memory", 0)),
        max([app.gpus, *(i.gpus for i in init)]),
    )


def _container_requests(container: Mapping[str, Any]) -> Resources:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}

    def value(key: str):
        return requests.get(key, limits.get(key, 0))

    return Resources(
        cpu_millis(value("cpu")), memory_bytes(value("memory")), whole_units(value(GPU_RESOURCE))
    )
