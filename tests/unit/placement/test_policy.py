"""The placement policy: examples for each rule, and hypothesis properties over random clusters."""

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.placement.policy import (
    Action,
    ClusterSnapshot,
    NodeSnapshot,
    PendingPod,
    PolicyConfig,
    PolicyError,
    Reservation,
    Resources,
    Site,
    SitePolicy,
    StepRequest,
    Taint,
    Toleration,
    decide,
    is_gpu_node,
    node_free_after_reservations,
    tolerated,
)
from astromined.readiness.result import SiteReadiness

GPU_LABELS = {"astromined.io/gpu": "v100"}
GPU_TAINT = Taint("nvidia.com/gpu", "NoSchedule", "true")
GPU_TOLERATION = Toleration("nvidia.com/gpu", "Exists", effect="NoSchedule")
CONFIG = PolicyConfig(
    (
        SitePolicy("eks", Site.CLOUD, {"eks.amazonaws.com/nodegroup": "gpu"}, GPU_TOLERATION),
        SitePolicy("eks-a", Site.ONPREM, GPU_LABELS, GPU_TOLERATION),
    )
)
GIB = 2**30


def gpu_node(name: str, gpus: int = 2, used: int = 0, **overrides) -> NodeSnapshot:
    node = NodeSnapshot(
        name=name,
        labels=dict(GPU_LABELS),
        taints=(GPU_TAINT,),
        allocatable=Resources(32_000, 256 * GIB, gpus),
        requested=Resources(0, 0, used),
    )
    return dataclasses.replace(node, **overrides)


def onprem(*nodes: NodeSnapshot, **overrides) -> ClusterSnapshot:
    return dataclasses.replace(ClusterSnapshot("eks-a", Site.ONPREM, True, nodes=tuple(nodes)), **overrides)


CLOUD_UP = ClusterSnapshot.reachable_only("eks", Site.CLOUD)
CLOUD_DOWN = ClusterSnapshot.unreachable("eks", Site.CLOUD, "connection refused")
ONPREM_DOWN = ClusterSnapshot.unreachable("eks-a", Site.ONPREM, "connection refused")


def gpu_step(key: str = "train", gpus: int = 1) -> StepRequest:
    return StepRequest(key, gpus=gpus, cpu_millis=2000, memory_bytes=4 * GIB)


def test_gpu_step_goes_onprem_when_a_gpu_node_has_room() -> None:
    decision = decide({"eks-a": onprem(gpu_node("a", used=1)), "eks": CLOUD_UP}, gpu_step(), CONFIG)
    assert (decision.action, decision.site, decision.cluster, decision.node) == (
        Action.PLACE,
        Site.ONPREM,
        "eks-a",
        "a",
    )
    assert "node a" in decision.reason and decision.gpus == 1


def test_gpu_step_spills_to_cloud_when_onprem_gpus_are_taken() -> None:
    decision = decide({"eks-a": onprem(gpu_node("a", used=2)), "eks": CLOUD_UP}, gpu_step(), CONFIG)
    assert (decision.site, decision.cluster, decision.node) == (Site.CLOUD, "eks", None)
    assert "no Ready on-prem eks-a GPU node has 1 GPU(s) free" in decision.reason


@pytest.mark.parametrize(
    ("node", "why"),
    [
        (gpu_node("a", ready=False), "no Ready, schedulable GPU node"),
        (gpu_node("a", schedulable=False), "no Ready, schedulable GPU node"),
        (gpu_node("a", labels={"role": "cpu"}), "no node labelled"),
        (
            gpu_node("a", taints=(Taint("dedicated", "NoSchedule", "batch"),)),
            "no Ready, schedulable GPU node",
        ),
        (gpu_node("a", requested=Resources(31_000, 0, 0)), "lack the CPU or memory"),
    ],
)
def test_onprem_nodes_that_cannot_take_the_pod_are_skipped(node: NodeSnapshot, why: str) -> None:
    decision = decide({"eks-a": onprem(node), "eks": CLOUD_UP}, gpu_step(), CONFIG)
    assert decision.site is Site.CLOUD
    assert why in decision.reason


