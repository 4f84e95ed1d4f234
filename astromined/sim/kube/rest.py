"""The REST verbs of the simulated kube-apiserver, as `server.py` routes them: list (with selectors and
`limit`/`continue` pages), get, create, delete, watch, pod logs and SelfSubjectAccessReviews. Answers are
JSON bytes in the real server's shapes; errors are `objects.ApiError` (a Status)."""

import base64
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.faults import ApiFaults
from astromined.sim.kube.jobs import JobController
from astromined.sim.kube.kubelet import Kubelet
from astromined.sim.kube.scheduling import PodScheduler
from astromined.sim.kube.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from astromined.sim.kube.store import KINDS, ObjectStore
from astromined.sim.kube.watch import WatchRequest, WatchStream

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class RestApi:
    """Each verb takes the store lock for its read-modify-write and wakes the controller loop after a
    change (`wake`)."""

    def __init__(
        self,
        store: ObjectStore,
        scheduler: PodScheduler,
        kubelet: Kubelet,
        jobs: JobController,
        faults: ApiFaults,
        *,
        wake: threading.Event,
        stopped: threading.Event,
        watch_bookmark_interval_s: float,
    ):
        self._store = store
        self._scheduler = scheduler
        self._kubelet = kubelet
        self._jobs = jobs
        self._faults = faults
        self._wake = wake
        self._stopped = stopped
        self.watch_bookmark_interval_s = watch_bookmark_interval_s

    def watch(
        self, kind: str, namespace: str | None, query: Mapping[str, str], is_open: Callable[[], bool]
    ) -> WatchStream:
        """``?watch=true``: see `astromined.sim.kube.watch`. ``is_open`` tells the stream whether its HTTP
        connection may go on (the API-down switch)."""
        self._faults.forbid_watch(kind, KINDS[kind].group, namespace)
        request = WatchRequest.from_query(kind, namespace, query)
        if namespace is not None and KINDS[kind].namespaced:
            with self._store.lock:
                self._store.require_namespace(namespace)
        return WatchStream(
            self._store,
            request,
            self.watch_bookmark_interval_s,
            lambda: is_open() and not self._stopped.is_set(),
        )

    def list_objects(self, kind: str, namespace: str | None, query: Mapping[str, str]) -> bytes:
        store = self._store
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), kind)
        limit = int(query["limit"]) if query.get("limit") else 0
        offset = _decode_continue(query.get("continue"))
        with store.lock:
            if namespace is not None and KINDS[kind].namespaced:
                store.require_namespace(namespace)
            matched = []
            objects = store.objects[kind]
            phases = [f for f in fields if f.field == "status.phase"] if kind == "pods" else []
            if phases:
                fields = tuple(f for f in fields if f.field != "status.phase")
            for key in store.candidates(kind, namespace, labels, fields):
                if namespace is not None and key[0] != namespace:
                    continue
                if phases:
                    phase = store.pod_phase.get(key, "")
                    if not all((phase == f.value) != f.negate for f in phases):
                        continue
                obj = objects[key]
                if labels and not labels_match(labels, obj["metadata"].get("labels")):
                    continue
                if fields and not fields_match(fields, obj, kind):
                    continue
                matched.append(key)
            page = matched[offset : offset + limit] if limit else matched[offset:]
            items = [store.item_json(kind, key) for key in page]
            rv = store.resource_version
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

    def get_object(self, kind: str, namespace: str | None, name: str) -> bytes:
        store = self._store
        with store.lock:
            key = (namespace or "", name)
            if key not in store.objects[kind]:
                raise o.not_found(kind, name, KINDS[kind].group)
            return store.with_kind(kind, store.item_json(kind, key))

    def create_object(self, kind: str, namespace: str | None, body: Any) -> bytes:
        store = self._store
        with store.lock:
            if kind == "namespaces":
                obj = o.admit_namespace(body)
                key = ("", obj["metadata"]["name"])
                if key in store.objects[kind]:
                    raise o.already_exists(kind, key[1])
                store.put(kind, obj)
            elif kind == "pods":
                assert namespace is not None
                store.require_namespace(namespace)
                obj = o.admit_pod(body, namespace)
                if obj["spec"].get("nodeName") and not self._scheduler.has_node(obj["spec"]["nodeName"]):
                    errors = o.Invalid("Pod", obj["metadata"]["name"])
                    errors.invalid("spec.nodeName", obj["spec"]["nodeName"], "no such node")
                    errors.raise_if_any()
                if (namespace, obj["metadata"]["name"]) in store.objects["pods"]:
                    raise o.already_exists("pods", obj["metadata"]["name"])
                self._kubelet.admit(obj)
            elif kind == "jobs":
                assert namespace is not None
                store.require_namespace(namespace)
                obj = o.admit_job(body, namespace)
                if (namespace, obj["metadata"]["name"]) in store.objects["jobs"]:
                    raise o.already_exists("jobs", obj["metadata"]["name"], "batch")
                self._jobs.create(obj)
            else:
                raise o.ApiError(405, "MethodNotAllowed", f"the simulator does not allow creating {kind}")
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            result = store.with_kind(kind, store.item_json(kind, key))
        self._wake.set()
        return result

    def delete_object(self, kind: str, namespace: str | None, name: str, options: Mapping[str, Any]) -> bytes:
        store = self._store
        with store.lock:
            key = (namespace or "", name)
            obj = store.objects[kind].get(key)
            if obj is None:
                raise o.not_found(kind, name, KINDS[kind].group)
            grace = options.get("gracePeriodSeconds")
            if kind == "pods":
                result = self._kubelet.delete(key, None if grace is None else int(grace))
            elif kind == "jobs":
                policy = options.get("propagationPolicy") or (
                    "Orphan" if options.get("orphanDependents") in (True, "true") else None
                )
                self._jobs.delete(key, policy or "Orphan", None if grace is None else int(grace))
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
                for job_key in [k for k in store.objects["jobs"] if k[0] == name]:
                    self._jobs.delete(job_key, "Background", None)
                for pod_key in [k for k in store.objects["pods"] if k[0] == name]:
                    self._kubelet.delete(pod_key, None)
                for event_key in [k for k in store.objects["events"] if k[0] == name]:
                    store.remove("events", event_key)
                obj["status"]["phase"] = "Terminating"
                obj["metadata"]["deletionTimestamp"] = o.now()
                result = store.with_kind(kind, json.dumps(obj).encode())
                store.remove("namespaces", key)
            else:
                raise o.ApiError(405, "MethodNotAllowed", f"the simulator does not allow deleting {kind}")
        self._wake.set()
        return result

    def log(self, namespace: str, name: str, query: Mapping[str, str]) -> bytes:
        return self._kubelet.read_log(namespace, name, query)

    def access_review(self, body: Any) -> bytes:
        return self._faults.access_review(body)


def _encode_continue(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_continue(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except Exception:
        raise o.ApiError(410, "Expired", "the provided continue parameter is too old or invalid") from None
