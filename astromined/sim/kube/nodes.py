"""Nodes and what follows them: the node controller's Ready condition and `not-ready` taint (the
`set_node_ready` fault), and the status of DaemonSets, which follows the nodes they select (the NVIDIA device
plugin and its `set_device_plugin` fault). DaemonSets have no pods in the simulator."""

from collections.abc import Mapping
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.events import EventRecorder
from astromined.sim.kube.quantity import to_units
from astromined.sim.kube.scheduling import PodScheduler
from astromined.sim.kube.spec import NodeSpec
from astromined.sim.kube.store import ObjectStore

# The node labels the simulated NVIDIA device plugin DaemonSet selects (GPU nodes, as in infra/sim/).
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}


class NodeController:
    def __init__(
        self, store: ObjectStore, events: EventRecorder, scheduler: PodScheduler, *, cluster_name: str
    ):
        self._store = store
        self._events = events
        self._scheduler = scheduler
        self._cluster_name = cluster_name
        self._available_cap: int | None = None  # set_device_plugin(available=...)

    def add_node(self, node_spec: NodeSpec, index: int, kubernetes_version: str, site: str) -> None:
        node = o.node_object(node_spec, index, kubernetes_version, site)
        self._store.put("nodes", node)
        self._scheduler.add_node(node, units(node["status"]["allocatable"]))
        if not node_spec.ready:
            self._apply_not_ready_taint(node, True)

    def has_gpus(self) -> bool:
        return any(
            units(node["status"]["allocatable"]).get("nvidia.com/gpu", 0)
            for node in self._store.snapshot("nodes", None)
        )

    def set_ready(self, node_name: str, ready: bool) -> None:
        """See `SimulatedCluster.set_node_ready`. Called without the lock."""
        store = self._store
        with store.lock:
            node = store.objects["nodes"].get(("", node_name))
            if node is None:
                raise KeyError(f"cluster {self._cluster_name!r} has no node {node_name!r}")
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
            store.touch("nodes", node)
            self.sync_daemonsets()
            self._events.record(
                node,
                "Normal",
                "NodeReady" if ready else "NodeNotReady",
                f"Node {node_name} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
                "node-controller",
            )
            if not ready:
                self._scheduler.unbind_not_started(
                    node_name, f"node {node_name} became NotReady before the container started"
                )
            self._scheduler.needed = True

    def _apply_not_ready_taint(self, node: dict[str, Any], not_ready: bool) -> None:
        taints = [t for t in node["spec"].get("taints") or [] if t["key"] != o.NOT_READY_TAINT_KEY]
        if not_ready:
            taints.append({"key": o.NOT_READY_TAINT_KEY, "effect": "NoSchedule", "timeAdded": o.now()})
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)

    def set_device_plugin(self, present: bool, available: int | None = None) -> None:
        """See `SimulatedCluster.set_device_plugin`."""
        store = self._store
        with store.lock:
            key = (o.DEVICE_PLUGIN_NAMESPACE, o.DEVICE_PLUGIN_NAME)
            if not present:
                store.remove("daemonsets", key)
                return
            if key not in store.objects["daemonsets"]:
                store.put(
                    "daemonsets",
                    o.daemonset_object(o.DEVICE_PLUGIN_NAME, o.DEVICE_PLUGIN_NAMESPACE, GPU_NODE_SELECTOR),
                )
            self._available_cap = available
            self.sync_daemonsets()

    def sync_daemonsets(self) -> None:
        """DaemonSet status from the nodes they select: desired = matching nodes, available = Ready ones."""
        cap = self._available_cap
        store = self._store
        for daemonset in store.objects["daemonsets"].values():
            selector = daemonset["spec"]["template"]["spec"].get("nodeSelector") or {}
            nodes = [
                n
                for n in store.objects["nodes"].values()
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
                store.touch("daemonsets", daemonset)


def units(resources: Mapping[str, str]) -> dict[str, int]:
    """A node's resource list as the integers the scheduler adds up."""
    return {name: to_units(name, value) for name, value in resources.items()}
