"""A watch-based cache of one cluster's GPU nodes and non-terminated pods: a placement decision reads memory,
not two list calls.

Listing 1,000 nodes and 5,000 pods costs ~1.5 s per decision (benchmarks/placement_decision.py); an informer
pays that once, then follows ``?watch=true`` streams and keeps, per node, the sum of the requests of the pods
bound to it. The pattern is the one of client-go's reflector and informer (and of kube-scheduler's cache):

- list with the site's GPU node selector (nodes) and without one (pods), remember the list's
  resourceVersion, watch from it; every event updates the store and the per-node sums;
- a watch that ends (server timeout) is resumed from the last resourceVersion seen (bookmarks included);
- ``410 Expired`` (the server no longer has that version) → list again;
- the API unreachable → the cache is *not connected*: `snapshot` returns None and the caller lists or
  reports the cluster unreachable; the reflector retries with backoff and resumes;
- the API refuses the watch (400/403/405: no ``watch`` verb in RBAC, a proxy) → the informer stops and says
  so; the placer falls back to lists for good.

The cache can lag the API by the time an event takes to arrive (milliseconds); the placer's ledger already
covers the gap for the executor's own pods, exactly as with a listed snapshot.
"""

import dataclasses
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.rest import ApiException

from astromined.placement.policy import ClusterSnapshot, NodeSnapshot, PendingPod, Resources, Site
from astromined.placement.quantities import QuantityError
from astromined.placement.snapshot import (
    DEFAULT_REQUEST_TIMEOUT,
    PodRecord,
    describe_api_error,
    is_unreachable_error,
    node_from_json,
    pod_record,
    read_json,
)

log = logging.getLogger(__name__)

# Servers end a watch after this many seconds and the reflector resumes it (kube-apiserver picks 30-60 min).
WATCH_TIMEOUT_S = 300
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0
_GONE = 410
_REFUSED = (400, 403, 405)

PodKey = tuple[str, str]


class WatchRefused(Exception):
    """The API does not allow watching this resource (status 400, 403 or 405)."""


class ClusterCache:
    """The informer's store: GPU nodes, non-terminated pods and the sums the policy reads. Not thread-safe by
    itself: `ClusterInformer` serializes access."""

    def __init__(self, cluster: str, site: Site):
        self.cluster = cluster
        self.site = site
        self.nodes: dict[str, NodeSnapshot] = {}
        self.pods: dict[PodKey, PodRecord] = {}
        self.requested: dict[str, Resources] = {}
        self.pending: dict[PodKey, PendingPod] = {}
        self.seen_ids: Counter[str] = Counter()
        self.bound_ids: Counter[str] = Counter()
        self._sorted_names: list[str] | None = None

    # -- nodes -----------------------------------------------------------------------------------------------

    def replace_nodes(self, items: list[Mapping[str, Any]]) -> None:
        self.nodes = {node.name: node for node in (node_from_json(item, self.cluster) for item in items)}
        self._sorted_names = None

    def apply_node(self, event_type: str, item: Mapping[str, Any]) -> None:
        name = str((item.get("metadata") or {}).get("name"))
        if event_type == "DELETED":
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node_from_json(item, self.cluster)
        self._sorted_names = None

    # -- pods ------------------------------------------------------------------------------------------------

    def replace_pods(self, items: list[Mapping[str, Any]]) -> None:
        self.pods.clear()
        self.requested.clear()
        self.pending.clear()
        self.seen_ids.clear()
        self.bound_ids.clear()
        for item in items:
            self.apply_pod("ADDED", item)

    def apply_pod(self, event_type: str, item: Mapping[str, Any]) -> None:
        metadata = item.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name")))
        old = self.pods.pop(key, None)
        if old is not None:
            self._count(key, old, -1)
        if event_type == "DELETED":
            return
        record = self._record(item)
        if record is not None:
            self.pods[key] = record
            self._count(key, record, +1)

    def _record(self, item: Mapping[str, Any]) -> PodRecord | None:
        try:
            return pod_record(item, self.cluster)
        except QuantityError as error:
            # kube-apiserver validates quantities, so this is a broken fake or proxy: count the pod as
            # requesting nothing rather than stopping the cache, and say so.
            log.warning("%s; counted as requesting nothing", error)
            return pod_record(item, self.cluster, count_requests=False)

    def _count(self, key: PodKey, record: PodRecord, sign: int) -> None:
        if record.placement_id:
            self.seen_ids[record.placement_id] += sign
            if self.seen_ids[record.placement_id] <= 0:
                del self.seen_ids[record.placement_id]
            if record.node_name:
                self.bound_ids[record.placement_id] += sign
                if self.bound_ids[record.placement_id] <= 0:
                    del self.bound_ids[record.placement_id]
        if record.node_name is None:
            if sign > 0:
                self.pending[key] = PendingPod(record.name, record.requests, record.placement_id)
            else:
                self.pending.pop(key, None)
            return
        total = self.requested.get(record.node_name, Resources())
        total = total + record.requests if sign > 0 else total - record.requests
        if total == Resources():
            self.requested.pop(record.node_name, None)
        else:
            self.requested[record.node_name] = total

    # -- the policy's view -----------------------------------------------------------------------------------

    def snapshot(self) -> ClusterSnapshot:
        if self._sorted_names is None:
            self._sorted_names = sorted(self.nodes)
        zero = Resources()
        nodes = tuple(
            dataclasses.replace(self.nodes[name], requested=self.requested.get(name, zero))
            for name in self._sorted_names
        )
        return ClusterSnapshot(
            cluster=self.cluster,
            site=self.site,
            reachable=True,
            nodes=nodes,
            pending=tuple(self.pending.values()),
            bound_placement_ids=frozenset(self.bound_ids),
            seen_placement_ids=frozenset(self.seen_ids),
        )


