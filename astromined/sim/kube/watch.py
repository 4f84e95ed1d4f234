"""``?watch=true`` on list paths: a stream of ``{"type": ..., "object": ...}`` lines, as kube-apiserver sends.

The object store (`astromined.sim.kube.store`) keeps a bounded log of changes (resourceVersion, kind, key,
and for deletions the last state of the object). A watch starting from a resourceVersion replays the log
after it and then follows it; one starting without a resourceVersion (or "0") first sends every matching
object as ADDED. A resourceVersion older than the log answers one ERROR event with a 410 ``Expired``
Status, as kube-apiserver does ("too old resource version"); clients then list again.

Two simplifications, both invisible to an informer:
- several changes of one object between two reads of the log arrive as one event carrying the latest state
  (the object's resourceVersion is that of the last change);
  (an object created and deleted in between arrives not at all: the client never had it);
- with a selector, an object that stops matching arrives as DELETED and one that starts matching as ADDED,
  decided per watch from what that watch has sent. For a watch resuming from a resourceVersion, objects
  that existed then and changed since are assumed known to the client (it listed with the same selector):
  a change that still matches is MODIFIED, one that no longer matches (or a deletion) is DELETED.

BOOKMARK events (``allowWatchBookmarks=true``) carry the current resourceVersion after
``bookmark_interval_s`` without other events. The stream ends after ``timeoutSeconds`` (default 1,800 s),
when the API goes down, or when the cluster stops.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

if TYPE_CHECKING:
    from astromined.sim.kube.store import Key, ObjectStore

DEFAULT_TIMEOUT_S = 1800.0
# How long a watch waits for the next change before it looks at its deadline and the API switch again.
POLL_S = 0.25


@dataclass(frozen=True)
class Change:
    """One entry of the cluster's change log. ``removed`` is the object as it was deleted (it no longer
    changes); ``None`` for a creation or an update, whose state is read from the store when sent."""

    resource_version: int
    kind: str
    key: "Key"
    removed: dict[str, Any] | None = None
    created: bool = False


class ResourceVersionExpired(Exception):
    """The requested resourceVersion is older than the change log."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")


@dataclass(frozen=True)
class WatchRequest:
    kind: str
    namespace: str | None
    labels: tuple
    fields: tuple
    resource_version: int | None  # None: send the current state first
    timeout_s: float
    bookmarks: bool

    @classmethod
    def from_query(cls, kind: str, namespace: str | None, query: Mapping[str, str]) -> "WatchRequest":
        raw_rv = (query.get("resourceVersion") or "").strip()
        try:
            rv = int(raw_rv) if raw_rv not in ("", "0") else None
        except ValueError:
            raise o.bad_request(f"resourceVersion: invalid value {raw_rv!r}: not an integer") from None
        raw_timeout = query.get("timeoutSeconds")
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            raise o.bad_request(f"timeoutSeconds: invalid value {raw_timeout!r}") from None
        return cls(
            kind=kind,
            namespace=namespace,
            labels=parse_label_selector(query.get("labelSelector")),
            fields=parse_field_selector(query.get("fieldSelector"), kind),
            resource_version=rv,
            timeout_s=max(0.0, timeout),
            bookmarks=is_true(query.get("allowWatchBookmarks")),
        )

    def in_scope(self, kind: str, key: "Key") -> bool:
        return kind == self.kind and (self.namespace is None or key[0] == self.namespace)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return labels_match(self.labels, obj["metadata"].get("labels")) and (
            not self.fields or fields_match(self.fields, obj, self.kind)
        )


def is_true(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends "True")."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def event_line(event_type: str, object_json: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + object_json + b"}\n"


def expired_line(error: ResourceVersionExpired) -> bytes:
    status = o.ApiError(410, "Expired", str(error)).status()
    return event_line("ERROR", json.dumps(status, separators=(",", ":")).encode())


