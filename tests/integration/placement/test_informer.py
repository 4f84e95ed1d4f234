"""The watch cache against a simulated cluster over HTTP: it follows changes, survives the API going away
(resume or relist), and says when the API refuses to be watched."""

import collections
import threading
import time
from pathlib import Path

import kubernetes
import pytest
from support.waiting import wait_until

from astromined.placement.informer import ClusterInformer
from astromined.placement.policy import Site
from astromined.placement.snapshot import PLACEMENT_ID_LABEL, load_api_client, take_snapshot
from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

GPU_LABELS = {"nvidia.com/gpu.present": "true"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPEC = {
    "name": "eks-a",
    "site": "onprem",
    "nodes": [
        {
            "name": "v100",
            "count": 3,
            "labels": GPU_LABELS,
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            "allocatable": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"},
        },
        {"name": "cpu", "count": 2, "allocatable": {"cpu": "8", "memory": "32Gi"}},
    ],
}


def gpu_pod(name: str, node: str | None = None, gpus: int = 1, placement_id: str | None = None) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {PLACEMENT_ID_LABEL: placement_id} if placement_id else {},
        },
        "spec": {
            **({"nodeName": node} if node else {}),
            "tolerations": [TOLERATION],
            "containers": [
                {"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
            ],
        },
    }


def start(tmp_path: Path, **options) -> tuple[SimulatedCluster, kubernetes.client.CoreV1Api]:
    cluster = SimulatedCluster(ClusterSpec.from_dict(SPEC), workdir=tmp_path, **options).start()
    kubeconfig = write_kubeconfig({"eks-a": cluster}, tmp_path / "kubeconfig", current_context="eks-a")
    return cluster, kubernetes.client.CoreV1Api(load_api_client(str(kubeconfig), "eks-a"))


@pytest.fixture
def cluster_and_api(tmp_path: Path):
    cluster, core = start(tmp_path)
    yield cluster, core
    cluster.stop()


def informer_for(core) -> ClusterInformer:
    return ClusterInformer(core, "eks-a", Site.ONPREM, GPU_LABELS, request_timeout=(2.0, 5.0)).start()


def listed(core):
    return take_snapshot(core, "eks-a", Site.ONPREM, node_selector=GPU_LABELS)


def wait_until_equal(informer: ClusterInformer, core, timeout: float = 20):
    """The cache equals a fresh list (the ground truth), within `timeout`."""

    def equal():
        truth, cached = listed(core), informer.snapshot()
        if cached is None or cached.nodes != truth.nodes:
            return None
        return cached if cached.seen_placement_ids == truth.seen_placement_ids else None

    return wait_until(
        equal,
        timeout,
        lambda: f"the cache {informer.snapshot()} to equal the list {listed(core)}; {informer.status()}",
    )


def test_the_cache_follows_pods_being_bound_finishing_and_deleted(cluster_and_api):
    cluster, core = cluster_and_api
    informer = informer_for(core)
    try:
        assert informer.snapshot(wait_s=20) is not None
        assert {n.name for n in informer.snapshot().nodes} == {"v100-01", "v100-02", "v100-03"}

        cluster.add_bound_pods([gpu_pod("held", "v100-01", gpus=2)])
        step = gpu_pod("step", placement_id="job-1")
        step["spec"]["containers"][0]["command"] = ["sleep", "30"]
        core.create_namespaced_pod("default", step)
        snapshot = informer.wait_for(lambda s: "job-1" in s.bound_placement_ids, timeout=20)
        free = {n.name: n.free.gpus for n in snapshot.nodes}
        assert free["v100-01"] == 0 and sum(free.values()) == 3
        wait_until_equal(informer, core)

        core.delete_namespaced_pod("held", "default", grace_period_seconds=0)
        snapshot = informer.wait_for(lambda s: {n.name: n.free.gpus for n in s.nodes}["v100-01"] == 2, 20)
        wait_until_equal(informer, core)
        assert informer.status()["pods"]["lists"] == 1  # followed by watching alone
    finally:
        informer.stop()


