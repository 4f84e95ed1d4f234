"""Snapshots + policy + the ledger of in-flight placements: one decision per step, never over-committing.

The executor launches steps one after another, faster than the Kubernetes scheduler binds their pods. A
placement is therefore *reserved* in a ledger the moment it is decided and stays there until its pod shows
up bound to a node in a later snapshot (its requests are then counted by the node itself), its pod is gone
(finished or deleted), or the executor releases it. Every decision sees every earlier reservation.

GPU decisions read the on-prem clusters from a watch-based cache (``informer.py``) started by
`start_watching`, plus one reachability probe per decision; without it (not started, not synced yet, the watch
refused, or disconnected) they list the cluster, sharing a listed snapshot for ``snapshot_ttl_s``.

No Dagster here: the executor (``executor.py``) passes in one CoreV1Api per cluster.
"""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping

import kubernetes.client

from astromined.placement.informer import ClusterInformer
from astromined.placement.policy import (
    ClusterSnapshot,
    Decision,
    Reservation,
    Site,
    StepRequest,
    decide,
)
from astromined.placement.settings import PlacementSettings
from astromined.placement.snapshot import probe, take_snapshot
from astromined.readiness.result import SiteReadiness

log = logging.getLogger(__name__)

# A reservation whose pod never appeared among the non-terminated pods after this long is stale: the pod
# ran and finished between two snapshots, or its job was deleted.
RESERVATION_GRACE_S = 60.0


@dataclasses.dataclass
class _LedgerEntry:
    reservation: Reservation
    created: float
    seen: bool = False


@dataclasses.dataclass(frozen=True)
class DecisionTrace:
    """A decision with what it cost: the snapshots it looked at and how long snapshot + policy took."""

    decision: Decision
    snapshots: Mapping[str, ClusterSnapshot]
    seconds: float
    # How each cluster was looked at: "watch cache", "list", "cached list", "probe", "unusable".
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def source_summary(self) -> str:
        return ", ".join(f"{cluster}: {source}" for cluster, source in sorted(self.sources.items()))


