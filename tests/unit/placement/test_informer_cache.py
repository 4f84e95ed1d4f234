"""The informer store: any sequence of watch events gives the snapshot a list of the end state gives."""

from hypothesis import given, settings
from hypothesis import strategies as st
from support.kube_objects import node, pod

from astromined.placement.informer import ClusterCache
from astromined.placement.policy import Resources, Site
from astromined.placement.snapshot import snapshot_from_lists

NODES = ["gpu-1", "gpu-2", "gpu-3"]
POD_NAMES = [f"p{i}" for i in range(6)]
PHASES = ["Pending", "Running", "Succeeded", "Failed"]

pod_states = st.builds(
    lambda name, node_name, gpus, phase, placement: pod(
        name, node_name, gpus=gpus, phase=phase, placement_id=placement
    ),
    st.sampled_from(POD_NAMES),
    st.sampled_from([None, *NODES, "cpu-elsewhere"]),
    st.integers(0, 2),
    st.sampled_from(PHASES),
    st.sampled_from([None, "job-a", "job-b"]),
)
node_states = st.builds(
    lambda name, gpus, ready: node(name, gpus=gpus, ready=ready),
    st.sampled_from(NODES),
    st.integers(0, 4),
    st.booleans(),
)
events = st.one_of(
    st.tuples(st.just("pod"), st.sampled_from(["ADDED", "MODIFIED"]), pod_states),
    st.tuples(st.just("pod"), st.just("DELETED"), pod_states),
    st.tuples(st.just("node"), st.sampled_from(["ADDED", "MODIFIED"]), node_states),
    st.tuples(st.just("node"), st.just("DELETED"), node_states),
)


def replay(initial_nodes: list[dict], initial_pods: list[dict], sequence) -> tuple[ClusterCache, dict, dict]:
    """Apply the events to a cache and to plain dicts of the API's objects (the end state to list)."""
    cache = ClusterCache("eks-a", Site.ONPREM)
    cache.replace_nodes(initial_nodes)
    cache.replace_pods(initial_pods)
    nodes = {n["metadata"]["name"]: n for n in initial_nodes}
    pods = {p["metadata"]["name"]: p for p in initial_pods}
    for resource, event_type, obj in sequence:
        store = pods if resource == "pod" else nodes
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            if name not in store:
                continue  # the API only deletes what exists
            obj = store.pop(name)
        else:
            store[name] = obj
        (cache.apply_pod if resource == "pod" else cache.apply_node)(event_type, obj)
    return cache, nodes, pods


@settings(max_examples=300, deadline=None)
@given(
    initial_nodes=st.lists(node_states, max_size=3, unique_by=lambda n: n["metadata"]["name"]),
    initial_pods=st.lists(pod_states, max_size=6, unique_by=lambda p: p["metadata"]["name"]),
    sequence=st.lists(events, max_size=40),
)
def test_events_give_the_same_snapshot_as_listing_the_end_state(initial_nodes, initial_pods, sequence):
    cache, nodes, pods = replay(initial_nodes, initial_pods, sequence)
    listed = snapshot_from_lists("eks-a", Site.ONPREM, list(nodes.values()), list(pods.values()))
    cached = cache.snapshot()
    assert cached.nodes == listed.nodes
    assert sorted(cached.pending, key=lambda p: p.name) == sorted(listed.pending, key=lambda p: p.name)
    assert cached.bound_placement_ids == listed.bound_placement_ids
    assert cached.seen_placement_ids == listed.seen_placement_ids


def test_a_pod_that_finishes_frees_its_gpus_and_leaves_the_seen_ids():
    cache = ClusterCache("eks-a", Site.ONPREM)
    cache.replace_nodes([node("gpu-1", gpus=2)])
    cache.replace_pods([pod("step", "gpu-1", gpus=2, placement_id="job-a")])
    assert cache.snapshot().nodes[0].free.gpus == 0
    assert cache.snapshot().bound_placement_ids == {"job-a"}

    cache.apply_pod("MODIFIED", pod("step", "gpu-1", gpus=2, phase="Succeeded", placement_id="job-a"))

    snapshot = cache.snapshot()
    assert snapshot.nodes[0].free.gpus == 2
    assert snapshot.seen_placement_ids == frozenset() and snapshot.bound_placement_ids == frozenset()
    assert cache.requested == {}  # no zero entries left behind


def test_a_pending_pod_that_is_bound_moves_its_requests_onto_the_node():
    cache = ClusterCache("eks-a", Site.ONPREM)
    cache.replace_nodes([node("gpu-1", gpus=2)])
    cache.replace_pods([pod("step", None, gpus=1, phase="Pending", placement_id="job-a")])
    assert [p.placement_id for p in cache.snapshot().pending] == ["job-a"]
    assert cache.snapshot().bound_placement_ids == frozenset()

    cache.apply_pod("MODIFIED", pod("step", "gpu-1", gpus=1, placement_id="job-a"))

    snapshot = cache.snapshot()
    assert snapshot.pending == ()
    assert snapshot.nodes[0].requested == Resources(500, 0, 1)
    assert snapshot.bound_placement_ids == {"job-a"}


def test_a_relist_replaces_everything_the_watch_had():
    cache = ClusterCache("eks-a", Site.ONPREM)
    cache.replace_nodes([node("gpu-1"), node("gpu-2")])
    cache.replace_pods([pod("a", "gpu-1", placement_id="job-a"), pod("b", None, phase="Pending")])

    cache.replace_nodes([node("gpu-2")])
    cache.replace_pods([pod("c", "gpu-2", gpus=2)])

    snapshot = cache.snapshot()
    assert [n.name for n in snapshot.nodes] == ["gpu-2"]
    assert snapshot.nodes[0].free.gpus == 0
    assert snapshot.pending == () and snapshot.seen_placement_ids == frozenset()


def test_a_pod_with_a_malformed_quantity_counts_as_requesting_nothing_and_is_logged(caplog):
    cache = ClusterCache("eks-a", Site.ONPREM)
    cache.replace_nodes([node("gpu-1")])
    broken = pod("odd", "gpu-1")
    broken["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "lots"

    cache.apply_pod("ADDED", broken)

    assert cache.snapshot().nodes[0].requested == Resources()
    assert "pod astromined/odd on eks-a" in caplog.text