def test_prefer_no_schedule_taints_do_not_block() -> None:
    node = gpu_node("a", taints=(Taint("maintenance-soon", "PreferNoSchedule"),))
    assert decide({"eks-a": onprem(node), "eks": CLOUD_UP}, gpu_step(), CONFIG).site is Site.ONPREM


def test_best_fit_keeps_the_larger_hole_open() -> None:
    nodes = (gpu_node("big", gpus=2), gpu_node("half", gpus=2, used=1))
    decision = decide({"eks-a": onprem(*nodes), "eks": CLOUD_UP}, gpu_step(), CONFIG)
    assert decision.node == "half"
    two = decide({"eks-a": onprem(*nodes), "eks": CLOUD_UP}, gpu_step(gpus=2), CONFIG)
    assert two.node == "big"


def test_reservations_of_inflight_placements_are_respected() -> None:
    snapshot = onprem(gpu_node("a", gpus=2, used=1))
    first = decide({"eks-a": snapshot, "eks": CLOUD_UP}, gpu_step("one"), CONFIG)
    assert first.site is Site.ONPREM
    ledger = [first.reservation("job-one", gpu_step("one"))]
    second = decide({"eks-a": snapshot, "eks": CLOUD_UP}, gpu_step("two"), CONFIG, ledger)
    assert second.site is Site.CLOUD
    # Once the first pod is bound, its requests are in the node's `requested` and the reservation is not
    # counted a second time.
    bound = onprem(gpu_node("a", gpus=2, used=1), bound_placement_ids=frozenset({"job-one"}))
    assert node_free_after_reservations(bound, ledger)["a"].gpus == 1


def test_pods_waiting_for_a_node_compete_for_the_gpus() -> None:
    pending = (PendingPod("someone-else", Resources(0, 0, 1)),)
    snapshot = onprem(gpu_node("a", gpus=2, used=1), pending=pending)
    decision = decide({"eks-a": snapshot, "eks": CLOUD_UP}, gpu_step(), CONFIG)
    assert decision.site is Site.CLOUD and "waiting for a node" in decision.reason
    # Our own pending pod is already a reservation, not extra competition.
    ours = onprem(gpu_node("a", gpus=2, used=0), pending=(PendingPod("p", Resources(0, 0, 1), "job-one"),))
    ledger = [Reservation("job-one", "eks-a", "a", Resources(0, 0, 1))]
    assert decide({"eks-a": ours, "eks": CLOUD_UP}, gpu_step(), CONFIG, ledger).site is Site.ONPREM


def test_non_gpu_steps_stay_onprem_even_when_gpus_are_full() -> None:
    decision = decide(
        {"eks-a": onprem(gpu_node("a", used=2)), "eks": CLOUD_UP}, StepRequest("features"), CONFIG
    )
    assert (decision.site, decision.cluster) == (Site.ONPREM, "eks-a")
    assert "no GPU requested" in decision.reason


def test_onprem_unreachable_sends_every_step_to_the_cloud() -> None:
    for request in (StepRequest("features"), gpu_step()):
        decision = decide({"eks-a": ONPREM_DOWN, "eks": CLOUD_UP}, request, CONFIG)
        assert decision.site is Site.CLOUD
        assert "on-prem eks-a API unreachable (connection refused)" in decision.reason


def test_cloud_unreachable_and_onprem_full_waits_with_a_reason() -> None:
    decision = decide({"eks-a": onprem(gpu_node("a", used=2)), "eks": CLOUD_DOWN}, gpu_step(), CONFIG)
    assert decision.is_wait and decision.site is None and decision.cluster is None
    assert "cloud eks API unreachable (connection refused)" in decision.reason
    with pytest.raises(PolicyError, match="reserves nothing"):
        decision.reservation("x", gpu_step())


def test_both_unreachable_waits_even_without_gpus() -> None:
    assert decide({"eks-a": ONPREM_DOWN, "eks": CLOUD_DOWN}, StepRequest("f"), CONFIG).is_wait


