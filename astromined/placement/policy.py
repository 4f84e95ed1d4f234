"""Where a step runs: the placement policy as a pure function of cluster snapshots.

``decide(snapshots, request, config, reservations)`` answers, for one step, which site and cluster it
goes to and why, or that it has to wait:

- a GPU step goes on-prem when a Ready, schedulable on-prem GPU node (labels matching the site's GPU
  node selector, every NoSchedule/NoExecute taint tolerated by the site's GPU toleration) has the GPUs
  (and the CPU and memory) the step asks for free — allocatable minus the requests of non-terminated
  pods bound to it minus the reservations of placements still in flight; otherwise it goes to the
  cloud, which scales its GPU node groups on demand;
- a step without GPUs stays on-prem, where the data lives, unless the on-prem API is unreachable;
- a step marked ``onprem_only`` (it holds a secret, e.g. the uplink signing key) never goes to the cloud:
  when no on-prem cluster can take it, the answer is ``wait``;
- when the on-prem site cannot take the step and no cloud cluster is reachable, the answer is ``wait``;
- a cluster whose latest infrastructure readiness (``readiness``: `SiteReadiness` per cluster, read by the
  executor from the readiness assets) says it cannot take the step is skipped with that reason: a site
  that is not ready takes no step, a site whose GPU rows failed (GPU nodes, device plugin) takes no GPU
  step. When readiness rules out every cluster the step may use, the answer is ``block``: the step fails
  at once with a message naming the clusters and their failed readiness components, instead of waiting.

No Dagster, no Kubernetes client: the executor builds the snapshots (``snapshot.py``) and keeps the
ledger of in-flight reservations; this module only decides. Decisions are deterministic: the same
snapshots (in any node order) and request give the same decision.
"""

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from astromined.readiness.result import SiteReadiness


class Site(StrEnum):
    ONPREM = "onprem"
    CLOUD = "cloud"


# Lower ranks are preferred: on-prem first (own hardware, data gravity), then the cloud.
SITE_PREFERENCE = (Site.ONPREM, Site.CLOUD)


class PolicyError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Resources:
    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(
            self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes, self.gpus + other.gpus
        )

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(
            self.cpu_millis - other.cpu_millis, self.memory_bytes - other.memory_bytes, self.gpus - other.gpus
        )

    def covers(self, other: "Resources") -> bool:
        return (
            self.cpu_millis >= other.cpu_millis
            and self.memory_bytes >= other.memory_bytes
            and self.gpus >= other.gpus
        )


@dataclasses.dataclass(frozen=True)
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str = ""


@dataclasses.dataclass(frozen=True)
class Toleration:
    """A pod toleration (Kubernetes semantics: an empty key with Exists tolerates everything)."""

    key: str = ""
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # empty: every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value

    def to_k8s(self) -> dict[str, str]:
        """The snake_case dict dagster-k8s's pod_spec_config expects."""
        toleration = {"key": self.key, "operator": self.operator}
        if self.operator == "Equal":
            toleration["value"] = self.value
        if self.effect:
            toleration["effect"] = self.effect
        return toleration


# Taint effects that keep a pod off a node unless tolerated (PreferNoSchedule only discourages).
BLOCKING_TAINT_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclasses.dataclass(frozen=True)
class NodeSnapshot:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: Resources
    requested: Resources  # summed requests of the non-terminated pods bound to this node
    ready: bool = True
    schedulable: bool = True  # False when cordoned (spec.unschedulable)

    @property
    def free(self) -> Resources:
        return self.allocatable - self.requested


