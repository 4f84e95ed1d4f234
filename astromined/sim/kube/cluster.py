"""One simulated Kubernetes cluster: the object store, scheduler loop, job controller and kubelet, behind the
HTTP API of `astromined.sim.kube.server`.

All state lives in plain dicts (the JSON the API returns) guarded by one lock; each object's serialised JSON
is cached until the object changes, so listing thousands of pods costs a join, not a re-encode. A single
controller thread reacts to changes (new pods, freed capacity, node changes, exits) and to timers (image pull
delay, job backoff, termination grace, TTL). Container processes report their exit from their own threads.
"""

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.process import (
    ContainerProcess,
    PodLog,
    container_argv,
    container_env,
    default_base_env,
)
from astromined.sim.kube.quantity import to_units
from astromined.sim.kube.scheduler import NodeView, pod_requests, schedule
from astromined.sim.kube.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from astromined.sim.kube.spec import ClusterSpec
from astromined.sim.kube.watch import Change, ChangeLog, WatchRequest, WatchStream

NO_RUN_ANNOTATION = "sim.astromined.io/run"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_EVENTS = 20_000
# Changes kept for watches that resume from a resourceVersion; older ones answer 410 Expired.
WATCH_LOG_SIZE = 100_000


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    group: str
    namespaced: bool


KINDS = {
    "namespaces": Kind("Namespace", "v1", "", False),
    "nodes": Kind("Node", "v1", "", False),
    "pods": Kind("Pod", "v1", "", True),
    "events": Kind("Event", "v1", "", True),
    "jobs": Kind("Job", "batch/v1", "batch", True),
    "daemonsets": Kind("DaemonSet", "apps/v1", "apps", True),
    "storageclasses": Kind("StorageClass", "storage.k8s.io/v1", "storage.k8s.io", False),
}
# The node labels the simulated NVIDIA device plugin DaemonSet selects (GPU nodes, as in infra/sim/).
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
Key = tuple[str, str]


@dataclass
class PodRuntime:
    requests: dict[str, int]
    run: bool
    node: str | None = None  # node whose capacity this pod holds (bound and not terminated)
    start_at: float | None = None
    process: ContainerProcess | None = None
    restart_at: float | None = None
    kill_at: float | None = None
    deleting: bool = False
    log: PodLog = field(default_factory=PodLog)
    started_at: str | None = None


@dataclass
class JobRuntime:
    next_create_at: float = 0.0
    seen_failed: int = 0
    failed_gone: int = 0  # pods deleted while running count as failed, as in Kubernetes
    finished_at: float | None = None
    started: float = field(default_factory=time.monotonic)