def test_bad_config_and_inputs_are_named() -> None:
    with pytest.raises(PolicyError, match="site 'onprem'"):
        PolicyConfig((SitePolicy("eks", Site.CLOUD, {}),))
    with pytest.raises(PolicyError, match="once"):
        PolicyConfig((SitePolicy("x", Site.ONPREM, {}), SitePolicy("x", Site.CLOUD, {})))
    with pytest.raises(PolicyError, match=r"no snapshot for cluster\(s\) \['eks'\]"):
        decide({"eks-a": onprem()}, gpu_step(), CONFIG)
    with pytest.raises(PolicyError, match="negative"):
        StepRequest("s", gpus=-1)
    with pytest.raises(PolicyError, match="probed, not inspected"):
        decide(
            {"eks-a": ClusterSnapshot.reachable_only("eks-a", Site.ONPREM), "eks": CLOUD_UP},
            gpu_step(),
            CONFIG,
        )


def test_tolerations_follow_kubernetes_semantics() -> None:
    taint = Taint("nvidia.com/gpu", "NoSchedule", "true")
    assert Toleration("nvidia.com/gpu", "Exists").tolerates(taint)
    assert Toleration("nvidia.com/gpu", "Equal", "true", "NoSchedule").tolerates(taint)
    assert not Toleration("nvidia.com/gpu", "Equal", "false").tolerates(taint)
    assert not Toleration("nvidia.com/gpu", "Exists", effect="NoExecute").tolerates(taint)
    assert Toleration("", "Exists").tolerates(taint)
    assert Toleration("k", "Equal", "v", "NoSchedule").to_k8s() == {
        "key": "k",
        "operator": "Equal",
        "value": "v",
        "effect": "NoSchedule",
    }


# ---- properties -------------------------------------------------------------------------------------------

SITE_POLICY = CONFIG.for_cluster("eks-a")

taints = st.sampled_from(
    [(), (GPU_TAINT,), (Taint("dedicated", "NoSchedule", "x"),), (Taint("p", "PreferNoSchedule"),)]
)


@st.composite
def nodes(draw, name: str) -> NodeSnapshot:
    gpus = draw(st.integers(0, 8))
    return NodeSnapshot(
        name=name,
        labels=draw(st.sampled_from([dict(GPU_LABELS), {"role": "cpu"}])),
        taints=draw(taints),
        allocatable=Resources(16_000, 64 * GIB, gpus),
        requested=Resources(
            draw(st.integers(0, 16_000)), draw(st.integers(0, 64)) * GIB, draw(st.integers(0, gpus))
        ),
        ready=draw(st.booleans()),
        schedulable=draw(st.booleans()),
    )


@st.composite
def clusters(draw) -> dict[str, ClusterSnapshot]:
    count = draw(st.integers(0, 6))
    onprem_nodes = tuple(draw(nodes(f"n{i}")) for i in range(count))
    reachable = draw(st.integers(0, 9)) > 0
    onprem_snapshot = onprem(*onprem_nodes) if reachable else ONPREM_DOWN
    return {"eks-a": onprem_snapshot, "eks": draw(st.sampled_from([CLOUD_UP, CLOUD_DOWN]))}


requests = st.builds(
    StepRequest,
    step_key=st.sampled_from(["a", "b"]),
    gpus=st.integers(0, 4),
    cpu_millis=st.integers(0, 8000),
    memory_bytes=st.integers(0, 32).map(lambda g: g * GIB),
)


def fits_onprem(snapshot: ClusterSnapshot, request: StepRequest, ledger=()) -> bool:
    free = node_free_after_reservations(snapshot, list(ledger))
    return any(
        is_gpu_node(n, SITE_POLICY)
        and n.ready
        and n.schedulable
        and tolerated(n, SITE_POLICY.gpu_toleration)
        and free[n.name].covers(request.resources)
        for n in snapshot.nodes
    )


@settings(max_examples=150, deadline=None)
@given(clusters(), st.lists(requests, min_size=1, max_size=12))
def test_property_never_overcommits_a_node(snapshots, steps) -> None:
    """Deciding a burst of steps back to back (each reservation fed to the next decision) never puts more
    GPUs, CPU or memory on an on-prem node than it has free."""
    ledger: list[Reservation] = []
    for i, request in enumerate(steps):
        decision = decide(snapshots, request, CONFIG, ledger)
        if decision.site is Site.ONPREM and request.gpus:
            ledger.append(decision.reservation(f"p{i}", request))
    if snapshots["eks-a"].reachable:
        for node in snapshots["eks-a"].nodes:
            placed = sum((r.resources for r in ledger if r.node == node.name), Resources())
            if placed.gpus:
                assert node.free.covers(placed), (node, placed)


