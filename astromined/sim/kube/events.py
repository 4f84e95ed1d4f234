"""Kubernetes Events (`core/v1`) the simulated controllers record: Scheduled, Started, BackOff, Completed,
NodeNotReady… Events of a namespace that does not exist are dropped; the store keeps the newest
`MAX_EVENTS`."""

from collections.abc import Mapping
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.store import ObjectStore

MAX_EVENTS = 20_000


class EventRecorder:
    """`record(obj, type, reason, message, component)`, called under the store lock."""

    def __init__(self, store: ObjectStore):
        self._store = store
        self._seq = 0

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str, component: str) -> None:
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
        self._seq += 1
        event = {
            "metadata": {
                "name": f"{meta['name']}.{self._seq:016x}",
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
            "reportingComponent": component,
            "reportingInstance": "",
        }
        store = self._store
        if ("", namespace) not in store.objects["namespaces"]:
            return
        store.put("events", event)
        events = store.objects["events"]
        if len(events) > MAX_EVENTS:
            for old in list(events)[: len(events) - MAX_EVENTS]:
                store.remove("events", old)
