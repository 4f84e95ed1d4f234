"""Snapshots from Kubernetes list JSON, quantities, and the placer's ledger of in-flight reservations."""

import json

import pytest
from support.kube_objects import node, pod

from astromined.placement.placer import RESERVATION_GRACE_S, Placer
from astromined.placement.policy import Action, Resources, Site, StepRequest
from astromined.placement.quantities import QuantityError, cpu_millis, memory_bytes, whole_units
from astromined.placement.settings import settings_from_config
from astromined.placement.snapshot import pod_requests, snapshot_from_lists

GIB = 2**30


def test_quantities() -> None:
    assert cpu_millis("500m") == 500 and cpu_millis("2") == 2000 and cpu_millis(1.5) == 1500
    assert (
        memory_bytes("4Gi") == 4 * GIB
        and memory_bytes("1G") == 10**9
        and memory_bytes("128974848") == 128974848
    )
    assert whole_units("2") == 2
    for bad in ("", "abc", "-1", "1.5"):
        with pytest.raises(QuantityError):
            whole_units(bad)


def test_snapshot_counts_requests_of_bound_non_terminated_pods() -> None:
    snapshot = snapshot_from_lists(
        "eks-a",
        Site.ONPREM,
        [node("n1"), node("n2", ready=False), node("n3", unschedulable=True)],
        [
            pod("a", "n1", placement_id="job-a"),
            pod("done", "n1", phase="Succeeded"),  # an API without field selectors still excludes it
            pod("waiting", None, gpus=2, phase="Pending", placement_id="job-w"),
        ],
    )
    by_name = {n.name: n for n in snapshot.nodes}
    assert by_name["n1"].requested == Resources(500, 0, 1)
    assert by_name["n1"].free.gpus == 1 and by_name["n1"].taints[0].key == "nvidia.com/gpu"
    assert not by_name["n2"].ready and not by_name["n3"].schedulable
    assert [p.name for p in snapshot.pending] == ["waiting"] and snapshot.pending[0].requests.gpus == 2
    assert snapshot.bound_placement_ids == {"job-a"}
    assert snapshot.seen_placement_ids == {"job-a", "job-w"}


def test_pod_requests_follow_the_scheduler() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}}},
            {"resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}},  # request defaults to the limit
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "4"}}}],
        "overhead": {"cpu": "100m"},
    }
    assert pod_requests(spec) == Resources(4100, GIB + 512 * 2**20, 1)


def test_bad_quantities_name_the_node_or_pod() -> None:
    bad_node = node("n1")
    bad_node["status"]["allocatable"]["nvidia.com/gpu"] = "lots"
    with pytest.raises(QuantityError, match=r"node n1 on eks-a: status\.allocatable"):
        snapshot_from_lists("eks-a", Site.ONPREM, [bad_node], [])
    bad_pod = pod("p", "n1")
    bad_pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "0.5"
    with pytest.raises(QuantityError, match="pod astromined/p on eks-a"):
        snapshot_from_lists("eks-a", Site.ONPREM, [node("n1")], [bad_pod])


class _Response:
    def __init__(self, payload: dict) -> None:
        self.data = json.dumps(payload).encode()

    def release_conn(self) -> None:
        pass


class ListingApi:
    """A CoreV1Api stand-in serving fixed node and pod lists (unit test only; the integration tests use
    the Kubernetes API simulator)."""

    def __init__(self, nodes: list[dict], pods: list[dict]) -> None:
        self.nodes, self.pods, self.calls = nodes, pods, []

    def list_node(self, **_kwargs):
        self.calls.append("list_node")
        return _Response({"items": self.nodes})

    def list_pod_for_all_namespaces(self, **kwargs):
        self.calls.append(f"list_pod:{kwargs.get('field_selector')}")
        return _Response({"items": self.pods})

    def read_namespace(self, name, **_kwargs):
        self.calls.append(f"read_namespace:{name}")
        return _Response({"metadata": {"name": name}})


def make_placer(onprem: ListingApi, cloud: ListingApi, clock, snapshot_ttl_s: float = 0.0) -> Placer:
    settings = settings_from_config({"snapshot_ttl_s": snapshot_ttl_s})  # defaults: eks-a on-prem, eks cloud
    return Placer(settings, {"eks-a": onprem, "eks": cloud}, "astromined", clock=clock)


def test_gpu_decisions_share_a_young_snapshot_and_the_ledger_keeps_them_exact() -> None:
    now = [0.0]
    onprem = ListingApi([node("n1", gpus=2)], [])
    placer = make_placer(onprem, ListingApi([], []), lambda: now[0], snapshot_ttl_s=2.0)
    request = StepRequest("train", gpus=1)
    sites = []
    for placement_id in ("job-1", "job-2", "job-3"):
        decision = placer.decide(request).decision
        placer.reserve(decision, placement_id, request)
        sites.append(decision.site)
    assert sites == [Site.ONPREM, Site.ONPREM, Site.CLOUD]  # one snapshot, three decisions, no over-commit
    assert onprem.calls.count("list_node") == 1
    now[0] = 2.0
    placer.decide(request)
    assert onprem.calls.count("list_node") == 2


def test_placer_reserves_until_the_pod_is_bound_and_prunes_stale_reservations() -> None:
    now = [0.0]
    onprem = ListingApi([node("n1", gpus=2)], [])
    cloud = ListingApi([], [])
    placer = make_placer(onprem, cloud, lambda: now[0])
    request = StepRequest("train", gpus=1)

    sites = []
    for placement_id in ("job-1", "job-2", "job-3"):
        decision = placer.decide(request).decision
        placer.reserve(decision, placement_id, request)
        sites.append(decision.site)
    assert sites == [Site.ONPREM, Site.ONPREM, Site.CLOUD]
    assert "list_pod:status.phase!=Succeeded,status.phase!=Failed" in onprem.calls
    assert cloud.calls == ["read_namespace:astromined"] * 1  # probed only when the decision went there

    # job-1's pod is bound to n1 (counted by the node now), job-2's pod is pending (still reserved).
    onprem.pods = [
        pod("p1", "n1", placement_id="job-1"),
        pod("p2", None, placement_id="job-2", phase="Pending"),
    ]
    placer.release("job-3")
    assert placer.decide(request).decision.site is Site.CLOUD
    assert {r.placement_id for r in placer.reservations()} == {"job-2"}

    # Both pods finished: job-2 was seen, is gone now, so its reservation goes; the GPUs are free again.
    onprem.pods = []
    assert placer.decide(request).decision.site is Site.ONPREM
    assert placer.reservations() == []

    # A reservation whose pod never shows up is dropped after the grace period.
    decision = placer.decide(request).decision
    placer.reserve(decision, "job-ghost", request)
    placer.reserve(placer.decide(request).decision, "job-ghost-2", request)
    assert placer.decide(request).decision.site is Site.CLOUD
    now[0] += RESERVATION_GRACE_S + 1
    assert placer.decide(request).decision.site is Site.ONPREM


def test_placer_waits_when_onprem_is_full_and_the_cloud_does_not_answer() -> None:
    class DownApi(ListingApi):
        def read_namespace(self, name, **_kwargs):
            raise ConnectionRefusedError("[Errno 111] Connection refused")

    placer = make_placer(ListingApi([node("n1", gpus=0)], []), DownApi([], []), lambda: 0.0)
    decision = placer.decide(StepRequest("train", gpus=1)).decision
    assert decision.action is Action.WAIT
    assert (
        "cloud eks API unreachable (ConnectionRefusedError: [Errno 111] Connection refused)"
        in decision.reason
    )