@settings(max_examples=150, deadline=None)
@given(clusters(), requests)
def test_property_prefers_onprem(snapshots, request) -> None:
    """A step goes to the cloud (or waits) only when on-prem cannot take it."""
    decision = decide(snapshots, request, CONFIG)
    snapshot = snapshots["eks-a"]
    onprem_can = snapshot.reachable and (request.gpus == 0 or fits_onprem(snapshot, request))
    if onprem_can:
        assert decision.site is Site.ONPREM
    if decision.site is Site.ONPREM and request.gpus:
        assert fits_onprem(snapshot, request)
    if decision.is_wait:
        assert not onprem_can and not snapshots["eks"].reachable
    if not onprem_can and snapshots["eks"].reachable:
        assert decision.site is Site.CLOUD


@settings(max_examples=100, deadline=None)
@given(clusters(), requests, st.randoms(use_true_random=False))
def test_property_deterministic_whatever_the_node_order(snapshots, request, rnd) -> None:
    first = decide(snapshots, request, CONFIG)
    assert decide(snapshots, request, CONFIG) == first
    snapshot = snapshots["eks-a"]
    shuffled = list(snapshot.nodes)
    rnd.shuffle(shuffled)
    reordered = {**snapshots, "eks-a": dataclasses.replace(snapshot, nodes=tuple(shuffled))}
    assert decide(reordered, request, CONFIG) == first


@settings(max_examples=100, deadline=None)
@given(clusters(), requests)
def test_property_non_gpu_steps_stay_onprem_when_reachable(snapshots, request) -> None:
    request = dataclasses.replace(request, gpus=0)
    decision = decide(snapshots, request, CONFIG)
    if snapshots["eks-a"].reachable:
        assert decision.site is Site.ONPREM
    else:
        assert decision.site is (Site.CLOUD if snapshots["eks"].reachable else None)


def test_back_to_back_decisions_use_every_free_gpu_then_spill() -> None:
    snapshot = onprem(gpu_node("a", gpus=2), gpu_node("b", gpus=2, used=1))
    ledger: list[Reservation] = []
    sites = []
    for i in itertools.count():
        request = gpu_step(f"s{i}")
        decision = decide({"eks-a": snapshot, "eks": CLOUD_UP}, request, CONFIG, ledger)
        sites.append(decision.site)
        if decision.site is Site.CLOUD:
            break
        ledger.append(decision.reservation(f"p{i}", request))
    assert sites == [Site.ONPREM] * 3 + [Site.CLOUD]


# ---- infrastructure readiness ------------------------------------------------------------------------------

GPU_NOT_READY = SiteReadiness("eks-a", site_ready=True, gpu_ready=False, reason="device_plugin: not found")
SITE_NOT_READY = SiteReadiness(
    "eks", site_ready=False, gpu_ready=False, reason="executor_rbac: may not: create jobs"
)


@pytest.mark.fault("bad-config", "on-prem GPU readiness failed: a GPU step goes to the cloud with the reason")
def test_gpu_step_skips_an_onprem_site_not_ready_for_gpus() -> None:
    decision = decide(
        {"eks-a": onprem(gpu_node("g1")), "eks": CLOUD_UP},
        gpu_step(),
        CONFIG,
        readiness={"eks-a": GPU_NOT_READY},
    )
    assert decision.site is Site.CLOUD and decision.cluster == "eks"
    assert "onprem eks-a not ready for GPU steps (readiness: device_plugin: not found)" in decision.reason


def test_non_gpu_step_stays_on_a_site_whose_only_gpu_rows_failed() -> None:
    request = StepRequest("features", cpu_millis=1000)
    decision = decide(
        {"eks-a": onprem(), "eks": CLOUD_UP}, request, CONFIG, readiness={"eks-a": GPU_NOT_READY}
    )
    assert decision.site is Site.ONPREM


