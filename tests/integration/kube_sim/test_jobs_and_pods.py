"""Jobs, pods, logs, scheduling and faults through the real `kubernetes` client against the simulator."""

import os
import sys

import kubernetes
import pytest
import urllib3
from kubernetes.client import (
    V1Container,
    V1EnvVar,
    V1Job,
    V1JobSpec,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1Toleration,
)
from kubernetes.client.rest import ApiException

GPU_TOLERATION = V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


def make_job(name, command, *, gpus=0, env=None, backoff_limit=0, restart_policy="Never"):
    resources = V1ResourceRequirements(limits={"nvidia.com/gpu": str(gpus)}) if gpus else None
    container = V1Container(
        name="step",
        image="astromined:dev",
        command=command,
        env=[V1EnvVar(name=k, value=v) for k, v in (env or {}).items()],
        resources=resources,
    )
    spec = V1PodSpec(
        restart_policy=restart_policy, containers=[container], tolerations=[GPU_TOLERATION] if gpus else None
    )
    return V1Job(
        metadata=V1ObjectMeta(name=name),
        spec=V1JobSpec(backoff_limit=backoff_limit, template=V1PodTemplateSpec(spec=spec)),
    )


def job_pods(clients, name):
    return clients.core.list_namespaced_pod("dagster", label_selector=f"job-name={name}").items


def finished(clients, name):
    status = clients.batch.read_namespaced_job_status(name, "dagster").status
    return status if (status.succeeded or status.failed) else None


def test_job_runs_its_command_as_a_process_with_env_and_logs(cluster, clients):
    command = [
        sys.executable,
        "-c",
        "import os; print('hello', os.environ['GREETING'], os.environ['HOSTNAME'])",
    ]
    clients.batch.create_namespaced_job("dagster", make_job("hello", command, env={"GREETING": "ceres"}))

    status = cluster.wait_for(lambda: finished(clients, "hello"), timeout=30)

    assert status.succeeded == 1 and not status.failed and status.completion_time is not None
    assert [c.type for c in status.conditions] == ["SuccessCriteriaMet", "Complete"]
    (pod,) = job_pods(clients, "hello")
    assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "hello"
    assert pod.metadata.owner_references[0].kind == "Job" and pod.metadata.owner_references[0].controller
    assert pod.spec.node_name == "cpu-01"
    assert pod.status.phase == "Succeeded" and pod.status.start_time is not None
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    raw = clients.core.read_namespaced_pod_log(pod.metadata.name, "dagster", _preload_content=False).data
    assert raw.decode() == f"hello ceres {pod.metadata.name}\n"
    stamped = clients.core.read_namespaced_pod_log(
        pod.metadata.name, "dagster", timestamps=True, tail_lines=1, _preload_content=False
    ).data.decode()
    assert stamped.endswith(f" hello ceres {pod.metadata.name}\n") and stamped[:4].isdigit()


def test_failing_command_fails_the_job_with_the_exit_code(cluster, clients):
    command = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    clients.batch.create_namespaced_job("dagster", make_job("broken", command, backoff_limit=1))

    status = cluster.wait_for(
        lambda: (s := clients.batch.read_namespaced_job_status("broken", "dagster").status).conditions and s,
        timeout=30,
    )

    assert status.failed == 2 and not status.succeeded and not status.active
    assert status.conditions[-1].type == "Failed" and status.conditions[-1].reason == "BackoffLimitExceeded"
    pods = job_pods(clients, "broken")
    assert len(pods) == 2
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {3}
    assert {p.status.phase for p in pods} == {"Failed"}


def test_unschedulable_pod_waits_pending_then_runs_when_capacity_frees(cluster, clients):
    holder = {
        "metadata": {"name": "gpu-holder", "annotations": {"sim.astromined.io/run": "false"}},
        "spec": {
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
    }
    clients.core.create_namespaced_pod("dagster", holder)
    clients.batch.create_namespaced_job("dagster", make_job("train", [sys.executable, "-c", "pass"], gpus=1))

    def unschedulable():
        pods = job_pods(clients, "train")
        conditions = pods[0].status.conditions if pods else None
        return conditions and conditions[0].reason == "Unschedulable" and pods[0]

    pod = cluster.wait_for(unschedulable, timeout=30)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    assert pod.status.conditions[0].type == "PodScheduled" and pod.status.conditions[0].status == "False"
    assert pod.status.conditions[0].message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    events = clients.core.list_namespaced_event(
        "dagster", field_selector=f"involvedObject.name={pod.metadata.name},reason=FailedScheduling"
    ).items
    assert events and events[0].type == "Warning"

    clients.core.delete_namespaced_pod("gpu-holder", "dagster")

    status = cluster.wait_for(lambda: finished(clients, "train"), timeout=30)
    assert status.succeeded == 1
    assert job_pods(clients, "train")[0].spec.node_name == "gpu-v100-01"


def test_untolerated_taint_is_named_in_the_scheduling_message(cluster, clients):
    pod = {
        "metadata": {"name": "no-toleration"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        },
    }
    clients.core.create_namespaced_pod("dagster", pod)
    message = cluster.wait_for(
        lambda: (
            (c := clients.core.read_namespaced_pod("no-toleration", "dagster").status.conditions)
            and c[0].message
        ),
        timeout=30,
    )
    assert message == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "1 node(s) had untolerated taint {nvidia.com/gpu: present}."
    )