@dataclasses.dataclass(frozen=True)
class PendingPod:
    """A non-terminated pod not yet bound to a node. ``placement_id`` is set for the executor's own pods."""

    name: str
    requests: Resources
    placement_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ClusterSnapshot:
    cluster: str  # kubeconfig context
    site: Site
    reachable: bool
    nodes: tuple[NodeSnapshot, ...] = ()
    pending: tuple[PendingPod, ...] = ()
    # Placement ids of the executor's pods already bound to a node: their requests are in node.requested.
    bound_placement_ids: frozenset[str] = frozenset()
    # Placement ids of every non-terminated executor pod seen (bound or pending).
    seen_placement_ids: frozenset[str] = frozenset()
    error: str = ""  # why the cluster is unreachable
    inspected: bool = True  # False: only reachability is known (nodes were not listed)

    @classmethod
    def unreachable(cls, cluster: str, site: Site, error: str) -> "ClusterSnapshot":
        return cls(cluster=cluster, site=site, reachable=False, error=error, inspected=False)

    @classmethod
    def reachable_only(cls, cluster: str, site: Site) -> "ClusterSnapshot":
        return cls(cluster=cluster, site=site, reachable=True, inspected=False)


@dataclasses.dataclass(frozen=True)
class SitePolicy:
    """How to find a site's GPU nodes: the labels they carry and the toleration that lets pods on them."""

    cluster: str
    site: Site
    gpu_node_selector: Mapping[str, str]
    gpu_toleration: Toleration | None = None


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    clusters: tuple[SitePolicy, ...]

    def __post_init__(self) -> None:
        names = [c.cluster for c in self.clusters]
        if len(set(names)) != len(names):
            raise PolicyError(f"each cluster may appear once in the placement config, got {names}")
        if not any(c.site is Site.ONPREM for c in self.clusters):
            raise PolicyError("the placement config needs at least one cluster with site 'onprem'")

    def for_cluster(self, cluster: str) -> SitePolicy:
        for policy in self.clusters:
            if policy.cluster == cluster:
                return policy
        raise PolicyError(f"cluster {cluster!r} is not in the placement config ({self.cluster_names})")

    @property
    def cluster_names(self) -> list[str]:
        return [c.cluster for c in self.clusters]

    def ordered(self) -> list[SitePolicy]:
        """Clusters in preference order: on-prem first, then cloud; config order within a site."""
        return sorted(self.clusters, key=lambda c: SITE_PREFERENCE.index(c.site))


@dataclasses.dataclass(frozen=True)
class StepRequest:
    step_key: str
    gpus: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0
    onprem_only: bool = False  # never placed on a cloud cluster (the step holds an on-prem secret)

    def __post_init__(self) -> None:
        if min(self.gpus, self.cpu_millis, self.memory_bytes) < 0:
            raise PolicyError(f"step {self.step_key}: resource requests must not be negative")

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_millis, self.memory_bytes, self.gpus)


@dataclasses.dataclass(frozen=True)
class Reservation:
    """A placement decided but not yet visible as a bound pod: it holds capacity on a node."""

    placement_id: str
    cluster: str
    node: str | None
    resources: Resources


class Action(StrEnum):
    PLACE = "place"
    WAIT = "wait"
    BLOCK = "block"  # readiness rules out every cluster the step may use


@dataclasses.dataclass(frozen=True)
class Decision:
    step_key: str
    action: Action
    reason: str
    gpus: int
    site: Site | None = None
    cluster: str | None = None
    node: str | None = None  # the node whose capacity the reservation holds (GPU steps on-prem)

    @property
    def is_wait(self) -> bool:
        return self.action is Action.WAIT

    @property
    def is_blocked(self) -> bool:
        return self.action is Action.BLOCK

    def reservation(self, placement_id: str, request: StepRequest) -> Reservation:
        if self.cluster is None:
            raise PolicyError(f"step {self.step_key}: a wait decision reserves nothing")
        return Reservation(placement_id, self.cluster, self.node, request.resources)


