"""`SimulatedCluster` as a composition, driven in-process without its HTTP server or controller thread:
the REST verbs reach the store, binding holds and frees node capacity, the job controller creates pods
through the kubelet and the scheduler explains what does not fit."""

import json
import time

import pytest
from support.kube_sim import SMALL_CLUSTER

from astromined.sim.kube import NO_RUN_ANNOTATION, ApiError, ClusterSpec, SimulatedCluster


@pytest.fixture
def cluster(tmp_path):
    sim = SimulatedCluster(ClusterSpec.from_dict(SMALL_CLUSTER), workdir=tmp_path)
    sim.api_create("namespaces", None, {"metadata": {"name": "dagster"}})
    return sim


def _pod(name: str, cpu: str, node: str | None = None) -> dict:
    spec = {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {NO_RUN_ANNOTATION: "false"}},
        "spec": spec,
    }


def test_rest_verbs_reach_the_store_and_binding_holds_capacity(cluster):
    created = json.loads(cluster.api_create("pods", "dagster", _pod("p1", "3", node="cpu-01")))
    assert created["kind"] == "Pod" and created["status"]["phase"] == "Running"  # runs nothing: Running
    assert cluster.scheduler.views["cpu-01"].used == {"cpu": 3000}

    listed = json.loads(cluster.api_list("pods", "dagster", {"labelSelector": "app=p1"}))
    assert [item["metadata"]["name"] for item in listed["items"]] == ["p1"]
    assert json.loads(cluster.api_get("pods", "dagster", "p1"))["spec"]["nodeName"] == "cpu-01"

    cluster.api_delete("pods", "dagster", "p1", {})
    assert cluster.scheduler.views["cpu-01"].used == {"cpu": 0}
    with pytest.raises(ApiError) as missing:
        cluster.api_get("pods", "dagster", "p1")
    assert missing.value.code == 404
    assert [e["reason"] for e in cluster.events("dagster")] == []  # bound by the client: no Scheduled event


def test_a_pod_that_fits_nowhere_is_unschedulable_with_the_schedulers_message(cluster):
    cluster.api_create("pods", "dagster", _pod("big", "16"))
    with cluster.lock:
        cluster.scheduler.schedule_pending()
    (pod,) = cluster.pods("dagster")
    condition = pod["status"]["conditions"][0]
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == (
        "0/2 nodes are available: 1 Insufficient cpu, "
        "1 node(s) had untolerated taint {nvidia.com/gpu: present}."
    )
    assert [e["reason"] for e in cluster.events("dagster")] == ["FailedScheduling"]


def test_the_job_controller_creates_its_pods_through_the_kubelet(cluster):
    template = _pod("ignored", "1")
    template["metadata"].pop("name")
    template["spec"]["restartPolicy"] = "Never"
    cluster.api_create("jobs", "dagster", {"metadata": {"name": "j"}, "spec": {"template": template}})
    with cluster.lock:
        cluster.jobs_controller.run(time.monotonic())
        cluster.scheduler.schedule_pending()
    (pod,) = cluster.pods("dagster")
    assert pod["metadata"]["name"].startswith("j-") and pod["metadata"]["ownerReferences"][0]["name"] == "j"
    assert pod["spec"]["nodeName"] == "cpu-01" and pod["status"]["phase"] == "Running"
    (job,) = cluster.jobs("dagster")
    assert job["status"]["active"] == 1
    assert sorted(e["reason"] for e in cluster.events("dagster")) == ["Scheduled", "SuccessfulCreate"]
