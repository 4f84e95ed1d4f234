"""``?watch=true`` through the real `kubernetes` client: events, resume, 410, selectors, bookmarks, faults."""

import json
import threading
import time
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from support.kube_sim import SMALL_CLUSTER, Clients
from support.waiting import wait_until

from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig


def bound_pod(name: str, node: str = "cpu-01", labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "namespace": "dagster", "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
    }


def run_pod(name: str, command: str) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": "watched"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", command]}],
        },
    }


class Collector:
    """Runs a watch in a thread and keeps (type, name, phase, resourceVersion) of every event."""

    def __init__(self, list_call, *args, **kwargs):
        self.events: list[tuple[str, str | None, str | None, str]] = []
        self.error: BaseException | None = None
        self._stopping = False
        self._watch = kubernetes.watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(list_call, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, list_call, args, kwargs) -> None:
        try:
            for event in self._watch.stream(list_call, *args, **kwargs):
                obj = event["raw_object"]
                self.events.append(
                    (
                        event["type"],
                        obj["metadata"].get("name"),
                        (obj.get("status") or {}).get("phase"),
                        obj["metadata"]["resourceVersion"],
                    )
                )
        except BaseException as error:  # reported by the test, unless the test ended the watch itself
            if not self._stopping:
                self.error = error

    def join(self, timeout: float = 30) -> "Collector":
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the watch did not end"
        return self

    def stop(self) -> None:
        """End the watch from this side and wait for its thread."""
        self._stopping = True
        self._watch.stop()
        self.join()

    def names(self, event_type: str) -> list[str | None]:
        return [name for kind, name, _phase, _rv in self.events if kind == event_type]

    def wait_for(self, predicate, timeout: float = 20) -> None:
        wait_until(lambda: predicate(self.events), timeout, lambda: f"a watch event; so far: {self.events}")