def decide(
    snapshots: Mapping[str, ClusterSnapshot],
    request: StepRequest,
    config: PolicyConfig,
    reservations: Iterable[Reservation] = (),
    readiness: Mapping[str, SiteReadiness] | None = None,
) -> Decision:
    """The placement of one step. ``snapshots`` is keyed by cluster (kubeconfig context); ``readiness``
    too (a cluster without an entry counts as ready: its readiness is unknown or too old)."""
    missing = [name for name in config.cluster_names if name not in snapshots]
    if missing:
        raise PolicyError(f"step {request.step_key}: no snapshot for cluster(s) {missing}")
    reservations = tuple(reservations)
    ordered = config.ordered()
    onprem = [c for c in ordered if c.site is Site.ONPREM]
    cloud = [c for c in ordered if c.site is Site.CLOUD]
    onprem_notes: list[str] = []
    not_ready = readiness_exclusions(config, request, readiness or {})
    candidates = [c.cluster for c in (onprem if request.onprem_only else ordered)]
    if candidates and all(c in not_ready for c in candidates):
        return Decision(
            step_key=request.step_key,
            action=Action.BLOCK,
            reason="blocked: no site can run this "
            + ("GPU step" if request.gpus else "step")
            + ": "
            + "; ".join(not_ready[c] for c in candidates),
            gpus=request.gpus,
        )

    for site_policy in onprem:
        snapshot = snapshots[site_policy.cluster]
        if site_policy.cluster in not_ready:
            onprem_notes.append(not_ready[site_policy.cluster])
            continue
        if not snapshot.reachable:
            onprem_notes.append(
                f"on-prem {site_policy.cluster} API unreachable ({snapshot.error or 'no answer'})"
            )
            continue
        if request.gpus == 0:
            return _place(
                request,
                site_policy,
                None,
                f"no GPU requested: stays on-prem on {site_policy.cluster}, with the data",
            )
        if not snapshot.inspected:
            raise PolicyError(
                f"step {request.step_key}: on-prem {site_policy.cluster} was probed, not inspected"
            )
        node, note = _best_gpu_node(snapshot, site_policy, request, reservations)
        if node is not None:
            return _place(request, site_policy, node.name, note)
        onprem_notes.append(note)

    why_not_onprem = "; ".join(onprem_notes)
    if request.onprem_only:
        return Decision(
            step_key=request.step_key,
            action=Action.WAIT,
            reason=f"{why_not_onprem}; the step may run on-prem only (it holds an on-prem secret): "
            "waiting for on-prem capacity or a reachable API",
            gpus=request.gpus,
        )
    unreachable_cloud: list[str] = []
    for site_policy in cloud:
        snapshot = snapshots[site_policy.cluster]
        if site_policy.cluster in not_ready:
            unreachable_cloud.append(not_ready[site_policy.cluster])
            continue
        if snapshot.reachable:
            return _place(
                request, site_policy, None, f"{why_not_onprem}: spills to cloud {site_policy.cluster}"
            )
        unreachable_cloud.append(
            f"cloud {site_policy.cluster} API unreachable ({snapshot.error or 'no answer'})"
        )
    if not cloud:
        unreachable_cloud.append("no cloud cluster configured")
    return Decision(
        step_key=request.step_key,
        action=Action.WAIT,
        reason=f"{why_not_onprem}; {'; '.join(unreachable_cloud)}: waiting for capacity or a reachable API",
        gpus=request.gpus,
    )


def readiness_exclusions(
    config: PolicyConfig, request: StepRequest, readiness: Mapping[str, SiteReadiness]
) -> dict[str, str]:
    """Clusters the readiness rules out for this step, with why (site, cluster, failed components)."""
    excluded: dict[str, str] = {}
    for site_policy in config.ordered():
        ready = readiness.get(site_policy.cluster)
        if ready is None or ready.usable_for(request.gpus):
            continue
        what = "not ready" if not ready.site_ready else "not ready for GPU steps"
        why = ready.reason or "no reason given"
        excluded[site_policy.cluster] = (
            f"{site_policy.site.value} {site_policy.cluster} {what} (readiness: {why})"
        )
    return excluded