def test_api_down_refuses_connections_and_comes_back(cluster, clients):
    assert clients.core.list_namespaced_pod("dagster").items == []
    cluster.set_api_down(True)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        clients.core.list_namespaced_pod("dagster", _request_timeout=5)
    assert "Connection refused" in str(raised.value) or "NewConnectionError" in str(raised.value)
    cluster.set_api_down(False)
    assert clients.core.list_namespaced_pod("dagster").items == []


def test_api_latency_delays_every_request(cluster, clients):
    import time

    cluster.set_api_latency(0.3)
    started = time.monotonic()
    clients.core.list_node()
    assert time.monotonic() - started >= 0.3
    cluster.set_api_latency(0)


def test_node_not_ready_unbinds_a_pod_that_has_not_started(cluster, clients):
    cluster.set_image_pull_delay(600)
    clients.batch.create_namespaced_job("dagster", make_job("late", [sys.executable, "-c", "pass"], gpus=1))
    bound = cluster.wait_for(
        lambda: (p := job_pods(clients, "late")) and p[0].spec.node_name and p[0], timeout=30
    )
    assert bound.spec.node_name == "gpu-v100-01"
    assert bound.status.container_statuses[0].state.waiting.reason == "ContainerCreating"

    cluster.set_node_ready("gpu-v100-01", False)

    node = clients.core.read_node("gpu-v100-01")
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["False"]
    assert any(t.key == "node.kubernetes.io/not-ready" and t.effect == "NoSchedule" for t in node.spec.taints)
    pod = cluster.wait_for(
        lambda: (p := job_pods(clients, "late")) and p[0].status.conditions and p[0], timeout=30
    )
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    assert pod.status.conditions[0].reason == "Unschedulable"
    assert (
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }" in pod.status.conditions[0].message
    )

    cluster.set_image_pull_delay(0)
    cluster.set_node_ready("gpu-v100-01", True)
    assert cluster.wait_for(lambda: finished(clients, "late"), timeout=30).succeeded == 1


