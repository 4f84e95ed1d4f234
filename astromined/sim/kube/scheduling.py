"""The simulated kube-scheduler's state: a view of each node (its object and the requests bound to it), the
queue of pending pods, and binding. Which node a pod goes to is decided by the pure
`astromined.sim.kube.scheduler.schedule`; this module keeps the books around that decision.

A pass (`schedule_pending`) runs from the controller loop whenever something may have changed the answer: a
new pending pod, freed capacity (a pod ended or was deleted), a node change (`needed`).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.events import EventRecorder
from astromined.sim.kube.scheduler import NodeView, schedule
from astromined.sim.kube.status import condition, waiting_container_status
from astromined.sim.kube.store import Key, ObjectStore

if TYPE_CHECKING:
    from astromined.sim.kube.kubelet import PodRuntime


class PodScheduler:
    """Node views, the pending queue and binding, over the pod runtimes the kubelet keeps (`runtimes`: a
    runtime's `node` and `requests` are what a bound pod holds). `on_bound(key)` hands a freshly bound pod to
    the kubelet; the cluster connects it."""

    def __init__(self, store: ObjectStore, events: EventRecorder, runtimes: "dict[Key, PodRuntime]"):
        self._store = store
        self._events = events
        self._runtimes = runtimes
        self.views: dict[str, NodeView] = {}
        self._pending: dict[Key, None] = {}
        self.needed = False  # a pass may place something
        self.on_bound: Callable[[Key], None] = _not_connected

    def add_node(self, node: dict[str, Any], allocatable: dict[str, int]) -> None:
        self.views[node["metadata"]["name"]] = NodeView(node, allocatable)

    def has_node(self, name: Any) -> bool:
        return name in self.views

    def enqueue(self, key: Key) -> None:
        self._pending[key] = None
        self.needed = True

    def forget(self, key: Key) -> None:
        """Drop a pod from the queue (it is being deleted)."""
        self._pending.pop(key, None)

    def bind(self, key: Key, node_name: str, *, scheduled_by_us: bool) -> None:
        pod, rt = self._store.objects["pods"][key], self._runtimes[key]
        view = self.views[node_name]
        rt.node = node_name
        self._store.pods_on_node.setdefault(node_name, set()).add(key)
        view.pod_count += 1
        for resource, amount in rt.requests.items():
            view.used[resource] = view.used.get(resource, 0) + amount
        self._pending.pop(key, None)
        stamp = o.now()
        pod["spec"]["nodeName"] = node_name
        status = pod["status"]
        status["conditions"] = [condition("PodScheduled", "True", stamp)]
        status["hostIP"] = _node_ip(view.node)
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status.pop("message", None)
        status.pop("reason", None)
        status["startTime"] = stamp
        status["containerStatuses"] = [
            waiting_container_status(container, "ContainerCreating")
            for container in pod["spec"]["containers"]
        ]
        if scheduled_by_us:
            self._events.record(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {key[0]}/{key[1]} to {node_name}",
                "default-scheduler",
            )
        self.on_bound(key)
        self._store.touch("pods", pod)

    def release(self, key: Key) -> None:
        """The pod no longer holds its node's capacity (it ended, or it is going away)."""
        rt = self._runtimes.get(key)
        if rt is None or rt.node is None:
            return
        view = self.views.get(rt.node)
        if view is not None:
            view.pod_count -= 1
            for resource, amount in rt.requests.items():
                view.used[resource] = view.used.get(resource, 0) - amount
        rt.node = None
        self.needed = True

    def unbind(self, key: Key, why: str) -> None:
        """Back to Pending: the pod's node went away before its container started."""
        pod, rt = self._store.objects["pods"][key], self._runtimes[key]
        self._store.pods_on_node.get(pod["spec"].get("nodeName", ""), set()).discard(key)
        self.release(key)
        rt.start_at = None
        pod["spec"].pop("nodeName", None)
        status = pod["status"]
        for name in ("hostIP", "hostIPs", "startTime", "containerStatuses", "conditions"):
            status.pop(name, None)
        self._events.record(pod, "Warning", "NodeNotReady", why, "node-controller")
        self._store.touch("pods", pod)
        self._pending[key] = None
        self.needed = True

    def unbind_not_started(self, node_name: str, why: str) -> None:
        """Unbind the pods bound to a node whose container has not started yet (still in image pull)."""
        for key, rt in list(self._runtimes.items()):
            if rt.node == node_name and rt.start_at is not None and rt.process is None:
                self.unbind(key, why)

    def schedule_pending(self) -> None:
        self.needed = False
        views = list(self.views.values())
        pods = self._store.objects["pods"]
        for key in list(self._pending):
            pod = pods.get(key)
            if pod is None:
                self._pending.pop(key, None)
                continue
            decision = schedule(pod["spec"], views)
            if decision.node is not None:
                self.bind(key, decision.node, scheduled_by_us=True)
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
                        **condition("PodScheduled", "False", stamp),
                        "reason": "Unschedulable",
                        "message": decision.message,
                    }
                ]
                self._store.touch("pods", pod)
                self._events.record(
                    pod, "Warning", "FailedScheduling", decision.message or "", "default-scheduler"
                )


def _node_ip(node: Any) -> str:
    for address in node["status"].get("addresses") or []:
        if address["type"] == "InternalIP":
            return address["address"]
    return ""


def _not_connected(key: Key) -> None:
    raise RuntimeError("PodScheduler.on_bound is not connected to a kubelet")