@dataclasses.dataclass
class _ReflectorState:
    resource_version: str | None = None
    synced: bool = False  # listed at least once
    connected: bool = False  # watching now
    error: str = ""
    lists: int = 0
    events: int = 0


class _Reflector(threading.Thread):
    """List + watch of one resource into the cache (one thread per resource)."""

    def __init__(
        self,
        informer: "ClusterInformer",
        resource: str,
        list_call: Callable[..., Any],
        replace: Callable[[list], None],
        apply: Callable[[str, Mapping[str, Any]], None],
        label_selector: str | None,
    ):
        super().__init__(name=f"informer-{informer.cluster}-{resource}", daemon=True)
        self.resource = resource
        self.state = _ReflectorState()
        self._informer = informer
        self._list_call = list_call
        self._replace = replace
        self._apply = apply
        self._label_selector = label_selector
        self._response: Any = None

    def run(self) -> None:
        informer = self._informer
        backoff = BACKOFF_INITIAL_S
        while not informer.stopped.is_set():
            try:
                if self.state.resource_version is None:
                    self._list()
                self._watch()
                backoff = BACKOFF_INITIAL_S
            except _Relist:
                continue
            except WatchRefused as error:
                informer.refuse(f"{self.resource}: {error}")
                return
            except Exception as error:
                if informer.stopped.is_set():
                    return
                reason = describe_api_error(error)
                with informer.lock:
                    self.state.connected = False
                    self.state.error = reason
                if not is_unreachable_error(error):
                    log.warning("informer %s/%s: %s", informer.cluster, self.resource, reason)
                informer.stopped.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _list(self) -> None:
        informer = self._informer
        body = read_json(
            self._list_call(
                label_selector=self._label_selector,
                _preload_content=False,
                _request_timeout=informer.request_timeout,
            )
        )
        with informer.lock:
            self._replace(body.get("items") or [])
            self.state.resource_version = (body.get("metadata") or {}).get("resourceVersion") or "0"
            self.state.synced = True
            self.state.lists += 1
            informer.changed.notify_all()

    def _watch(self) -> None:
        informer = self._informer
        try:
            response = self._list_call(
                label_selector=self._label_selector,
                watch=True,
                resource_version=self.state.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=informer.watch_timeout_s,
                _preload_content=False,
                _request_timeout=(informer.request_timeout[0], informer.watch_timeout_s + 30),
            )
        except ApiException as error:
            if error.status in _REFUSED:
                raise WatchRefused(describe_api_error(error)) from None
            raise
        self._response = response
        try:
            with informer.lock:
                self.state.connected = True
                self.state.error = ""
                informer.changed.notify_all()
            for line in _lines(response):
                if informer.stopped.is_set():
                    return
                self._on_event(json.loads(line))
        finally:
            self._response = None
            response.release_conn()
        # The server ended the watch on time: the next loop resumes it from the last resourceVersion at
        # once. The cache stays usable meanwhile (a failed resume marks it disconnected).

    def _on_event(self, event: Mapping[str, Any]) -> None:
        informer = self._informer
        event_type, obj = event.get("type"), event.get("object") or {}
        if event_type == "ERROR":
            code = obj.get("code")
            if code == _GONE:
                log.info(
                    "informer %s/%s: %s; listing again", informer.cluster, self.resource, obj.get("message")
                )
                with informer.lock:
                    self.state.resource_version = None
                    self.state.connected = False
                raise _Relist()
            raise ApiException(status=code, reason=f"{obj.get('reason')}: {obj.get('message')}")
        resource_version = (obj.get("metadata") or {}).get("resourceVersion")
        with informer.lock:
            if event_type != "BOOKMARK":
                self._apply(str(event_type), obj)
                self.state.events += 1
            if resource_version:
                self.state.resource_version = resource_version
            informer.changed.notify_all()

    def interrupt(self) -> None:
        """Unblock a watch read (used by stop)."""
        response = self._response
        if response is None:
            return
        try:
            response.shutdown()
        except Exception:  # already closed
            log.debug("informer %s/%s: shutdown of the watch failed", self._informer.cluster, self.resource)