class WatchStream:
    """The lines of one watch, produced in batches: each ``next()`` returns every event available now (or a
    bookmark, or ``b""`` when there was nothing to send), blocking up to ``POLL_S`` for a change."""

    def __init__(
        self,
        store: "ObjectStore",
        request: WatchRequest,
        bookmark_interval_s: float,
        is_open: Callable[[], bool],
    ):
        self._store = store
        self._request = request
        self._bookmark_interval_s = bookmark_interval_s
        self._is_open = is_open
        self._sent: set[Key] = set()  # keys the client has from this watch (or its list)
        self._maybe_known: set[Key] = set()  # resumed watch: existed at the start version, changed since
        self._deadline = time.monotonic() + request.timeout_s
        self._last_sent = time.monotonic()
        self._cursor, first = self._start()
        self._first: bytes | None = first

    def _start(self) -> tuple[int, bytes]:
        """The starting cursor and the first batch (the current state, or an ERROR 410)."""
        store, request = self._store, self._request
        with store.lock:
            if request.resource_version is None:
                lines = []
                for key in store.watch_keys(request.kind):
                    if not request.in_scope(request.kind, key):
                        continue
                    obj = store.watch_object(request.kind, key)
                    if obj is not None and request.matches(obj):
                        self._sent.add(key)
                        lines.append(event_line("ADDED", store.watch_json(request.kind, key)))
                return store.resource_version, b"".join(lines)
            try:
                changes = store.changes_after(request.resource_version)
            except ResourceVersionExpired as error:
                self._deadline = 0.0  # the stream ends after the error
                return request.resource_version, expired_line(error)
            first_change_created: dict[Key, bool] = {}
            for change in changes:
                if request.in_scope(change.kind, change.key):
                    first_change_created.setdefault(change.key, change.created)
            self._maybe_known = {key for key, created in first_change_created.items() if not created}
            # Objects unchanged since the requested version are known to the client if they match now.
            for key in store.watch_keys(request.kind):
                obj = store.watch_object(request.kind, key)
                if (
                    obj is not None
                    and request.in_scope(request.kind, key)
                    and int(obj["metadata"]["resourceVersion"]) <= request.resource_version
                    and request.matches(obj)
                ):
                    self._sent.add(key)
            return request.resource_version, b""

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                self._last_sent = time.monotonic()
                return first
        now = time.monotonic()
        if now >= self._deadline or not self._is_open():
            raise StopIteration
        store = self._store
        store.wait_for_change(self._cursor, min(POLL_S, self._deadline - now))
        with store.lock:
            try:
                changes = store.changes_after(self._cursor)
            except ResourceVersionExpired as error:
                # This watch fell behind the log (it was not read for a long time): end it like the API does.
                self._deadline = 0.0
                return expired_line(error)
            lines = [line for change in changes if (line := self._line(change))]
            self._cursor = store.resource_version
        if lines:
            self._last_sent = time.monotonic()
            return b"".join(lines)
        if self._request.bookmarks and time.monotonic() - self._last_sent >= self._bookmark_interval_s:
            self._last_sent = time.monotonic()
            return self._bookmark()
        return b""

    def _line(self, change: Change) -> bytes | None:
        """The event for one change, or None (out of scope, superseded by a later change, or not the
        watch's business)."""
        request, store = self._request, self._store
        if not request.in_scope(change.kind, change.key):
            return None
        key = change.key
        known = key in self._sent or key in self._maybe_known
        self._maybe_known.discard(key)
        if change.removed is not None:
            if not known:
                return None
            self._sent.discard(key)
            removed = {**change.removed, "metadata": dict(change.removed["metadata"])}
            removed["metadata"]["resourceVersion"] = str(change.resource_version)
            return event_line("DELETED", store.watch_json_of(change.kind, removed))
        obj = store.watch_object(change.kind, key)
        if obj is None or int(obj["metadata"]["resourceVersion"]) != change.resource_version:
            if known:
                self._maybe_known.add(key)  # still undecided: the later change decides
            return None  # changed again or deleted later: that later change sends it
        if request.matches(obj):
            self._sent.add(key)
            return event_line("MODIFIED" if known else "ADDED", store.watch_json(change.kind, key))
        if known:
            self._sent.discard(key)
            return event_line("DELETED", store.watch_json(change.kind, key))
        return None

    def _bookmark(self) -> bytes:
        info = self._store.kind_info(self._request.kind)
        body = {
            "kind": info.kind,
            "apiVersion": info.api_version,
            "metadata": {"resourceVersion": str(self._cursor)},
        }
        return event_line("BOOKMARK", json.dumps(body, separators=(",", ":")).encode())


class ChangeLog:
    """The bounded change log and the condition watches wait on. Appends happen under the store lock;
    waiting does not hold it (a watch waits for ``resource_version > cursor`` under its own condition, so a
    change made between a watch's read of the log and its wait is not missed)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: deque[Change] = deque()
        self.compacted_rv = 0  # changes up to this resourceVersion are no longer in the log
        self.condition = threading.Condition()

    def append(self, change: Change) -> None:
        self.entries.append(change)
        if len(self.entries) > self.capacity:
            self.compacted_rv = self.entries.popleft().resource_version
        with self.condition:
            self.condition.notify_all()

    def after(self, resource_version: int) -> list[Change]:
        if resource_version < self.compacted_rv:
            raise ResourceVersionExpired(resource_version, self.compacted_rv + 1)
        entries = self.entries
        # Entries are in resourceVersion order; the new ones are at the end.
        start = len(entries)
        while start > 0 and entries[start - 1].resource_version > resource_version:
            start -= 1
        return [entries[i] for i in range(start, len(entries))]