@pytest.mark.fault("bad-config", "cloud not ready, on-prem full: the GPU step waits, the reason names eks")
def test_cloud_not_ready_and_onprem_full_waits() -> None:
    full = onprem(gpu_node("g1", used=2))
    decision = decide({"eks-a": full, "eks": CLOUD_UP}, gpu_step(), CONFIG, readiness={"eks": SITE_NOT_READY})
    assert decision.is_wait
    assert "cloud eks not ready (readiness: executor_rbac: may not: create jobs)" in decision.reason


@pytest.mark.fault("bad-config", "no site is ready for GPU steps: training is blocked, naming both sites")
def test_no_site_ready_blocks_with_component_site_and_reason() -> None:
    decision = decide(
        {"eks-a": onprem(gpu_node("g1")), "eks": CLOUD_UP},
        gpu_step(),
        CONFIG,
        readiness={"eks-a": GPU_NOT_READY, "eks": SITE_NOT_READY},
    )
    assert decision.is_blocked and decision.cluster is None
    assert decision.reason == (
        "blocked: no site can run this GPU step: "
        "onprem eks-a not ready for GPU steps (readiness: device_plugin: not found); "
        "cloud eks not ready (readiness: executor_rbac: may not: create jobs)"
    )


def test_onprem_only_step_blocks_when_onprem_is_not_ready() -> None:
    request = dataclasses.replace(gpu_step("uplink", gpus=0), onprem_only=True)
    not_ready = SiteReadiness("eks-a", site_ready=False, gpu_ready=False, reason="namespace: missing")
    decision = decide({"eks-a": onprem(), "eks": CLOUD_UP}, request, CONFIG, readiness={"eks-a": not_ready})
    assert decision.is_blocked
    assert "onprem eks-a not ready (readiness: namespace: missing)" in decision.reason


site_readiness = st.builds(
    lambda cluster, site_ok, gpu_ok: SiteReadiness(cluster, site_ok, site_ok and gpu_ok, "x: failed"),
    st.just(""),
    st.booleans(),
    st.booleans(),
)


@st.composite
def readiness_maps(draw) -> dict[str, SiteReadiness]:
    result = {}
    for cluster in ("eks-a", "eks"):
        entry = draw(st.one_of(st.none(), site_readiness))
        if entry is not None:
            result[cluster] = dataclasses.replace(entry, cluster=cluster)
    return result


@settings(max_examples=200, deadline=None)
@given(clusters(), requests, readiness_maps())
def test_property_never_places_where_readiness_rules_it_out(snapshots, request, readiness) -> None:
    decision = decide(snapshots, request, CONFIG, readiness=readiness)
    if decision.cluster is not None:
        entry = readiness.get(decision.cluster)
        assert entry is None or entry.usable_for(request.gpus)
    usable = [c for c in ("eks-a", "eks") if c not in readiness or readiness[c].usable_for(request.gpus)]
    assert decision.is_blocked == (not usable)
    if decision.is_blocked:
        assert all(f" {c} not ready" in decision.reason for c in ("eks-a", "eks"))


@settings(max_examples=150, deadline=None)
@given(clusters(), requests)
def test_property_all_ready_readiness_changes_nothing(snapshots, request) -> None:
    ready = {c: SiteReadiness(c) for c in ("eks-a", "eks")}
    assert decide(snapshots, request, CONFIG, readiness=ready) == decide(snapshots, request, CONFIG)


@settings(max_examples=150, deadline=None)
@given(clusters(), requests, readiness_maps())
def test_property_readiness_only_removes_clusters(snapshots, request, readiness) -> None:
    """Excluding a cluster by readiness decides as if it were unreachable with that reason (outside block)."""
    decision = decide(snapshots, request, CONFIG, readiness=readiness)
    if decision.is_blocked:
        return
    as_unreachable = {
        c: (
            ClusterSnapshot.unreachable(c, snapshots[c].site, "readiness")
            if c in readiness and not readiness[c].usable_for(request.gpus)
            else snapshots[c]
        )
        for c in snapshots
    }
    expected = decide(as_unreachable, request, CONFIG)
    assert (decision.action, decision.cluster, decision.node) == (
        expected.action,
        expected.cluster,
        expected.node,
    )