def _place(request: StepRequest, site_policy: SitePolicy, node: str | None, reason: str) -> Decision:
    return Decision(
        step_key=request.step_key,
        action=Action.PLACE,
        reason=reason,
        gpus=request.gpus,
        site=site_policy.site,
        cluster=site_policy.cluster,
        node=node,
    )


def is_gpu_node(node: NodeSnapshot, site_policy: SitePolicy) -> bool:
    return all(node.labels.get(k) == v for k, v in site_policy.gpu_node_selector.items())


def tolerated(node: NodeSnapshot, toleration: Toleration | None) -> bool:
    return all(
        taint.effect not in BLOCKING_TAINT_EFFECTS or (toleration is not None and toleration.tolerates(taint))
        for taint in node.taints
    )


def node_free_after_reservations(
    snapshot: ClusterSnapshot, reservations: Sequence[Reservation]
) -> dict[str, Resources]:
    """Free capacity per node once the reservations not yet visible as bound pods are taken off."""
    free = {node.name: node.free for node in snapshot.nodes}
    for reservation in reservations:
        if (
            reservation.cluster == snapshot.cluster
            and reservation.node in free
            and reservation.placement_id not in snapshot.bound_placement_ids
        ):
            free[reservation.node] = free[reservation.node] - reservation.resources
    return free


def _best_gpu_node(
    snapshot: ClusterSnapshot,
    site_policy: SitePolicy,
    request: StepRequest,
    reservations: Sequence[Reservation],
) -> tuple[NodeSnapshot | None, str]:
    """Best fit: the eligible node with the fewest free GPUs that still holds the request (name breaks ties),
    so larger holes stay open for larger requests. Returns the node, or None and why none fits."""
    cluster = site_policy.cluster
    free = node_free_after_reservations(snapshot, reservations)
    gpu_nodes = [n for n in snapshot.nodes if is_gpu_node(n, site_policy)]
    if not gpu_nodes:
        return None, f"on-prem {cluster} has no node labelled {dict(site_policy.gpu_node_selector)}"
    eligible = [
        n for n in gpu_nodes if n.ready and n.schedulable and tolerated(n, site_policy.gpu_toleration)
    ]
    if not eligible:
        return None, f"on-prem {cluster} has no Ready, schedulable GPU node ({len(gpu_nodes)} GPU nodes)"
    # Pods waiting for a node compete for the same GPUs; our own waiting pods are already reservations.
    reserved_ids = {r.placement_id for r in reservations if r.cluster == cluster}
    foreign_pending = sum(
        (
            p.requests.gpus
            for p in snapshot.pending
            if p.placement_id is None or p.placement_id not in reserved_ids
        ),
        0,
    )
    site_free_gpus = sum(max(free[n.name].gpus, 0) for n in eligible)
    fitting = sorted(
        (n for n in eligible if free[n.name].covers(request.resources)),
        key=lambda n: (free[n.name].gpus, n.name),
    )
    if fitting and site_free_gpus - foreign_pending >= request.gpus:
        node = fitting[0]
        return node, (
            f"{request.gpus} GPU(s) free on on-prem {cluster} node {node.name} "
            f"({free[node.name].gpus} of {node.allocatable.gpus} free; {site_free_gpus} free on the site)"
        )
    if fitting:
        return None, (
            f"on-prem {cluster} has {site_free_gpus} free GPU(s) but {foreign_pending} are wanted by pods "
            f"waiting for a node; {request.gpus} requested"
        )
    most = max((free[n.name].gpus for n in eligible), default=0)
    if most >= request.gpus:
        return None, (
            f"on-prem {cluster} GPU nodes with {request.gpus} free GPU(s) lack the CPU or memory requested "
            f"({request.cpu_millis}m CPU, {request.memory_bytes} bytes)"
        )
    return None, (
        f"no Ready on-prem {cluster} GPU node has {request.gpus} GPU(s) free "
        f"(most free on one node: {max(most, 0)}, {site_free_gpus} free on the site)"
    )