class SimulatedCluster:
    """A Kubernetes control plane plus kubelets, in-process. See `docs/kubernetes-simulator.md`."""

    def __init__(
        self,
        spec: ClusterSpec,
        base_env: Mapping[str, str] | None = None,
        workdir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        job_backoff_seconds: float = 1.0,
        max_grace_seconds: float = 10.0,
        restart_backoff_seconds: float = 1.0,
        watch_bookmark_interval_s: float = 1.0,
        watch_log_size: int = WATCH_LOG_SIZE,
    ):
        self.spec = spec
        self.name, self.site = spec.name, spec.site
        self.base_env = dict(base_env) if base_env is not None else default_base_env()
        self.workdir = str(Path(workdir) if workdir is not None else Path.cwd())
        self.image_pull_seconds = spec.image_pull_seconds
        self.job_backoff_seconds = job_backoff_seconds
        self.max_grace_seconds = max_grace_seconds
        self.restart_backoff_seconds = restart_backoff_seconds
        self.lock = threading.RLock()
        self.api_latency = 0.0
        self._host, self._port = host, port
        self._rv = 0
        self._changes = ChangeLog(watch_log_size)
        self.watch_bookmark_interval_s = watch_bookmark_interval_s
        self.watch_forbidden = False
        # SelfSubjectAccessReview answers: "verb resource[/subresource]" entries (or "*") that are denied.
        self.denied_access: frozenset[str] = frozenset()
        self._available_cap: int | None = None  # set_device_plugin(available=...)
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._json: dict[str, dict[Key, bytes]] = {kind: {} for kind in KINDS}
        # (label key, value) → object keys, for the equality selectors dagster-k8s uses (job-name=...).
        self._label_index: dict[str, dict[tuple[str, str], set[Key]]] = {kind: {} for kind in KINDS}
        self._sorted_keys: dict[str, list[Key] | None] = {kind: None for kind in KINDS}
        # spec.nodeName index (a terminated pod keeps its node, as the field does) and status.phase index.
        self._pods_on_node: dict[str, set[Key]] = {}
        self._pod_phase: dict[Key, str] = {}
        self._pods: dict[Key, PodRuntime] = {}
        self._jobs: dict[Key, JobRuntime] = {}
        self._job_pods: dict[str, set[Key]] = {}  # job uid → pod keys
        self._views: dict[str, NodeView] = {}
        self._pending: dict[Key, None] = {}
        self._schedule_needed = False
        self._dirty_jobs: set[Key] = set()
        self._event_seq = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._controller: threading.Thread | None = None
        self._server = None
        self._pod_ip = 0
        for index, node_spec in enumerate(spec.nodes):
            node = o.node_object(node_spec, index + 1, spec.kubernetes_version, spec.site)
            self._put("nodes", node)
            self._views[node_spec.name] = NodeView(node, _units(node["status"]["allocatable"]))
            if not node_spec.ready:
                self._apply_not_ready_taint(node, True)
        for namespace in SYSTEM_NAMESPACES:
            self._put("namespaces", o.namespace_object(namespace))
        self._put("storageclasses", o.storage_class_object(o.DEFAULT_STORAGE_CLASS, default=True))
        if any(_units(n["status"]["allocatable"]).get("nvidia.com/gpu", 0) for n in self.nodes()):
            self._put(
                "daemonsets",
                o.daemonset_object(o.DEVICE_PLUGIN_NAME, o.DEVICE_PLUGIN_NAMESPACE, GPU_NODE_SELECTOR),
            )
            self._sync_daemonsets()

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> "SimulatedCluster":
        from astromined.sim.kube.server import ApiServer

        if self._server is not None:
            return self
        self._stopped.clear()
        self._controller = threading.Thread(target=self._control_loop, name=f"sim-{self.name}", daemon=True)
        self._controller.start()
        self._server = ApiServer(self, self._host, self._port)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._stopped.set()
        self._wake.set()
        if self._controller is not None:
            self._controller.join(timeout=5)
            self._controller = None
        with self.lock:
            processes = [rt.process for rt in self._pods.values() if rt.process is not None]
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 3
        for process in processes:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                process.kill()

    def __enter__(self) -> "SimulatedCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"cluster {self.name!r} is not started")
        return f"http://{self._host}:{self._server.port}"

    # --- fault switches -------------------------------------------------------------------------------------

    def set_api_down(self, down: bool) -> None:
        """Stop listening (clients get connection refused, open connections are closed) or listen again on the
        same port."""
        if self._server is None:
            raise RuntimeError(f"cluster {self.name!r} is not started")
        if down:
            self._server.stop_listening()
        else:
            self._server.start_listening()

    def set_api_latency(self, seconds: float) -> None:
        """Add a fixed delay before every API request is answered."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.api_latency = float(seconds)

    def set_watch_forbidden(self, forbidden: bool) -> None:
        """Answer every ``?watch=true`` with 403 Forbidden, as for a service account whose RBAC role lacks
        the ``watch`` verb."""
        self.watch_forbidden = bool(forbidden)

    def set_access_denied(self, denied: Iterable[str]) -> None:
        """RBAC fault: SelfSubjectAccessReviews for these "verb resource[/subresource]" entries (``"*"``: all)
        answer ``allowed: false``. The switch changes only the reviews, not what the API lets through."""
        self.denied_access = frozenset(denied)

    def set_device_plugin(self, present: bool, available: int | None = None) -> None:
        """Install or remove the NVIDIA device plugin DaemonSet (kube-system). ``available`` caps
        ``status.numberAvailable`` (a crash-looping plugin);
        None: one available pod per Ready GPU node."""
        with self.lock:
            key = (o.DEVICE_PLUGIN_NAMESPACE, o.DEVICE_PLUGIN_NAME)
            if not present:
                self._remove("daemonsets", key)
                return
            if key not in self._objects["daemonsets"]:
                self._put(
                    "daemonsets",
                    o.daemonset_object(o.DEVICE_PLUGIN_NAME, o.DEVICE_PLUGIN_NAMESPACE, GPU_NODE_SELECTOR),
                )
            self._available_cap = available
            self._sync_daemonsets()

    def _sync_daemonsets(self) -> None:
        """DaemonSet status from the nodes they select: desired = matching nodes, available = Ready ones."""
        cap = self._available_cap
        for daemonset in self._objects["daemonsets"].values():
            selector = daemonset["spec"]["template"]["spec"].get("nodeSelector") or {}
            nodes = [
                n
                for n in self._objects["nodes"].values()
                if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            ]
            ready = sum(
                1
                for n in nodes
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            )
            available = ready if cap is None else min(ready, cap)
            status = daemonset["status"]
            new = {
                "desiredNumberScheduled": len(nodes),
                "currentNumberScheduled": len(nodes),
                "updatedNumberScheduled": len(nodes),
                "numberReady": available,
                "numberAvailable": available,
            }
            if len(nodes) - available:
                new["numberUnavailable"] = len(nodes) - available
            else:
                status.pop("numberUnavailable", None)
            if any(status.get(k) != v for k, v in new.items()):
                status.update(new)
                self._touch("daemonsets", daemonset)

    def api_access_review(self, body: Any) -> bytes:
        spec = body.get("spec") if isinstance(body, Mapping) else None
        attributes = (spec or {}).get("resourceAttributes") or {} if isinstance(spec, Mapping) else {}
        resource = attributes.get("resource", "")
        if attributes.get("subresource"):
            resource += "/" + attributes["subresource"]
        entry = f"{attributes.get('verb', '')} {resource}"
        denied = "*" in self.denied_access or entry in self.denied_access
        reason = "simulated RBAC: denied by the fault switch" if denied else "simulated RBAC: allowed"
        return json.dumps(o.access_review(body, allowed=not denied, reason=reason)).encode()

    def set_image_pull_delay(self, seconds: float) -> None:
        """How long a bound pod stays Pending in ContainerCreating before its process starts."""
        self.image_pull_seconds = float(seconds)

    def set_node_ready(self, node_name: str, ready: bool) -> None:
        """Flip a node's Ready condition. A NotReady node carries the
        `node.kubernetes.io/not-ready:NoSchedule` taint, so nothing new is scheduled there; pods bound to it
        whose process has not started yet are unbound
        and go back to Pending (Unschedulable if nothing else fits); running processes keep running."""
        with self.lock:
            node = self._objects["nodes"].get(("", node_name))
            if node is None:
                raise KeyError(f"cluster {self.name!r} has no node {node_name!r}")
            stamp = o.now()
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready" and (condition["status"] == "True") != ready:
                    condition.update(
                        status="True" if ready else "False",
                        reason="KubeletReady" if ready else "KubeletNotReady",
                        message="kubelet is posting ready status"
                        if ready
                        else "simulated: node marked NotReady",
                        lastTransitionTime=stamp,
                        lastHeartbeatTime=stamp,
                    )
            self._apply_not_ready_taint(node, not ready)
            self._touch("nodes", node)
            self._sync_daemonsets()
            self._event(
                node,
                "Normal",
                "NodeReady" if ready else "NodeNotReady",
                f"Node {node_name} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
                "node-controller",
            )
            if not ready:
                for key, rt in list(self._pods.items()):
                    if rt.node == node_name and rt.start_at is not None and rt.process is None:
                        self._unbind(key, f"node {node_name} became NotReady before the container started")
            self._schedule_needed = True
        self._wake.set()

    def _apply_not_ready_taint(self, node: dict[str, Any], not_ready: bool) -> None:
        taints = [t for t in node["spec"].get("taints") or [] if t["key"] != o.NOT_READY_TAINT_KEY]
        if not_ready:
            taints.append({"key": o.NOT_READY_TAINT_KEY, "effect": "NoSchedule", "timeAdded": o.now()})
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)

    # --- test and benchmark helpers -------------------------------------------------------------------------

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """A snapshot (deep copy) of pod objects, optionally of one namespace."""
        return self._snapshot("pods", namespace)

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self._snapshot("jobs", namespace)

    def nodes(self) -> list[dict[str, Any]]:
        return self._snapshot("nodes", None)

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self._snapshot("events", namespace)

    def _snapshot(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        with self.lock:
            items = [
                self._item_json(kind, key)
                for key in sorted(self._objects[kind])
                if namespace in (None, key[0])
            ]
        return [json.loads(item) for item in items]

    def container_pid(self, namespace: str, pod_name: str) -> int | None:
        """The pid of the pod's running container process, if any."""
        with self.lock:
            rt = self._pods.get((namespace, pod_name))
            return (
                rt.process.pid if rt is not None and rt.process is not None and rt.process.running() else None
            )

    def wait_for(self, predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
        """Poll `predicate()` until it returns something truthy (returned) or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cluster {self.name!r}: condition not met within {timeout} s")
            time.sleep(interval)

    def add_bound_pods(self, pods: Iterable[Mapping[str, Any]]) -> int:
        """Insert pods already bound to nodes (`spec.nodeName`) that sit Running without a process and hold
        their requests, to build a busy cluster for benchmarks. Returns how many were added."""
        count = 0
        with self.lock:
            for body in pods:
                namespace = (body.get("metadata") or {}).get("namespace") or "default"
                self._require_namespace(namespace)
                pod = o.admit_pod(body, namespace)
                pod["metadata"]["annotations"][NO_RUN_ANNOTATION] = "false"
                node = pod["spec"].get("nodeName")
                if node not in self._views:
                    raise ValueError(
                        f"pod {pod['metadata']['name']!r}: spec.nodeName {node!r} "
                        f"is not a node of {self.name}"
                    )
                self._admit_pod_object(pod)
                count += 1
        self._wake.set()
        return count

    # --- store ----------------------------------------------------------------------------------------------

    def _put(self, kind: str, obj: dict[str, Any]) -> None:
        """Insert a new object. Labels are indexed here: the simulator never changes labels afterwards."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        created = key not in self._objects[kind]
        if not created:
            self._unindex(kind, key)
        self._objects[kind][key] = obj
        self._sorted_keys[kind] = None
        index = self._label_index[kind]
        for label in (meta.get("labels") or {}).items():
            index.setdefault(label, set()).add(key)
        self._touch(kind, obj, created=created)

    def _unindex(self, kind: str, key: Key) -> None:
        index = self._label_index[kind]
        for label in (self._objects[kind][key]["metadata"].get("labels") or {}).items():
            keys = index.get(label)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[label]

    def _touch(self, kind: str, obj: dict[str, Any], *, created: bool = False) -> None:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        key = (meta.get("namespace", ""), meta["name"])
        self._json[kind].pop(key, None)
        if kind == "pods":
            self._pod_phase[key] = (obj.get("status") or {}).get("phase", "")
        self._changes.append(Change(self._rv, kind, key, created=created))

    def _remove(self, kind: str, key: Key) -> dict[str, Any] | None:
        self._json[kind].pop(key, None)
        self._rv += 1
        if key not in self._objects[kind]:
            return None
        self._unindex(kind, key)
        self._sorted_keys[kind] = None
        if kind == "pods":
            self._pod_phase.pop(key, None)
        removed = self._objects[kind].pop(key)
        self._changes.append(Change(self._rv, kind, key, removed))
        return removed

    def _candidates(self, kind: str, namespace: str | None, labels: tuple, fields: tuple) -> list[Key]:
        """Keys that may match, in (namespace, name) order: narrowed by a metadata.name field or a label
        equality/set requirement through the indexes, else every key."""
        for requirement in fields:
            if requirement.field == "metadata.name" and not requirement.negate:
                store = self._objects[kind]
                if namespace is not None or not KINDS[kind].namespaced:
                    key = (namespace or "", requirement.value)
                    return [key] if key in store else []
                return sorted(k for k in store if k[1] == requirement.value)
        for requirement in fields:
            if kind == "pods" and requirement.field == "spec.nodeName" and not requirement.negate:
                return sorted(self._pods_on_node.get(requirement.value, ()))
        for requirement in labels:
            if requirement.operator in ("=", "in"):
                index = self._label_index[kind]
                found: set[Key] = set()
                for value in requirement.values:
                    found |= index.get((requirement.key, value), set())
                return sorted(found)
        keys = self._sorted_keys[kind]
        if keys is None:
            keys = self._sorted_keys[kind] = sorted(self._objects[kind])
        return keys

    def _item_json(self, kind: str, key: Key) -> bytes:
        cached = self._json[kind].get(key)
        if cached is None:
            cached = json.dumps(self._objects[kind][key], separators=(",", ":")).encode()
            self._json[kind][key] = cached
        return cached

    def _with_kind(self, kind: str, item: bytes) -> bytes:
        meta = KINDS[kind]
        return f'{{"kind":"{meta.kind}","apiVersion":"{meta.api_version}",'.encode() + item[1:]

    def _require_namespace(self, namespace: str) -> None:
        if ("", namespace) not in self._objects["namespaces"]:
            raise o.not_found("namespaces", namespace)

    # --- API operations (called by the HTTP server) ---------------------------------------------------------

    def api_watch(
        self, kind: str, namespace: str | None, query: Mapping[str, str], is_open: Callable[[], bool]
    ) -> WatchStream:
        """``?watch=true``: see `astromined.sim.kube.watch`. ``is_open`` tells the stream whether its HTTP
        connection may go on (the API-down switch)."""
        if self.watch_forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            raise o.ApiError(
                403,
                "Forbidden",
                f'{kind} is forbidden: User "system:serviceaccount:dagster:astromined" cannot watch resource '
                f'"{kind}" in API group "{KINDS[kind].group}" {scope}',
            )
        request = WatchRequest.from_query(kind, namespace, query)
        if namespace is not None and KINDS[kind].namespaced:
            with self.lock:
                self._require_namespace(namespace)
        return WatchStream(
            self,
            request,
            self.watch_bookmark_interval_s,
            lambda: is_open() and not self._stopped.is_set(),
        )

    # The store as `WatchStream` reads it (under `self.lock`, except `wait_for_change`).

    @property
    def resource_version(self) -> int:
        return self._rv

    def kind_info(self, kind: str) -> Kind:
        return KINDS[kind]

    def watch_keys(self, kind: str) -> list[Key]:
        return self._candidates(kind, None, (), ())

    def watch_object(self, kind: str, key: Key) -> dict[str, Any] | None:
        return self._objects[kind].get(key)

    def watch_json(self, kind: str, key: Key) -> bytes:
        return self._with_kind(kind, self._item_json(kind, key))

    def watch_json_of(self, kind: str, obj: Mapping[str, Any]) -> bytes:
        return self._with_kind(kind, json.dumps(obj, separators=(",", ":")).encode())

    def changes_after(self, resource_version: int) -> list[Change]:
        return self._changes.after(resource_version)

    def wait_for_change(self, resource_version: int, timeout: float) -> None:
        condition = self._changes.condition
        with condition:
            condition.wait_for(lambda: self._rv > resource_version, timeout=max(0.0, timeout))

    def api_list(self, kind: str, namespace: str | None, query: Mapping[str, str]) -> bytes:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), kind)
        limit = int(query["limit"]) if query.get("limit") else 0
        offset = _decode_continue(query.get("continue"))
        with self.lock:
            if namespace is not None and KINDS[kind].namespaced:
                self._require_namespace(namespace)
            matched = []
            store = self._objects[kind]
            phases = [f for f in fields if f.field == "status.phase"] if kind == "pods" else []
            if phases:
                fields = tuple(f for f in fields if f.field != "status.phase")
            for key in self._candidates(kind, namespace, labels, fields):
                if namespace is not None and key[0] != namespace:
                    continue
                if phases:
                    phase = self._pod_phase.get(key, "")
                    if not all((phase == f.value) != f.negate for f in phases):
                        continue
                obj = store[key]
                if labels and not labels_match(labels, obj["metadata"].get("labels")):
                    continue
                if fields and not fields_match(fields, obj, kind):
                    continue
                matched.append(key)
            page = matched[offset : offset + limit] if limit else matched[offset:]
            items = [self._item_json(kind, key) for key in page]
            rv = self._rv
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and offset + limit < len(matched):
            meta["continue"] = _encode_continue(offset + limit)
            meta["remainingItemCount"] = len(matched) - offset - limit
        info = KINDS[kind]
        head = (
            f'{{"kind":"{info.kind}List","apiVersion":"{info.api_version}",'
            f'"metadata":{json.dumps(meta)},"items":['
        )
        return head.encode() + b",".join(items) + b"]}"

    def api_get(self, kind: str, namespace: str | None, name: str) -> bytes:
        with self.lock:
            key = (namespace or "", name)
            if key not in self._objects[kind]:
                raise o.not_found(kind, name, KINDS[kind].group)
            return self._with_kind(kind, self._item_json(kind, key))

    def api_create(self, kind: str, namespace: str | None, body: Any) -> bytes:
        with self.lock:
            if kind == "namespaces":
                obj = o.admit_namespace(body)
                key = ("", obj["metadata"]["name"])
                if key in self._objects[kind]:
                    raise o.already_exists(kind, key[1])
                self._put(kind, obj)
            elif kind == "pods":
                assert namespace is not None
                self._require_namespace(namespace)
                obj = o.admit_pod(body, namespace)
                if obj["spec"].get("nodeName") and obj["spec"]["nodeName"] not in self._views:
                    errors = o.Invalid("Pod", obj["metadata"]["name"])
                    errors.invalid("spec.nodeName", obj["spec"]["nodeName"], "no such node")
                    errors.raise_if_any()
                if (namespace, obj["metadata"]["name"]) in self._objects["pods"]:
                    raise o.already_exists("pods", obj["metadata"]["name"])
                self._admit_pod_object(obj)
            elif kind == "jobs":
                assert namespace is not None
                self._require_namespace(namespace)
                obj = o.admit_job(body, namespace)
                if (namespace, obj["metadata"]["name"]) in self._objects["jobs"]:
                    raise o.already_exists("jobs", obj["metadata"]["name"], "batch")
                self._put("jobs", obj)
                self._jobs[(namespace, obj["metadata"]["name"])] = JobRuntime()
                self._job_pods[obj["metadata"]["uid"]] = set()
                self._dirty_jobs.add((namespace, obj["metadata"]["name"]))
            else:
                raise o.ApiError(405, "MethodNotAllowed", f"the simulator does not allow creating {kind}")
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            result = self._with_kind(kind, self._item_json(kind, key))
        self._wake.set()
        return result

    def api_delete(self, kind: str, namespace: str | None, name: str, options: Mapping[str, Any]) -> bytes:
        with self.lock:
            key = (namespace or "", name)
            obj = self._objects[kind].get(key)
            if obj is None:
                raise o.not_found(kind, name, KINDS[kind].group)
            grace = options.get("gracePeriodSeconds")
            if kind == "pods":
                result = self._delete_pod(key, None if grace is None else int(grace))
            elif kind == "jobs":
                policy = options.get("propagationPolicy") or (
                    "Orphan" if options.get("orphanDependents") in (True, "true") else None
                )
                self._delete_job(key, policy or "Orphan", None if grace is None else int(grace))
                result = json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": "batch",
                            "kind": "jobs",
                            "uid": obj["metadata"]["uid"],
                        },
                    }
                ).encode()
            elif kind == "namespaces":
                if name in SYSTEM_NAMESPACES:
                    raise o.ApiError(
                        403,
                        "Forbidden",
                        f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    )
                for job_key in [k for k in self._objects["jobs"] if k[0] == name]:
                    self._delete_job(job_key, "Background", None)
                for pod_key in [k for k in self._objects["pods"] if k[0] == name]:
                    self._delete_pod(pod_key, None)
                for event_key in [k for k in self._objects["events"] if k[0] == name]:
                    self._remove("events", event_key)
                obj["status"]["phase"] = "Terminating"
                obj["metadata"]["deletionTimestamp"] = o.now()
                result = self._with_kind(kind, json.dumps(obj).encode())
                self._remove("namespaces", key)
            else:
                raise o.ApiError(405, "MethodNotAllowed", f"the simulator does not allow deleting {kind}")
        self._wake.set()
        return result

    def api_log(self, namespace: str, name: str, query: Mapping[str, str]) -> bytes:
        with self.lock:
            pod = self._objects["pods"].get((namespace, name))
            if pod is None:
                raise o.not_found("pods", name)
            containers = [c["name"] for c in pod["spec"]["containers"]]
            container = query.get("container") or containers[0]
            if container not in containers:
                if len(containers) > 1 and not query.get("container"):
                    raise o.bad_request(
                        f"a container name must be specified for pod {name}, choose one of: {containers}"
                    )
                raise o.bad_request(f"container {container} is not valid for pod {name}")
            rt = self._pods[(namespace, name)]
            if container == containers[0] and rt.started_at is None:
                reason = "ContainerCreating" if pod["spec"].get("nodeName") else "Pending"
                raise o.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
            log = rt.log if container == containers[0] else PodLog()
        return log.render(
            tail_lines=int(query["tailLines"]) if query.get("tailLines") else None,
            timestamps=query.get("timestamps") in ("true", "1", "True"),
            limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None,
            since_seconds=int(query["sinceSeconds"]) if query.get("sinceSeconds") else None,
        )

    # --- pods -----------------------------------------------------------------------------------------------

    def _admit_pod_object(self, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        run = (pod["metadata"].get("annotations") or {}).get(NO_RUN_ANNOTATION) != "false"
        rt = PodRuntime(requests=pod_requests(pod["spec"]), run=run)
        self._pods[key] = rt
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Job" and owner.get("uid") in self._job_pods:
                self._job_pods[owner["uid"]].add(key)
        self._put("pods", pod)
        node = pod["spec"].get("nodeName")
        if node:
            self._bind(key, node, scheduled_by_us=False)
        else:
            self._pending[key] = None
            self._schedule_needed = True

    def _bind(self, key: Key, node_name: str, *, scheduled_by_us: bool) -> None:
        pod, rt = self._objects["pods"][key], self._pods[key]
        view = self._views[node_name]
        rt.node = node_name
        self._pods_on_node.setdefault(node_name, set()).add(key)
        view.pod_count += 1
        for resource, amount in rt.requests.items():
            view.used[resource] = view.used.get(resource, 0) + amount
        self._pending.pop(key, None)
        stamp = o.now()
        pod["spec"]["nodeName"] = node_name
        status = pod["status"]
        status["conditions"] = [_condition("PodScheduled", "True", stamp)]
        status["hostIP"] = _node_ip(view.node)
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status.pop("message", None)
        status.pop("reason", None)
        status["startTime"] = stamp
        status["containerStatuses"] = [
            _waiting_status(container, "ContainerCreating") for container in pod["spec"]["containers"]
        ]
        if scheduled_by_us:
            self._event(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {key[0]}/{key[1]} to {node_name}",
                "default-scheduler",
            )
        if rt.run:
            rt.start_at = time.monotonic() + self.image_pull_seconds
        else:
            self._mark_running(key, process=None)
        self._touch("pods", pod)

    def _release(self, key: Key) -> None:
        rt = self._pods.get(key)
        if rt is None or rt.node is None:
            return
        view = self._views.get(rt.node)
        if view is not None:
            view.pod_count -= 1
            for resource, amount in rt.requests.items():
                view.used[resource] = view.used.get(resource, 0) - amount
        rt.node = None
        self._schedule_needed = True

    def _unbind(self, key: Key, why: str) -> None:
        pod, rt = self._objects["pods"][key], self._pods[key]
        self._pods_on_node.get(pod["spec"].get("nodeName", ""), set()).discard(key)
        self._release(key)
        rt.start_at = None
        pod["spec"].pop("nodeName", None)
        status = pod["status"]
        for name in ("hostIP", "hostIPs", "startTime", "containerStatuses", "conditions"):
            status.pop(name, None)
        self._event(pod, "Warning", "NodeNotReady", why, "node-controller")
        self._touch("pods", pod)
        self._pending[key] = None
        self._schedule_needed = True

    def _schedule_pending(self) -> None:
        self._schedule_needed = False
        views = list(self._views.values())
        for key in list(self._pending):
            pod = self._objects["pods"].get(key)
            if pod is None:
                self._pending.pop(key, None)
                continue
            decision = schedule(pod["spec"], views)
            if decision.node is not None:
                self._bind(key, decision.node, scheduled_by_us=True)
                continue
            status = pod["status"]
            current = next((c for c in status.get("conditions") or [] if c["type"] == "PodScheduled"), None)
            if current is None or current.get("message") != decision.message:
                status["phase"] = "Pending"
                # As kube-scheduler: lastTransitionTime changes with the status, not with the message.
                unchanged = current is not None and current.get("status") == "False"
                stamp = current["lastTransitionTime"] if unchanged else o.now()
                status["conditions"] = [
                    {
                        **_condition("PodScheduled", "False", stamp),
                        "reason": "Unschedulable",
                        "message": decision.message,
                    }
                ]
                self._touch("pods", pod)
                self._event(pod, "Warning", "FailedScheduling", decision.message or "", "default-scheduler")

    def _start_due(self, now: float) -> None:
        for key, rt in list(self._pods.items()):
            if rt.start_at is not None and rt.start_at <= now and rt.process is None and not rt.deleting:
                rt.start_at = None
                self._start_container(key)
            elif rt.restart_at is not None and rt.restart_at <= now and not rt.deleting:
                rt.restart_at = None
                self._start_container(key)
            if rt.kill_at is not None and rt.kill_at <= now and rt.process is not None:
                rt.kill_at = None
                rt.process.kill()

    def _start_container(self, key: Key) -> None:
        pod, rt = self._objects["pods"][key], self._pods[key]
        container = pod["spec"]["containers"][0]
        env, warnings = container_env(pod, container, self.base_env)
        for warning in warnings:
            self._event(pod, "Warning", "SimulatorUnresolvedEnv", warning, "kubelet")
        argv = container_argv(container, env)
        if not argv:
            self._container_finished(
                key,
                128,
                "StartError",
                "no command: the simulator has no image ENTRYPOINT; set command or args",
            )
            return
        if rt.started_at is None:
            self._event(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{container["image"]}" already present on machine',
                "kubelet",
            )
        try:
            process = ContainerProcess(
                argv, env, self.workdir, rt.log, lambda code, key=key: self._on_exit(key, code)
            )
        except OSError as error:
            self._container_finished(
                key, 128, "StartError", f"failed to start container process {argv[0]!r}: {error}"
            )
            return
        rt.process = process
        self._event(pod, "Normal", "Created", f"Created container {container['name']}", "kubelet")
        self._event(pod, "Normal", "Started", f"Started container {container['name']}", "kubelet")
        self._mark_running(key, process)
        self._touch("pods", pod)

    def _mark_running(self, key: Key, process: ContainerProcess | None) -> None:
        pod, rt = self._objects["pods"][key], self._pods[key]
        stamp = o.now()
        rt.started_at = rt.started_at or stamp
        self._pod_ip += 1
        status = pod["status"]
        status["phase"] = "Running"
        status.setdefault(
            "podIP",
            f"10.{100 + self._pod_ip // 65536 % 100}.{self._pod_ip // 256 % 256}.{self._pod_ip % 256}",
        )
        status["podIPs"] = [{"ip": status["podIP"]}]
        status["conditions"] = [
            _condition("PodReadyToStartContainers", "True", stamp),
            _condition("Initialized", "True", stamp),
            _condition("Ready", "True", stamp),
            _condition("ContainersReady", "True", stamp),
            _condition("PodScheduled", "True", status.get("startTime", stamp)),
        ]
        statuses = []
        previous = {s["name"]: s for s in status.get("containerStatuses") or []}
        for index, container in enumerate(pod["spec"]["containers"]):
            old = previous.get(container["name"], {})
            entry = _base_status(container, old.get("restartCount", 0))
            entry["lastState"] = old.get("lastState", {})
            if index == 0:
                pid = process.pid if process is not None else 0
                entry.update(
                    ready=True,
                    started=True,
                    containerID=f"sim://{self.name}/{pid}",
                    state={"running": {"startedAt": stamp}},
                )
            else:
                entry.update(
                    containerID=f"sim://{self.name}/none",
                    state={
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": "the simulator runs only the first container",
                            "startedAt": stamp,
                            "finishedAt": stamp,
                        }
                    },
                )
            statuses.append(entry)
        status["containerStatuses"] = statuses

    def _on_exit(self, key: Key, code: int) -> None:
        with self.lock:
            rt = self._pods.get(key)
            if rt is None:
                return
            rt.process = None
            rt.kill_at = None
            reason = "Completed" if code == 0 else "Error"
            self._container_finished(key, code, reason, None)
        self._wake.set()

    def _container_finished(self, key: Key, code: int, reason: str, message: str | None) -> None:
        pod, rt = self._objects["pods"][key], self._pods[key]
        if rt.deleting:
            self._finalize_pod_deletion(key)
            return
        stamp = o.now()
        rt.started_at = rt.started_at or stamp
        status = pod["status"]
        container = pod["spec"]["containers"][0]
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": rt.started_at or stamp,
            "finishedAt": stamp,
            "containerID": (status.get("containerStatuses") or [{}])[0].get(
                "containerID", f"sim://{self.name}/0"
            ),
        }
        if message:
            terminated["message"] = message
        first = dict((status.get("containerStatuses") or [_base_status(container, 0)])[0])
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            first.update(
                restartCount=first.get("restartCount", 0) + 1,
                ready=False,
                started=False,
                lastState={"terminated": terminated},
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off restarting failed container {container['name']}",
                    }
                },
            )
            status["containerStatuses"] = [first, *(status.get("containerStatuses") or [])[1:]]
            rt.restart_at = time.monotonic() + self.restart_backoff_seconds
            self._event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {container['name']}",
                "kubelet",
            )
            self._touch("pods", pod)
            self._dirty_owner(pod)
            return
        first.update(ready=False, started=False, state={"terminated": terminated})
        status["containerStatuses"] = [first, *(status.get("containerStatuses") or [])[1:]]
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        conditions = [
            c for c in status.get("conditions") or [] if c["type"] not in ("Ready", "ContainersReady")
        ]
        for kind in ("Ready", "ContainersReady"):
            conditions.append({**_condition(kind, "False", stamp), "reason": "PodCompleted"})
        status["conditions"] = conditions
        self._release(key)
        self._touch("pods", pod)
        self._dirty_owner(pod)

    def _delete_pod(self, key: Key, grace: int | None) -> bytes:
        pod, rt = self._objects["pods"][key], self._pods[key]
        self._pending.pop(key, None)
        rt.start_at = None
        rt.restart_at = None
        if rt.process is not None and rt.process.running():
            seconds = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            if not rt.deleting:
                rt.deleting = True
                pod["metadata"]["deletionTimestamp"] = o.now()
                pod["metadata"]["deletionGracePeriodSeconds"] = seconds
                self._event(
                    pod,
                    "Normal",
                    "Killing",
                    f"Stopping container {pod['spec']['containers'][0]['name']}",
                    "kubelet",
                )
                self._touch("pods", pod)
                if seconds <= 0:
                    rt.process.kill()
                else:
                    rt.process.terminate()
                    rt.kill_at = time.monotonic() + min(seconds, self.max_grace_seconds)
            return self._with_kind("pods", self._item_json("pods", key))
        pod["metadata"]["deletionTimestamp"] = o.now()
        pod["metadata"]["deletionGracePeriodSeconds"] = 0
        result = self._with_kind("pods", json.dumps(pod, separators=(",", ":")).encode())
        self._finalize_pod_deletion(key)
        return result

    def _finalize_pod_deletion(self, key: Key) -> None:
        pod = self._objects["pods"].get(key)
        if pod is not None:
            self._pods_on_node.get(pod["spec"].get("nodeName", ""), set()).discard(key)
        self._release(key)
        self._pods.pop(key, None)
        self._pending.pop(key, None)
        self._remove("pods", key)
        if pod is not None:
            self._count_deleted_running_pod(pod)
            for owner in pod["metadata"].get("ownerReferences") or []:
                pods = self._job_pods.get(owner.get("uid"))
                if pods is not None:
                    pods.discard(key)
            self._dirty_owner(pod)

    def _dirty_owner(self, pod: Mapping[str, Any]) -> None:
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Job":
                job_key = (pod["metadata"]["namespace"], owner["name"])
                job = self._objects["jobs"].get(job_key)
                if job is not None and job["metadata"]["uid"] == owner.get("uid"):
                    self._dirty_jobs.add(job_key)

    def _count_deleted_running_pod(self, pod: Mapping[str, Any]) -> None:
        if pod["status"].get("phase") != "Running":
            return
        for owner in pod["metadata"].get("ownerReferences") or []:
            runtime = self._jobs.get((pod["metadata"]["namespace"], owner.get("name")))
            if owner.get("kind") == "Job" and runtime is not None and runtime.finished_at is None:
                runtime.failed_gone += 1

    # --- jobs -----------------------------------------------------------------------------------------------

    def _delete_job(self, key: Key, policy: str, grace: int | None) -> None:
        job = self._objects["jobs"][key]
        uid = job["metadata"]["uid"]
        for pod_key in sorted(self._job_pods.pop(uid, set())):
            pod = self._objects["pods"].get(pod_key)
            if pod is None:
                continue
            if policy == "Orphan":
                pod["metadata"]["ownerReferences"] = [
                    ref for ref in pod["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid
                ]
                if not pod["metadata"]["ownerReferences"]:
                    del pod["metadata"]["ownerReferences"]
                self._touch("pods", pod)
            else:
                self._delete_pod(pod_key, grace)
        self._jobs.pop(key, None)
        self._dirty_jobs.discard(key)
        self._remove("jobs", key)

    def _reconcile_job(self, key: Key, now: float) -> None:
        job = self._objects["jobs"].get(key)
        runtime = self._jobs.get(key)
        if job is None or runtime is None:
            return
        spec, status = job["spec"], job["status"]
        if runtime.finished_at is not None:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None and now >= runtime.finished_at + ttl:
                self._delete_job(key, "Background", None)
            return
        pods = [
            self._objects["pods"][k]
            for k in sorted(self._job_pods.get(job["metadata"]["uid"], ()))
            if k in self._objects["pods"]
        ]
        active = [
            p
            for p in pods
            if p["status"]["phase"] in ("Pending", "Running") and "deletionTimestamp" not in p["metadata"]
        ]
        succeeded = sum(1 for p in pods if p["status"]["phase"] == "Succeeded")
        failed_pods = sum(1 for p in pods if p["status"]["phase"] == "Failed")
        restarts = sum(
            s.get("restartCount", 0) for p in pods for s in p["status"].get("containerStatuses") or []
        )
        failed = runtime.failed_gone + failed_pods
        ready = sum(1 for p in active if p["status"]["phase"] == "Running")
        stamp = o.now()
        new_status: dict[str, Any] = {
            "startTime": status.get("startTime", stamp),
            "ready": ready,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        if active:
            new_status["active"] = len(active)
        if succeeded:
            new_status["succeeded"] = succeeded
        if failed:
            new_status["failed"] = failed
        completions, parallelism, backoff = spec["completions"], spec["parallelism"], spec["backoffLimit"]
        deadline = spec.get("activeDeadlineSeconds")
        finished = None
        if succeeded >= completions:
            finished = ("Complete", None, None)
        elif failed + restarts > backoff:
            finished = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and now - runtime.started >= deadline:
            finished = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if finished is not None:
            kind, reason, message = finished
            first = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
            conditions = []
            for condition_type in (first, kind):
                condition = {**_condition(condition_type, "True", stamp), "lastProbeTime": stamp}
                if reason:
                    condition.update(reason=reason, message=message)
                elif condition_type in ("SuccessCriteriaMet", "Complete"):
                    condition.update(
                        reason="CompletionsReached", message="Reached expected number of succeeded pods"
                    )
                conditions.append(condition)
            new_status["conditions"] = conditions
            new_status.pop("active", None)
            new_status["ready"] = 0
            if kind == "Complete":
                new_status["completionTime"] = stamp
            runtime.finished_at = now
            for pod in active:
                self._delete_pod((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
            self._event(
                job,
                "Normal" if kind == "Complete" else "Warning",
                "Completed" if kind == "Complete" else reason or kind,
                "Job completed" if kind == "Complete" else message or kind,
                "job-controller",
            )
        else:
            if failed + restarts > runtime.seen_failed:
                runtime.seen_failed = failed + restarts
                backoff_seconds = min(self.job_backoff_seconds * 2 ** (runtime.seen_failed - 1), 360.0)
                runtime.next_create_at = now + backoff_seconds
            wanted = min(parallelism, completions - succeeded) - len(active)
            if wanted > 0:
                if now >= runtime.next_create_at:
                    for _ in range(wanted):
                        self._create_job_pod(job)
                    new_status["active"] = len(active) + wanted
                else:
                    self._dirty_jobs.add(key)
        if new_status != status:
            job["status"] = new_status
            self._touch("jobs", job)

    def _create_job_pod(self, job: dict[str, Any]) -> None:
        template = job["spec"]["template"]
        meta = json.loads(json.dumps(template.get("metadata") or {}))
        meta["generateName"] = f"{job['metadata']['name']}-"
        meta["namespace"] = job["metadata"]["namespace"]
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        meta.pop("name", None)
        body = {"metadata": meta, "spec": json.loads(json.dumps(template["spec"]))}
        pod = o.admit_pod(body, job["metadata"]["namespace"])
        while (pod["metadata"]["namespace"], pod["metadata"]["name"]) in self._objects["pods"]:
            pod["metadata"]["name"] = o.generate_name(meta["generateName"])
        self._job_pods[job["metadata"]["uid"]].add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self._admit_pod_object(pod)
        self._event(
            job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "job-controller"
        )

    # --- events ---------------------------------------------------------------------------------------------

    def _event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str, component: str) -> None:
        meta = obj["metadata"]
        kind = (
            "Pod"
            if "containers" in (obj.get("spec") or {})
            else "Job"
            if "template" in (obj.get("spec") or {})
            else "Node"
        )
        namespace = meta.get("namespace") or "default"
        stamp = o.now()
        self._event_seq += 1
        event = {
            "metadata": {
                "name": f"{meta['name']}.{self._event_seq:016x}",
                "namespace": namespace,
                "uid": o.new_uid(),
                "creationTimestamp": stamp,
            },
            "involvedObject": {
                "kind": kind,
                "namespace": meta.get("namespace", ""),
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "apiVersion": "batch/v1" if kind == "Job" else "v1",
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {
                "component": component,
                **(
                    {"host": obj["spec"].get("nodeName")}
                    if kind == "Pod" and obj["spec"].get("nodeName")
                    else {}
                ),
            },
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        del event["eventTime"]
        if ("", namespace) not in self._objects["namespaces"]:
            return
        self._put("events", event)
        events = self._objects["events"]
        if len(events) > MAX_EVENTS:
            for old in list(events)[: len(events) - MAX_EVENTS]:
                self._remove("events", old)

    # --- controller loop ------------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(timeout=self._next_timer())
            self._wake.clear()
            if self._stopped.is_set():
                return
            with self.lock:
                now = time.monotonic()
                for key in list(self._dirty_jobs):
                    self._dirty_jobs.discard(key)
                    self._reconcile_job(key, now)
                for key, runtime in list(self._jobs.items()):
                    job = self._objects["jobs"].get(key)
                    if job is None:
                        continue
                    deadline = job["spec"].get("activeDeadlineSeconds")
                    ttl = job["spec"].get("ttlSecondsAfterFinished")
                    if (
                        runtime.finished_at is None
                        and deadline is not None
                        and now - runtime.started >= deadline
                    ) or (
                        runtime.finished_at is not None
                        and ttl is not None
                        and now >= runtime.finished_at + ttl
                    ):
                        self._reconcile_job(key, now)
                if self._schedule_needed:
                    self._schedule_pending()
                self._start_due(now)

    def _next_timer(self) -> float:
        with self.lock:
            now = time.monotonic()
            deadlines = [1.0]
            for rt in self._pods.values():
                for at in (rt.start_at, rt.restart_at, rt.kill_at):
                    if at is not None:
                        deadlines.append(at - now)
            for key in self._dirty_jobs:
                runtime = self._jobs.get(key)
                if runtime is not None:
                    deadlines.append(runtime.next_create_at - now)
            if self._dirty_jobs or self._schedule_needed:
                deadlines.append(0.0)
        return max(0.0, min(deadlines))


def _units(resources: Mapping[str, str]) -> dict[str, int]:
    return {name: to_units(name, value) for name, value in resources.items()}


def _node_ip(node: Mapping[str, Any]) -> str:
    for address in node["status"].get("addresses") or []:
        if address["type"] == "InternalIP":
            return address["address"]
    return ""


def _condition(kind: str, status: str, stamp: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": stamp}


def _base_status(container: Mapping[str, Any], restarts: int) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"sim://{container['image']}",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "lastState": {},
        "state": {},
    }


def _waiting_status(container: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {**_base_status(container, 0), "state": {"waiting": {"reason": reason}}}


def _encode_continue(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_continue(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except Exception:
        raise o.ApiError(410, "Expired", "the provided continue parameter is too old or invalid") from None