def test_watch_from_a_list_sees_creation_updates_and_deletion_in_order(cluster, clients):
    listed = clients.core.list_namespaced_pod("dagster")
    watch = Collector(
        clients.core.list_namespaced_pod,
        "dagster",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=60,
    )
    clients.core.create_namespaced_pod("dagster", run_pod("short", "exit 0"))
    cluster.wait_for(lambda: any(p["status"]["phase"] == "Succeeded" for p in cluster.pods("dagster")), 30)
    clients.core.delete_namespaced_pod("short", "dagster", grace_period_seconds=0)
    watch.wait_for(lambda events: events and events[-1][0] == "DELETED")
    watch.stop()

    assert watch.error is None
    types = [event[0] for event in watch.events]
    assert types[0] == "ADDED" and types[-1] == "DELETED"
    # Changes made between two reads of the change log arrive as one event with the latest state, so how
    # many MODIFIED events there are (and whether ADDED still says Pending) depends on timing.
    assert set(types[1:-1]) <= {"MODIFIED"}
    phases = [phase for _t, _n, phase, _rv in watch.events]
    assert phases[-1] == "Succeeded"
    versions = [int(rv) for *_rest, rv in watch.events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_watch_without_resource_version_starts_with_the_current_objects(cluster, clients):
    watch = Collector(clients.core.list_node, timeout_seconds=1).join()
    assert watch.error is None
    assert sorted(watch.names("ADDED")) == ["cpu-01", "gpu-v100-01"]
    assert {event[0] for event in watch.events} == {"ADDED"}


def test_watch_resumes_from_a_resource_version_and_replays_what_it_missed(cluster, clients):
    cluster.add_bound_pods([bound_pod("old"), bound_pod("kept")])
    start = clients.core.list_namespaced_pod("dagster").metadata.resource_version  # the client has both
    cluster.add_bound_pods([bound_pod("new"), bound_pod("brief")])
    for name in ("old", "brief"):
        clients.core.delete_namespaced_pod(name, "dagster", grace_period_seconds=0)

    watch = Collector(clients.core.list_namespaced_pod, "dagster", resource_version=start, timeout_seconds=1)
    watch.join()

    assert watch.error is None
    # What changed after `start`, in order: "new" arrived, "old" went. "brief" came and went in between:
    # the client never had it and hears nothing of it; "kept" did not change.
    assert [(t, n) for t, n, *_ in watch.events] == [("ADDED", "new"), ("DELETED", "old")]


def test_too_old_resource_version_answers_410_expired(tmp_path: Path):
    spec = ClusterSpec.from_dict(SMALL_CLUSTER)
    with SimulatedCluster(spec, workdir=tmp_path, watch_log_size=5) as sim:
        path = write_kubeconfig({"eks-a": sim}, tmp_path / "kubeconfig.yaml", current_context="eks-a")
        clients = Clients(path, "eks-a")
        clients.core.create_namespace({"metadata": {"name": "dagster"}})
        start = clients.core.list_namespaced_pod("dagster").metadata.resource_version
        sim.add_bound_pods([bound_pod(f"p{i}") for i in range(10)])

        with pytest.raises(ApiException) as raised:
            for _ in kubernetes.watch.Watch().stream(
                clients.core.list_namespaced_pod, "dagster", resource_version=start, timeout_seconds=1
            ):
                pass
    assert raised.value.status == 410
    assert "too old resource version" in str(raised.value.reason)


def test_label_selector_watch_sees_only_matching_pods(cluster, clients):
    start = clients.core.list_namespaced_pod("dagster").metadata.resource_version
    watch = Collector(
        clients.core.list_namespaced_pod,
        "dagster",
        label_selector="team=mlops",
        resource_version=start,
        timeout_seconds=2,
    )
    cluster.add_bound_pods([bound_pod("ours", labels={"team": "mlops"}), bound_pod("theirs")])
    watch.join()
    assert watch.error is None
    assert watch.names("ADDED") == ["ours"]
    assert "theirs" not in {name for _t, name, *_ in watch.events}


def test_a_pod_leaving_a_field_selector_arrives_as_deleted(cluster, clients, tmp_path: Path):
    release = tmp_path / "release"
    start = clients.core.list_pod_for_all_namespaces().metadata.resource_version
    watch = Collector(
        clients.core.list_pod_for_all_namespaces,
        field_selector="status.phase!=Succeeded,status.phase!=Failed",
        resource_version=start,
        timeout_seconds=60,
    )
    wait_then_exit = f"while [ ! -e {release} ]; do sleep 0.05; done"
    clients.core.create_namespaced_pod("dagster", run_pod("done", wait_then_exit))
    watch.wait_for(lambda events: ("done", "Running") in [(n, phase) for _t, n, phase, _rv in events])
    release.touch()  # the pod succeeds: it leaves the watch's selection
    watch.wait_for(lambda events: ("DELETED", "done") in [(t, n) for t, n, *_ in events])
    watch.stop()
    kinds = [(t, n, phase) for t, n, phase, _rv in watch.events]
    assert kinds[0][:2] == ("ADDED", "done")
    # The event that takes it out of the selection carries its final state.
    assert kinds[-1] == ("DELETED", "done", "Succeeded")
    # ... and the pod itself is still there (it left the selection, not the cluster).
    assert clients.core.read_namespaced_pod("done", "dagster").status.phase == "Succeeded"


def test_bookmarks_carry_the_current_resource_version(tmp_path: Path):
    spec = ClusterSpec.from_dict(SMALL_CLUSTER)
    with SimulatedCluster(spec, workdir=tmp_path, watch_bookmark_interval_s=0.2) as sim:
        path = write_kubeconfig({"eks-a": sim}, tmp_path / "kubeconfig.yaml", current_context="eks-a")
        core = Clients(path, "eks-a").core
        core.create_namespace({"metadata": {"name": "dagster"}})
        start = core.list_node().metadata.resource_version
        sim.add_bound_pods([bound_pod("unrelated")])
        response = core.list_node(
            watch=True,
            resource_version=start,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
            _preload_content=False,
        )
        body = response.data.decode()
    events = [kubernetes.watch.Watch().unmarshal_event(line, None) for line in body.splitlines() if line]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, body
    # The pod changes moved the cluster's resourceVersion past the list's; bookmarks say so.
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) > int(start)
    assert all(e["type"] == "BOOKMARK" for e in events)  # no node changed


def test_api_down_ends_an_open_watch(cluster, clients):
    cluster.add_bound_pods([bound_pod("before-the-fault")])
    watch = Collector(clients.core.list_namespaced_pod, "dagster", timeout_seconds=60)
    # The watch is open once its first event arrived (a watch started after the fault would end too).
    watch.wait_for(lambda events: any(name == "before-the-fault" for _t, name, _p, _rv in events))
    started = time.monotonic()
    cluster.set_api_down(True)
    try:
        watch.join(timeout=10)
    finally:
        cluster.set_api_down(False)
    assert time.monotonic() - started < 10


def test_forbidden_watch_answers_403_like_rbac(cluster, clients):
    cluster.set_watch_forbidden(True)
    with pytest.raises(ApiException) as raised:
        clients.core.list_pod_for_all_namespaces(watch=True, timeout_seconds=1)
    assert raised.value.status == 403
    assert 'cannot watch resource "pods"' in json.loads(raised.value.body)["message"]
    assert clients.core.list_pod_for_all_namespaces().items == []  # list is still allowed