class Placer:
    def __init__(
        self,
        settings: PlacementSettings,
        core_apis: Mapping[str, kubernetes.client.CoreV1Api],
        namespace: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = [c.context for c in settings.clusters if c.context not in core_apis]
        if missing:
            raise ValueError(f"no Kubernetes API client for cluster(s) {missing}")
        self._settings = settings
        self._core_apis = dict(core_apis)
        self._namespace = namespace
        self._clock = clock
        self._timeout = (min(3.0, settings.api_timeout_s), settings.api_timeout_s)
        self._ledger: dict[str, _LedgerEntry] = {}
        self._snapshots: dict[str, tuple[float, ClusterSnapshot]] = {}  # listed snapshots by cluster
        self._informers: dict[str, ClusterInformer] = {}
        self._lock = threading.Lock()

    def start_watching(self) -> None:
        """Start the watch caches of the on-prem clusters (idempotent). Their first list runs in the
        background; a GPU decision before it completes waits for it up to ``api_timeout_s``."""
        if not self._settings.watch_cluster_state:
            return
        for cluster in self._settings.clusters:
            if cluster.site is Site.ONPREM and cluster.context not in self._informers:
                self._informers[cluster.context] = ClusterInformer(
                    self._core_apis[cluster.context],
                    cluster.context,
                    cluster.site,
                    node_selector=cluster.gpu_node_selector,
                    request_timeout=self._timeout,
                ).start()

    def informer(self, context: str) -> ClusterInformer | None:
        return self._informers.get(context)

    def close(self) -> None:
        """Stop the watch caches."""
        informers, self._informers = list(self._informers.values()), {}
        for informer in informers:
            informer.stop()

    def reservations(self) -> list[Reservation]:
        with self._lock:
            return [entry.reservation for entry in self._ledger.values()]

    def reserve(self, decision: Decision, placement_id: str, request: StepRequest) -> None:
        if decision.is_wait:
            return
        with self._lock:
            self._ledger[placement_id] = _LedgerEntry(
                decision.reservation(placement_id, request), self._clock()
            )

    def release(self, placement_id: str) -> None:
        with self._lock:
            self._ledger.pop(placement_id, None)

    def decide(
        self,
        request: StepRequest,
        unusable: Mapping[str, str] | None = None,
        readiness: Mapping[str, SiteReadiness] | None = None,
    ) -> DecisionTrace:
        """Decide one step. ``unusable`` maps clusters that must not be used to why (e.g. the step's pod sat
        Unschedulable there): they enter the policy as unreachable with that reason. ``readiness`` is the
        latest infrastructure readiness per cluster (clusters without an entry count as ready).

        Cheap where it can be: a step without GPUs only probes the on-prem API; the cloud is probed only
        when the first decision sends the step there (the second decision, with the probe, is exact).
        """
        started = time.perf_counter()
        unusable = dict(unusable or {})
        snapshots: dict[str, ClusterSnapshot] = {}
        sources: dict[str, str] = {}
        for cluster in self._settings.clusters:
            if cluster.context in unusable:
                snapshots[cluster.context] = ClusterSnapshot.unreachable(
                    cluster.context, cluster.site, unusable[cluster.context]
                )
                sources[cluster.context] = "unusable"
            elif cluster.site is Site.ONPREM:
                snapshots[cluster.context] = self._look(
                    cluster.context, cluster.site, full=request.gpus > 0, sources=sources
                )
            else:
                snapshots[cluster.context] = ClusterSnapshot.reachable_only(cluster.context, cluster.site)
        config = self._settings.policy_config
        decision = decide(
            snapshots, request, config, self._current_reservations(snapshots.values()), readiness
        )
        probed: set[str] = set()
        while (
            decision.site is Site.CLOUD
            and decision.cluster not in probed
            and decision.cluster not in unusable
        ):
            probed.add(decision.cluster)
            snapshots[decision.cluster] = self._look(
                decision.cluster, Site.CLOUD, full=False, sources=sources
            )
            decision = decide(
                snapshots, request, config, self._current_reservations(snapshots.values()), readiness
            )
        if decision.is_wait:
            # Every cloud cluster the policy could fall back on has now been looked at for real.
            for cluster in self._settings.clusters:
                if cluster.site is Site.CLOUD and cluster.context not in unusable.keys() | probed:
                    snapshots[cluster.context] = self._look(
                        cluster.context, Site.CLOUD, full=False, sources=sources
                    )
            decision = decide(
                snapshots, request, config, self._current_reservations(snapshots.values()), readiness
            )
        return DecisionTrace(decision, snapshots, time.perf_counter() - started, sources)

    def _look(self, context: str, site: Site, *, full: bool, sources: dict[str, str]) -> ClusterSnapshot:
        core = self._core_apis[context]
        if not full:
            sources[context] = "probe"
            return probe(core, context, site, self._namespace, timeout=self._timeout)
        informer = self._informers.get(context)
        if informer is not None and informer.usable:
            # The cache cannot tell a silent network partition from a quiet cluster: one cheap read says
            # whether the API answers now.
            reachable = probe(core, context, site, self._namespace, timeout=self._timeout)
            if not reachable.reachable:
                sources[context] = "probe"
                return reachable
            # Before its first list completes, wait for it rather than listing twice.
            wait_s = 0.0 if informer.synced else self._settings.api_timeout_s
            cached = informer.snapshot(wait_s=wait_s)
            if cached is not None:
                sources[context] = "watch cache"
                return cached
        now = self._clock()
        cached_list = self._snapshots.get(context)
        if cached_list is not None and now - cached_list[0] < self._settings.snapshot_ttl_s:
            sources[context] = "cached list"
            return cached_list[1]
        sources[context] = "list"
        selector = self._settings.cluster(context).gpu_node_selector
        snapshot = take_snapshot(core, context, site, timeout=self._timeout, node_selector=selector)
        if snapshot.reachable:
            self._snapshots[context] = (now, snapshot)
        else:
            self._snapshots.pop(context, None)
        return snapshot

    def _current_reservations(self, snapshots: Collection[ClusterSnapshot]) -> list[Reservation]:
        """The ledger, pruned with what the snapshots show: bound pods count on their node already."""
        now = self._clock()
        by_cluster = {s.cluster: s for s in snapshots if s.reachable and s.inspected}
        with self._lock:
            for placement_id, entry in list(self._ledger.items()):
                snapshot = by_cluster.get(entry.reservation.cluster)
                if snapshot is None:
                    continue
                if placement_id in snapshot.bound_placement_ids:
                    del self._ledger[placement_id]
                elif placement_id in snapshot.seen_placement_ids:
                    entry.seen = True
                elif entry.seen or now - entry.created > RESERVATION_GRACE_S:
                    # Seen before and gone now, or never showed up: the pod finished or was deleted.
                    del self._ledger[placement_id]
            return [entry.reservation for entry in self._ledger.values()]