class _Relist(Exception):
    """410 Expired: the reflector lists again (not an error: nothing is logged as a warning)."""


def _lines(response) -> Iterator[bytes]:
    """Newline-separated events of a watch response, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        if b"\n" not in buffer:
            continue
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class ClusterInformer:
    """Nodes (filtered by the site's GPU node selector) and pods of one cluster, kept current by watches."""

    def __init__(
        self,
        core_api: kubernetes.client.CoreV1Api,
        cluster: str,
        site: Site,
        node_selector: Mapping[str, str] | None = None,
        request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ):
        self.cluster = cluster
        self.site = site
        self.request_timeout = request_timeout
        self.watch_timeout_s = watch_timeout_s
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopped = threading.Event()
        self.refused: str = ""
        self._cache = ClusterCache(cluster, site)
        selector = ",".join(f"{k}={v}" for k, v in sorted((node_selector or {}).items())) or None
        self._reflectors = (
            _Reflector(
                self, "nodes", core_api.list_node, self._cache.replace_nodes, self._cache.apply_node, selector
            ),
            _Reflector(
                self,
                "pods",
                core_api.list_pod_for_all_namespaces,
                self._cache.replace_pods,
                self._cache.apply_pod,
                None,
            ),
        )
        self._started = False

    def start(self) -> "ClusterInformer":
        if not self._started:
            self._started = True
            for reflector in self._reflectors:
                reflector.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        with self.lock:
            self.changed.notify_all()
        for reflector in self._reflectors:
            reflector.interrupt()
        if self._started:
            for reflector in self._reflectors:
                reflector.join(timeout)

    def refuse(self, why: str) -> None:
        with self.lock:
            self.refused = why
            self.changed.notify_all()
        log.warning(
            "informer %s: the API refuses to watch (%s); placement decisions list the cluster instead",
            self.cluster,
            why,
        )

    @property
    def usable(self) -> bool:
        """False once the API refused a watch or the informer is stopped."""
        return self._started and not self.refused and not self.stopped.is_set()

    @property
    def synced(self) -> bool:
        """Both resources listed at least once."""
        return all(r.state.synced for r in self._reflectors)

    def _ready_or_over(self) -> bool:
        return self._ready() or bool(self.refused) or self.stopped.is_set()

    def _ready(self) -> bool:
        return all(r.state.synced and r.state.connected for r in self._reflectors)

    def snapshot(self, wait_s: float = 0.0) -> ClusterSnapshot | None:
        """The cached snapshot, or None when the cache is not synced and watching (within ``wait_s``)."""
        with self.lock:
            if not self._ready() and wait_s > 0:
                self.changed.wait_for(
                    lambda: self._ready() or bool(self.refused) or self.stopped.is_set(), wait_s
                )
            if not self._ready():
                return None
            return self._cache.snapshot()

    def wait_for(self, predicate: Callable[[ClusterSnapshot], bool], timeout: float) -> ClusterSnapshot:
        """Block until a snapshot satisfies ``predicate`` (tests, benchmarks): TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                if self._ready():
                    snapshot = self._cache.snapshot()
                    if predicate(snapshot):
                        return snapshot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"informer {self.cluster}: condition not met within {timeout} s")
                self.changed.wait(remaining)

    def status(self) -> dict[str, Any]:
        """Per resource: synced, connected, lists, events, resourceVersion, last error."""
        with self.lock:
            return {r.resource: dataclasses.asdict(r.state) for r in self._reflectors} | {
                "refused": self.refused
            }