def test_api_down_makes_the_cache_unusable_and_it_resumes_with_what_changed_meanwhile(cluster_and_api):
    cluster, core = cluster_and_api
    informer = informer_for(core)
    try:
        assert informer.snapshot(wait_s=20) is not None
        cluster.set_api_down(True)
        wait_until(lambda: informer.snapshot() is None, 10, "the cache to stop answering with the API down")
        status = informer.status()
        assert any(status[r]["error"] and not status[r]["connected"] for r in ("nodes", "pods")), status
        # Changes the informer cannot see while the API is down.
        cluster.add_bound_pods([gpu_pod("while-down", "v100-02", gpus=2, placement_id="job-2")])
        cluster.set_node_ready("v100-03", False)

        cluster.set_api_down(False)

        snapshot = wait_until_equal(informer, core)
        assert "job-2" in snapshot.bound_placement_ids
        assert {n.name: n.ready for n in snapshot.nodes}["v100-03"] is False
        assert informer.status()["pods"]["lists"] == 1  # resumed from its resourceVersion, no relist
    finally:
        informer.stop()


def test_a_resource_version_the_api_no_longer_has_makes_it_list_again(tmp_path: Path):
    cluster, core = start(tmp_path, watch_log_size=20)
    informer = informer_for(core)
    try:
        assert informer.snapshot(wait_s=20) is not None
        cluster.set_api_down(True)
        cluster.add_bound_pods(
            [gpu_pod("batch-0", "v100-02")] + [gpu_pod(f"batch-{i}", "cpu-01", gpus=0) for i in range(1, 30)]
        )
        cluster.set_api_down(False)

        snapshot = wait_until_equal(informer, core)
        assert {n.name: n.free.gpus for n in snapshot.nodes}["v100-02"] == 1
        assert informer.status()["pods"]["lists"] == 2
    finally:
        informer.stop()
        cluster.stop()


def test_an_api_that_refuses_watches_is_reported_and_the_cache_is_not_used(cluster_and_api):
    cluster, core = cluster_and_api
    cluster.set_watch_forbidden(True)
    informer = informer_for(core)
    try:
        assert informer.snapshot(wait_s=20) is None
        wait_until(lambda: not informer.usable, 10, "the informer to be unusable")
        assert "cannot watch resource" in informer.refused or "403" in informer.refused
    finally:
        informer.stop()


def test_stop_ends_the_watch_threads_promptly(cluster_and_api):
    _cluster, core = cluster_and_api
    informer = informer_for(core)
    assert informer.snapshot(wait_s=20) is not None
    started = time.monotonic()
    informer.stop()
    assert time.monotonic() - started < 5
    assert not informer.usable
    assert not any(thread.is_alive() for thread in informer._reflectors)


class WatchCountingApi:
    """The CoreV1Api the informer is given, counting the watch requests it opens per list call."""

    def __init__(self, core):
        self._core = core
        self.watches: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def _counted(self, name: str):
        call = getattr(self._core, name)

        def counted(*args, **kwargs):
            if kwargs.get("watch"):
                with self._lock:
                    self.watches[name] += 1
            return call(*args, **kwargs)

        return counted

    @property
    def list_node(self):
        return self._counted("list_node")

    @property
    def list_pod_for_all_namespaces(self):
        return self._counted("list_pod_for_all_namespaces")


def test_watches_the_server_ends_are_resumed_without_listing_again(cluster_and_api):
    cluster, core = cluster_and_api
    counting = WatchCountingApi(core)
    informer = ClusterInformer(counting, "eks-a", Site.ONPREM, GPU_LABELS, watch_timeout_s=1).start()
    try:
        assert informer.snapshot(wait_s=20) is not None
        # Each watch is opened once, then again after each server-side timeout: two timeouts of each.
        wait_until(
            lambda: min(counting.watches[name] for name in ("list_node", "list_pod_for_all_namespaces")) >= 3,
            30,
            lambda: f"two resumed watches of nodes and of pods; opened so far: {dict(counting.watches)}",
        )
        cluster.add_bound_pods([gpu_pod("late", "v100-03", gpus=2, placement_id="job-3")])
        snapshot = informer.wait_for(lambda s: "job-3" in s.bound_placement_ids, timeout=20)
        assert {n.name: n.free.gpus for n in snapshot.nodes}["v100-03"] == 0
        assert informer.status()["pods"]["lists"] == 1
    finally:
        informer.stop()