def test_deleting_a_job_with_background_propagation_kills_its_process(cluster, clients):
    clients.batch.create_namespaced_job(
        "dagster", make_job("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    )
    pod = cluster.wait_for(
        lambda: (p := job_pods(clients, "sleeper")) and p[0].status.phase == "Running" and p[0], 30
    )
    pid = cluster.container_pid("dagster", pod.metadata.name)
    assert pid is not None

    clients.batch.delete_namespaced_job("sleeper", "dagster", propagation_policy="Background")

    cluster.wait_for(lambda: not _alive(pid), timeout=30)
    cluster.wait_for(lambda: not job_pods(clients, "sleeper"), timeout=30)
    with pytest.raises(ApiException) as missing:
        clients.batch.read_namespaced_job("sleeper", "dagster")
    assert missing.value.status == 404


def test_deleting_a_job_without_propagation_orphans_its_pods_like_batch_v1(cluster, clients):
    clients.batch.create_namespaced_job("dagster", make_job("orphan", [sys.executable, "-c", "pass"]))
    cluster.wait_for(lambda: finished(clients, "orphan"), timeout=30)
    clients.batch.delete_namespaced_job("orphan", "dagster")
    (pod,) = job_pods(clients, "orphan")
    assert pod.metadata.owner_references is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_errors_come_back_as_kubernetes_status_objects(cluster, clients):
    import json

    job = make_job("twice", [sys.executable, "-c", "pass"])
    clients.batch.create_namespaced_job("dagster", job)
    with pytest.raises(ApiException) as conflict:
        clients.batch.create_namespaced_job("dagster", job)
    body = json.loads(conflict.value.body)
    assert conflict.value.status == 409 and body["reason"] == "AlreadyExists" and body["kind"] == "Status"
    assert body["message"] == 'jobs.batch "twice" already exists'

    with pytest.raises(ApiException) as missing:
        clients.core.read_namespaced_pod("nope", "dagster")
    assert (
        missing.value.status == 404 and json.loads(missing.value.body)["message"] == 'pods "nope" not found'
    )

    bad = make_job("bad-gpu", [sys.executable, "-c", "pass"], restart_policy="Always")
    bad.spec.template.spec.containers[0].resources = V1ResourceRequirements(requests={"nvidia.com/gpu": "1"})
    with pytest.raises(ApiException) as invalid:
        clients.batch.create_namespaced_job("dagster", bad)
    body = json.loads(invalid.value.body)
    assert invalid.value.status == 422 and body["reason"] == "Invalid"
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert fields == {"spec.template.spec.restartPolicy", "spec.template.spec.containers[0].resources.limits"}

    with pytest.raises(ApiException) as selector:
        clients.core.list_namespaced_pod("dagster", label_selector="a in (b")
    assert selector.value.status == 400
    with pytest.raises(ApiException) as namespace:
        clients.core.list_namespaced_pod("missing")
    assert namespace.value.status == 404


def test_list_selectors_and_pagination(cluster, clients):
    pods = [
        {
            "metadata": {"name": f"p{i}", "namespace": "dagster", "labels": {"tier": tier}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
        }
        for i, (tier, node) in enumerate([("a", "cpu-01"), ("b", "cpu-01"), ("c", "gpu-v100-01")])
    ]
    assert cluster.add_bound_pods(pods) == 3

    def names(**kwargs):
        return [p.metadata.name for p in clients.core.list_namespaced_pod("dagster", **kwargs).items]

    assert names(label_selector="tier in (a,c)") == ["p0", "p2"]
    assert names(label_selector="tier!=a") == ["p1", "p2"]
    assert names(label_selector="!tier") == []
    assert names(field_selector="spec.nodeName=cpu-01,metadata.name!=p0") == ["p1"]
    assert names(field_selector="status.phase=Running") == ["p0", "p1", "p2"]
    everywhere = clients.core.list_pod_for_all_namespaces(field_selector="spec.nodeName=gpu-v100-01").items
    assert [p.metadata.name for p in everywhere] == ["p2"]
    first = clients.core.list_namespaced_pod("dagster", limit=2)
    rest = clients.core.list_namespaced_pod("dagster", limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in first.items + rest.items] == ["p0", "p1", "p2"]


def test_discovery_endpoints(cluster, clients):
    version = kubernetes.client.VersionApi(clients.api_client).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.30")
    assert kubernetes.client.CoreApi(clients.api_client).get_api_versions().versions == ["v1"]
    groups = kubernetes.client.ApisApi(clients.api_client).get_api_versions().groups
    assert [g.name for g in groups] == ["batch", "apps", "storage.k8s.io", "authorization.k8s.io"]
    resources = {r.name for r in clients.batch.get_api_resources().resources}
    assert {"jobs", "jobs/status"} <= resources


def test_on_failure_restarts_count_against_the_backoff_limit(cluster, clients):
    command = [sys.executable, "-c", "import sys; sys.exit(2)"]
    clients.batch.create_namespaced_job(
        "dagster", make_job("flaky", command, backoff_limit=1, restart_policy="OnFailure")
    )
    status = cluster.wait_for(
        lambda: (s := clients.batch.read_namespaced_job_status("flaky", "dagster").status).conditions and s,
        timeout=30,
    )
    assert status.conditions[-1].reason == "BackoffLimitExceeded"
    events = clients.core.list_namespaced_event("dagster", field_selector="reason=BackOff").items
    assert events and events[0].involved_object.kind == "Pod"


def test_missing_command_fails_with_start_error(cluster, clients):
    clients.batch.create_namespaced_job("dagster", make_job("typo", ["no-such-binary-astromined"]))
    cluster.wait_for(lambda: finished(clients, "typo"), timeout=30)
    (pod,) = job_pods(clients, "typo")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")
    assert "no-such-binary-astromined" in terminated.message


def test_deleting_a_namespace_stops_its_pods(cluster, clients):
    clients.core.create_namespace({"metadata": {"name": "scratch"}})
    clients.batch.create_namespaced_job(
        "scratch", make_job("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    )
    pod = cluster.wait_for(
        lambda: (
            (p := clients.core.list_namespaced_pod("scratch").items)
            and p[0].status.phase == "Running"
            and p[0]
        ),
        timeout=30,
    )
    pid = cluster.container_pid("scratch", pod.metadata.name)
    clients.core.delete_namespace("scratch")
    cluster.wait_for(lambda: not _alive(pid), timeout=30)
    # The simulator reaps the process and then removes the pod, like a kubelet: asynchronously.
    cluster.wait_for(lambda: cluster.pods("scratch") == [] and cluster.jobs("scratch") == [], timeout=30)
    with pytest.raises(ApiException) as forbidden:
        clients.core.delete_namespace("default")
    assert forbidden.value.status == 403
