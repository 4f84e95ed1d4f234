"""One simulated Kubernetes cluster behind the HTTP API of `astromined.sim.kube.server`: the parts, wired
together, and the controller loop that drives them.

| Part | Module |
|---|---|
| object store, indexes, change log | `store.ObjectStore` |
| REST verbs (list, get, create, delete, watch, log, access reviews) | `rest.RestApi` |
| scheduler: node views, pending queue, binding (the decision: `scheduler`) | `scheduling.PodScheduler` |
| kubelet: pod admission, container processes, pod status, deletion | `kubelet.Kubelet` |
| Job controller | `jobs.JobController` |
| Events | `events.EventRecorder` |
| nodes, node readiness, DaemonSet status | `nodes.NodeController` |
| API fault switches (latency, watch forbidden, access reviews) | `faults.ApiFaults` |

All state lives in plain dicts (the JSON the API returns) guarded by one lock (`store.lock`). A single
controller thread reacts to changes (new pods, freed capacity, node changes, exits) and to timers (image pull
delay, job backoff, termination grace, TTL). Container processes report their exit from their own threads.
"""

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.events import EventRecorder
from astromined.sim.kube.faults import ApiFaults
from astromined.sim.kube.jobs import JobController
from astromined.sim.kube.kubelet import NO_RUN_ANNOTATION, Kubelet, PodRuntime
from astromined.sim.kube.nodes import GPU_NODE_SELECTOR, NodeController
from astromined.sim.kube.process import default_base_env
from astromined.sim.kube.rest import SYSTEM_NAMESPACES, RestApi
from astromined.sim.kube.scheduling import PodScheduler
from astromined.sim.kube.spec import ClusterSpec
from astromined.sim.kube.store import WATCH_LOG_SIZE, Key, ObjectStore
from astromined.sim.kube.watch import WatchStream

