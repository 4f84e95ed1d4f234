"""The simulator's kube-scheduler: pure functions from a pod spec and node views to a node or a reason.

Filters run in the order of the default kube-scheduler profile and a node is rejected by the first that fails:
NodeUnschedulable (cordoned), TaintToleration (untolerated NoSchedule/NoExecute taints, which includes the
`node.kubernetes.io/not-ready` taint of a NotReady node), NodeAffinity (nodeSelector and required node
affinity), NodeResourcesFit (requests of non-terminated pods on the node plus this pod's requests must fit in
allocatable, and the pod count in `pods`). When no node passes, the message has the kube-scheduler's shape:
``0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 2 Insufficient
nvidia.com/gpu.``

Among feasible nodes the winner is, in order: the highest sum of matching preferred node-affinity weights, the
fewest untolerated PreferNoSchedule taints, the most free cpu+memory after placement (LeastAllocated),
then the node name, so a decision is deterministic.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from astromined.sim.kube.quantity import to_units
from astromined.sim.kube.selectors import node_selector_term_matches

Resources = dict[str, int]


@dataclass
class NodeView:
    """What the scheduler needs to know about a node: its object and what is already requested on it."""

    node: Mapping[str, Any]
    allocatable: Resources
    used: Resources = field(default_factory=dict)
    pod_count: int = 0

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]


@dataclass(frozen=True)
class Decision:
    node: str | None
    message: str | None = None


def container_requests(container: Mapping[str, Any]) -> Resources:
    """A container's requests; a resource with a limit but no request requests its limit (as in
    Kubernetes)."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    return {name: to_units(name, value) for name, value in requests.items()}


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """Effective pod requests: sum over containers, at least the largest init container, plus overhead."""
    total: Resources = {}
    for container in spec.get("containers") or []:
        for name, value in container_requests(container).items():
            total[name] = total.get(name, 0) + value
    for container in spec.get("initContainers") or []:
        for name, value in container_requests(container).items():
            total[name] = max(total.get(name, 0), value)
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + to_units(name, value)
    return total


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if operator == "Exists":
        return key == "" or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def first_untolerated_taint(
    taints: Iterable[Mapping[str, Any]], tolerations: list[Mapping[str, Any]], effects: tuple[str, ...]
) -> Mapping[str, Any] | None:
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def matches_node_selection(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector (all labels equal) and requiredDuringScheduling node affinity (any term matches)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is not None:
        return any(node_selector_term_matches(term, node) for term in terms)
    return True


def preferred_weight(spec: Mapping[str, Any], node: Mapping[str, Any]) -> int:
    preferred = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ) or []
    return sum(
        int(term.get("weight", 0))
        for term in preferred
        if node_selector_term_matches(term["preference"], node)
    )


def _taint_text(taint: Mapping[str, Any]) -> str:
    return f"{{{taint['key']}: {taint.get('value') or ''}}}"


def filter_node(spec: Mapping[str, Any], requests: Resources, view: NodeView) -> list[str]:
    """Why the pod cannot go on this node (empty when it can)."""
    node = view.node
    tolerations = spec.get("tolerations") or []
    node_spec = node.get("spec") or {}
    if node_spec.get("unschedulable") and not any(
        tolerates(t, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}) for t in tolerations
    ):
        return ["node(s) were unschedulable"]
    taint = first_untolerated_taint(node_spec.get("taints") or [], tolerations, ("NoSchedule", "NoExecute"))
    if taint is not None:
        return [f"node(s) had untolerated taint {_taint_text(taint)}"]
    if not matches_node_selection(spec, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    reasons = []
    if view.pod_count + 1 > view.allocatable.get("pods", 110):
        reasons.append("Too many pods")
    for resource in sorted(requests):
        wanted = requests[resource]
        if wanted and view.used.get(resource, 0) + wanted > view.allocatable.get(resource, 0):
            reasons.append(f"Insufficient {resource}")
    return reasons


def _free_fraction(requests: Resources, view: NodeView) -> float:
    fractions = []
    for resource in ("cpu", "memory"):
        capacity = view.allocatable.get(resource, 0)
        if capacity:
            fractions.append((capacity - view.used.get(resource, 0) - requests.get(resource, 0)) / capacity)
    return sum(fractions) / len(fractions) if fractions else 0.0


def schedule(spec: Mapping[str, Any], views: Iterable[NodeView]) -> Decision:
    """Pick a node for a pod spec, or explain in kube-scheduler words why none fits."""
    requests = pod_requests(spec)
    histogram: Counter[str] = Counter()
    best_key: tuple | None = None
    best: str | None = None
    total = 0
    for view in views:
        total += 1
        reasons = filter_node(spec, requests, view)
        if reasons:
            histogram.update(reasons)
            continue
        taints = (view.node.get("spec") or {}).get("taints") or []
        prefer_no = sum(
            1
            for taint in taints
            if taint.get("effect") == "PreferNoSchedule"
            and not any(tolerates(t, taint) for t in spec.get("tolerations") or [])
        )
        key = (-preferred_weight(spec, view.node), prefer_no, -_free_fraction(requests, view), view.name)
        if best_key is None or key < best_key:
            best_key, best = key, view.name
    if best is not None:
        return Decision(best)
    return Decision(None, unschedulable_message(total, histogram))


def unschedulable_message(total: int, histogram: Mapping[str, int]) -> str:
    if not histogram:
        return f"0/{total} nodes are available."
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."
