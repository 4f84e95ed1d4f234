from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.sim.kube.quantity import to_units
from astromined.sim.kube.scheduler import NodeView, filter_node, pod_requests, schedule, tolerates

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def view(name, labels=None, taints=None, cpu="8", memory="32Gi", gpus=0, used=None, unschedulable=False):
    allocatable = {
        "cpu": cpu,
        "memory": memory,
        "pods": "110",
        **({"nvidia.com/gpu": str(gpus)} if gpus else {}),
    }
    node = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
    }
    return NodeView(node, {k: to_units(k, v) for k, v in allocatable.items()}, dict(used or {}))


def pod(cpu=None, gpus=0, node_selector=None, tolerations=None, affinity=None, limits_only=False):
    resources = {}
    if cpu:
        resources["limits" if limits_only else "requests"] = {"cpu": cpu}
    if gpus:
        resources.setdefault("limits", {})["nvidia.com/gpu"] = str(gpus)
    spec = {"containers": [{"name": "c", "image": "x", "resources": resources}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    return spec


def test_limits_without_requests_request_the_limits_and_init_containers_take_the_max():
    assert pod_requests(pod(cpu="2", limits_only=True)) == {"cpu": 2000}
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "500m"}}},
        ],
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
        "overhead": {"cpu": "100m"},
    }
    assert pod_requests(spec) == {"cpu": 3100, "memory": 2**30}


def test_node_selector_and_required_affinity_filter_nodes():
    nodes = [view("a", {"gpu": "v100"}), view("b", {"gpu": "a10g"}), view("c")]
    assert schedule(pod(node_selector={"gpu": "a10g"}), nodes).node == "b"
    required = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["v100", "a10g"]}]},
            ]
        }
    }
    assert schedule(pod(affinity=required), nodes).node == "c"
    decision = schedule(pod(node_selector={"gpu": "h100"}), nodes)
    assert decision.node is None
    assert decision.message == "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def test_preferred_affinity_picks_the_highest_weight_sum():
    nodes = [
        view("onprem", {"site": "onprem", "gpu": "v100"}),
        view("cloud", {"site": "cloud", "gpu": "v100"}),
    ]
    preferred = {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 80,
                "preference": {"matchExpressions": [{"key": "site", "operator": "In", "values": ["onprem"]}]},
            },
            {
                "weight": 10,
                "preference": {"matchExpressions": [{"key": "site", "operator": "In", "values": ["cloud"]}]},
            },
            {"weight": 5, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}},
        ]
    }
    assert schedule(pod(affinity=preferred), nodes).node == "onprem"
    preferred["preferredDuringSchedulingIgnoredDuringExecution"][1]["weight"] = 90
    assert schedule(pod(affinity=preferred), nodes).node == "cloud"


def test_taints_and_tolerations():
    assert tolerates(
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
        {"key": "k", "value": "v", "effect": "NoSchedule"},
    )
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert tolerates({"operator": "Exists"}, {"key": "anything", "effect": "NoExecute"})
    assert not tolerates(
        {"key": "k", "operator": "Exists", "effect": "NoSchedule"}, {"key": "k", "effect": "NoExecute"}
    )
    gpu_node = view("gpu", taints=[GPU_TAINT], gpus=2)
    no_execute = view("quarantine", taints=[{"key": "bad", "effect": "NoExecute"}])
    assert schedule(pod(), [gpu_node, no_execute]).message == (
        "0/2 nodes are available: 1 node(s) had untolerated taint {bad: }, "
        "1 node(s) had untolerated taint {nvidia.com/gpu: present}."
    )
    assert schedule(pod(gpus=1, tolerations=[GPU_TOLERATION]), [gpu_node, no_execute]).node == "gpu"
    soft = view("soft", taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    assert schedule(pod(), [soft, view("plain")]).node == "plain"
    assert schedule(pod(), [soft]).node == "soft"


def test_resource_fit_counts_what_is_already_requested():
    full = view("full", taints=[GPU_TAINT], gpus=2, used={"nvidia.com/gpu": 2})
    free = view("free", taints=[GPU_TAINT], gpus=2, used={"nvidia.com/gpu": 1})
    cpu = view("cpu")
    spec = pod(gpus=1, tolerations=[GPU_TOLERATION])
    assert schedule(spec, [full, free, cpu]).node == "free"
    decision = schedule(pod(gpus=2, tolerations=[GPU_TOLERATION]), [full, free, cpu])
    assert decision.message == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    assert filter_node(pod(cpu="9"), {"cpu": 9000}, cpu) == ["Insufficient cpu"]
    cordoned = view("cordoned", unschedulable=True)
    assert filter_node(pod(), {}, cordoned) == ["node(s) were unschedulable"]


def test_not_ready_taint_blocks_scheduling_even_with_default_no_execute_tolerations():
    not_ready = view("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    spec = pod(
        tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    )
    assert schedule(spec, [not_ready]).message == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    )


@settings(max_examples=60, deadline=None)
@given(
    nodes=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 16), st.booleans()), min_size=1, max_size=6),
    pods=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 8), st.booleans()), min_size=1, max_size=25),
)
def test_never_over_commits_and_only_refuses_when_nothing_fits(nodes, pods):
    views = [
        view(f"n{i}", taints=[GPU_TAINT] if tainted else [], cpu=str(cpu), gpus=gpus)
        for i, (gpus, cpu, tainted) in enumerate(nodes)
    ]
    for gpus, cpu, tolerant in pods:
        spec = pod(cpu=str(cpu), gpus=gpus, tolerations=[GPU_TOLERATION] if tolerant else None)
        requests = pod_requests(spec)
        decision = schedule(spec, views)
        if decision.node is None:
            for v in views:
                tainted = bool(v.node["spec"]["taints"])
                fits = all(
                    v.used.get(r, 0) + amount <= v.allocatable.get(r, 0) for r, amount in requests.items()
                )
                assert not fits or (tainted and not tolerant)
            continue
        chosen = next(v for v in views if v.name == decision.node)
        assert not chosen.node["spec"]["taints"] or tolerant
        chosen.pod_count += 1
        for resource, amount in requests.items():
            chosen.used[resource] = chosen.used.get(resource, 0) + amount
        for v in views:
            for resource, amount in v.used.items():
                assert amount <= v.allocatable.get(resource, 0)