__all__ = ["NO_RUN_ANNOTATION", "SimulatedCluster"]


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
        self._host, self._port = host, port
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._controller: threading.Thread | None = None
        self._server = None

        self.store = ObjectStore(watch_log_size)
        self.lock = self.store.lock
        self.event_recorder = EventRecorder(self.store)
        self.faults = ApiFaults()
        runtimes: dict[Key, PodRuntime] = {}
        self.scheduler = PodScheduler(self.store, self.event_recorder, runtimes)
        self.kubelet = Kubelet(
            self.store,
            self.event_recorder,
            self.scheduler,
            runtimes,
            self._wake,
            cluster_name=spec.name,
            base_env=base_env if base_env is not None else default_base_env(),
            workdir=str(Path(workdir) if workdir is not None else Path.cwd()),
            image_pull_seconds=spec.image_pull_seconds,
            restart_backoff_seconds=restart_backoff_seconds,
            max_grace_seconds=max_grace_seconds,
        )
        self.scheduler.on_bound = self.kubelet.pod_bound
        self.jobs_controller = JobController(
            self.store, self.event_recorder, self.kubelet, backoff_seconds=job_backoff_seconds
        )
        self.kubelet.owners = self.jobs_controller
        self.node_controller = NodeController(
            self.store, self.event_recorder, self.scheduler, cluster_name=spec.name
        )
        self.rest = RestApi(
            self.store,
            self.scheduler,
            self.kubelet,
            self.jobs_controller,
            self.faults,
            wake=self._wake,
            stopped=self._stopped,
            watch_bookmark_interval_s=watch_bookmark_interval_s,
        )

        for index, node_spec in enumerate(spec.nodes):
            self.node_controller.add_node(node_spec, index + 1, spec.kubernetes_version, spec.site)
        for namespace in SYSTEM_NAMESPACES:
            self.store.put("namespaces", o.namespace_object(namespace))
        self.store.put("storageclasses", o.storage_class_object(o.DEFAULT_STORAGE_CLASS, default=True))
        if self.node_controller.has_gpus():
            self.store.put(
                "daemonsets",
                o.daemonset_object(o.DEVICE_PLUGIN_NAME, o.DEVICE_PLUGIN_NAMESPACE, GPU_NODE_SELECTOR),
            )
            self.node_controller.sync_daemonsets()

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
        self.kubelet.stop_processes()

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
        self.faults.api_latency = float(seconds)

    def set_watch_forbidden(self, forbidden: bool) -> None:
        """Answer every ``?watch=true`` with 403 Forbidden, as for a service account whose RBAC role lacks
        the ``watch`` verb."""
        self.faults.watch_forbidden = bool(forbidden)

    def set_access_denied(self, denied: Iterable[str]) -> None:
        """RBAC fault: SelfSubjectAccessReviews for these "verb resource[/subresource]" entries (``"*"``: all)
        answer ``allowed: false``. The switch changes only the reviews, not what the API lets through."""
        self.faults.denied_access = frozenset(denied)

    def set_device_plugin(self, present: bool, available: int | None = None) -> None:
        """Install or remove the NVIDIA device plugin DaemonSet (kube-system). ``available`` caps
        ``status.numberAvailable`` (a crash-looping plugin);
        None: one available pod per Ready GPU node."""
        self.node_controller.set_device_plugin(present, available)

    def set_image_pull_delay(self, seconds: float) -> None:
        """How long a bound pod stays Pending in ContainerCreating before its process starts."""
        self.kubelet.image_pull_seconds = float(seconds)

    def set_node_ready(self, node_name: str, ready: bool) -> None:
        """Flip a node's Ready condition. A NotReady node carries the
        `node.kubernetes.io/not-ready:NoSchedule` taint, so nothing new is scheduled there; pods bound to it
        whose process has not started yet are unbound
        and go back to Pending (Unschedulable if nothing else fits); running processes keep running."""
        self.node_controller.set_ready(node_name, ready)
        self._wake.set()

    # --- test and benchmark helpers -------------------------------------------------------------------------

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """A snapshot (deep copy) of pod objects, optionally of one namespace."""
        return self.store.snapshot("pods", namespace)

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.snapshot("jobs", namespace)

    def nodes(self) -> list[dict[str, Any]]:
        return self.store.snapshot("nodes", None)

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.snapshot("events", namespace)

    def container_pid(self, namespace: str, pod_name: str) -> int | None:
        """The pid of the pod's running container process, if any."""
        return self.kubelet.container_pid((namespace, pod_name))

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
                self.store.require_namespace(namespace)
                pod = o.admit_pod(body, namespace)
                pod["metadata"]["annotations"][NO_RUN_ANNOTATION] = "false"
                node = pod["spec"].get("nodeName")
                if not self.scheduler.has_node(node):
                    raise ValueError(
                        f"pod {pod['metadata']['name']!r}: spec.nodeName {node!r} "
                        f"is not a node of {self.name}"
                    )
                self.kubelet.admit(pod)
                count += 1
        self._wake.set()
        return count

    # --- REST verbs in-process (what the HTTP server calls through `rest`; benchmarks skip HTTP with them) --

    def api_list(self, kind: str, namespace: str | None, query: Mapping[str, str]) -> bytes:
        return self.rest.list_objects(kind, namespace, query)

    def api_get(self, kind: str, namespace: str | None, name: str) -> bytes:
        return self.rest.get_object(kind, namespace, name)

    def api_create(self, kind: str, namespace: str | None, body: Any) -> bytes:
        return self.rest.create_object(kind, namespace, body)

    def api_delete(self, kind: str, namespace: str | None, name: str, options: Mapping[str, Any]) -> bytes:
        return self.rest.delete_object(kind, namespace, name, options)

    def api_log(self, namespace: str, name: str, query: Mapping[str, str]) -> bytes:
        return self.rest.log(namespace, name, query)

    def api_watch(
        self, kind: str, namespace: str | None, query: Mapping[str, str], is_open: Callable[[], bool]
    ) -> WatchStream:
        return self.rest.watch(kind, namespace, query, is_open)

    def api_access_review(self, body: Any) -> bytes:
        return self.rest.access_review(body)

    # --- controller loop ------------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(timeout=self._next_timer())
            self._wake.clear()
            if self._stopped.is_set():
                return
            with self.lock:
                now = time.monotonic()
                self.jobs_controller.run(now)
                if self.scheduler.needed:
                    self.scheduler.schedule_pending()
                self.kubelet.start_due(now)

    def _next_timer(self) -> float:
        with self.lock:
            now = time.monotonic()
            deadlines = [1.0, *self.kubelet.deadlines(now), *self.jobs_controller.deadlines(now)]
            if self.scheduler.needed:
                deadlines.append(0.0)
        return max(0.0, min(deadlines))
