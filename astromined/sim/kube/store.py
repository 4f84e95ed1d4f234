"""The simulated kube-apiserver's object store: every object as the plain dict the API returns, the indexes
lists use, the resourceVersion counter and the change log watches read.

One re-entrant lock (`ObjectStore.lock`) guards the store and every controller of the cluster; callers hold
it around a read-modify-write. Each object's serialised JSON is cached until the object changes
(`touch`/`remove`), so listing thousands of pods costs a join, not a re-encode.
"""

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.watch import Change, ChangeLog

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
Key = tuple[str, str]


class ObjectStore:
    """Objects by kind and (namespace, name), with a label index, a `spec.nodeName` and a `status.phase`
    index for pods, and the change log (`astromined.sim.kube.watch`)."""

    def __init__(self, watch_log_size: int = WATCH_LOG_SIZE):
        self.lock = threading.RLock()
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._rv = 0
        self._changes = ChangeLog(watch_log_size)
        self._json: dict[str, dict[Key, bytes]] = {kind: {} for kind in KINDS}
        # (label key, value) → object keys, for the equality selectors dagster-k8s uses (job-name=...).
        self._label_index: dict[str, dict[tuple[str, str], set[Key]]] = {kind: {} for kind in KINDS}
        self._sorted_keys: dict[str, list[Key] | None] = {kind: None for kind in KINDS}
        # spec.nodeName index (a terminated pod keeps its node, as the field does; kept by the scheduler and
        # the kubelet, which set and clear the field) and status.phase index (kept by `touch`).
        self.pods_on_node: dict[str, set[Key]] = {}
        self.pod_phase: dict[Key, str] = {}

    # --- writes ---------------------------------------------------------------------------------------------

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        """Insert a new object. Labels are indexed here: the simulator never changes labels afterwards."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        created = key not in self.objects[kind]
        if not created:
            self._unindex(kind, key)
        self.objects[kind][key] = obj
        self._sorted_keys[kind] = None
        index = self._label_index[kind]
        for label in (meta.get("labels") or {}).items():
            index.setdefault(label, set()).add(key)
        self.touch(kind, obj, created=created)

    def _unindex(self, kind: str, key: Key) -> None:
        index = self._label_index[kind]
        for label in (self.objects[kind][key]["metadata"].get("labels") or {}).items():
            keys = index.get(label)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[label]

    def touch(self, kind: str, obj: dict[str, Any], *, created: bool = False) -> None:
        """Record that `obj` (already in the store) changed: new resourceVersion, JSON cache dropped."""
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        key = (meta.get("namespace", ""), meta["name"])
        self._json[kind].pop(key, None)
        if kind == "pods":
            self.pod_phase[key] = (obj.get("status") or {}).get("phase", "")
        self._changes.append(Change(self._rv, kind, key, created=created))

    def remove(self, kind: str, key: Key) -> dict[str, Any] | None:
        self._json[kind].pop(key, None)
        self._rv += 1
        if key not in self.objects[kind]:
            return None
        self._unindex(kind, key)
        self._sorted_keys[kind] = None
        if kind == "pods":
            self.pod_phase.pop(key, None)
        removed = self.objects[kind].pop(key)
        self._changes.append(Change(self._rv, kind, key, removed))
        return removed

    # --- reads ----------------------------------------------------------------------------------------------

    def candidates(self, kind: str, namespace: str | None, labels: tuple, fields: tuple) -> list[Key]:
        """Keys that may match, in (namespace, name) order: narrowed by a metadata.name field or a label
        equality/set requirement through the indexes, else every key."""
        for requirement in fields:
            if requirement.field == "metadata.name" and not requirement.negate:
                store = self.objects[kind]
                if namespace is not None or not KINDS[kind].namespaced:
                    key = (namespace or "", requirement.value)
                    return [key] if key in store else []
                return sorted(k for k in store if k[1] == requirement.value)
        for requirement in fields:
            if kind == "pods" and requirement.field == "spec.nodeName" and not requirement.negate:
                return sorted(self.pods_on_node.get(requirement.value, ()))
        for requirement in labels:
            if requirement.operator in ("=", "in"):
                index = self._label_index[kind]
                found: set[Key] = set()
                for value in requirement.values:
                    found |= index.get((requirement.key, value), set())
                return sorted(found)
        keys = self._sorted_keys[kind]
        if keys is None:
            keys = self._sorted_keys[kind] = sorted(self.objects[kind])
        return keys

    def item_json(self, kind: str, key: Key) -> bytes:
        cached = self._json[kind].get(key)
        if cached is None:
            cached = json.dumps(self.objects[kind][key], separators=(",", ":")).encode()
            self._json[kind][key] = cached
        return cached

    def with_kind(self, kind: str, item: bytes) -> bytes:
        """An item's JSON with `kind` and `apiVersion` in front, as a single-object answer carries them."""
        meta = KINDS[kind]
        return f'{{"kind":"{meta.kind}","apiVersion":"{meta.api_version}",'.encode() + item[1:]

    def require_namespace(self, namespace: str) -> None:
        if ("", namespace) not in self.objects["namespaces"]:
            raise o.not_found("namespaces", namespace)

    def snapshot(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """A deep copy of the objects of a kind, optionally of one namespace, in (namespace, name) order."""
        with self.lock:
            items = [
                self.item_json(kind, key) for key in sorted(self.objects[kind]) if namespace in (None, key[0])
            ]
        return [json.loads(item) for item in items]

    # --- the store as `WatchStream` reads it (under `lock`, except `wait_for_change`) ----------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def kind_info(self, kind: str) -> Kind:
        return KINDS[kind]

    def watch_keys(self, kind: str) -> list[Key]:
        return self.candidates(kind, None, (), ())

    def watch_object(self, kind: str, key: Key) -> dict[str, Any] | None:
        return self.objects[kind].get(key)

    def watch_json(self, kind: str, key: Key) -> bytes:
        return self.with_kind(kind, self.item_json(kind, key))

    def watch_json_of(self, kind: str, obj: Mapping[str, Any]) -> bytes:
        return self.with_kind(kind, json.dumps(obj, separators=(",", ":")).encode())

    def changes_after(self, resource_version: int) -> list[Change]:
        return self._changes.after(resource_version)

    def wait_for_change(self, resource_version: int, timeout: float) -> None:
        condition = self._changes.condition
        with condition:
            condition.wait_for(lambda: self._rv > resource_version, timeout=max(0.0, timeout))
