"""dagster-k8s's own client and job construction against the simulator: the call path its executor uses."""

import sys

import pytest
from dagster_k8s.client import DagsterK8sError, DagsterKubernetesClient, WaitForPodState
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job


def dagster_client(clients) -> DagsterKubernetesClient:
    return DagsterKubernetesClient.production_client(
        batch_api_override=clients.batch, core_api_override=clients.core
    )


def step_job(name: str, code: str, **user_config):
    config = DagsterK8sJobConfig(job_image="astromined:dev", dagster_home="/tmp/dagster-home-unused")
    return construct_dagster_k8s_job(
        job_config=config,
        args=[sys.executable, "-c", code],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig(**user_config),
        labels={"dagster/op": "train_model", "dagster/run-id": "r1"},
        env_vars=[{"name": "DAGSTER_RUN_STEP_KEY", "value": "train_model"}],
    )


def test_wait_for_job_success_on_a_job_built_by_dagster_k8s(clients):
    client = dagster_client(clients)
    job = step_job(
        "dagster-step-ok",
        "import os; print('step', os.environ['DAGSTER_RUN_STEP_KEY'], os.environ['DAGSTER_HOME'])",
        container_config={"resources": {"limits": {"nvidia.com/gpu": "1"}}},
        pod_spec_config={
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "node_selector": {"astromined.io/gpu": "v100"},
        },
    )
    client.create_namespaced_job_with_retries(body=job, namespace="dagster")

    client.wait_for_job_success("dagster-step-ok", "dagster", wait_timeout=60, wait_time_between_attempts=0.1)

    (pod_name,) = client.get_pod_names_in_job("dagster-step-ok", "dagster")
    client.wait_for_pod(
        pod_name,
        "dagster",
        wait_for_state=WaitForPodState.Terminated,
        wait_timeout=30,
        wait_time_between_attempts=0.1,
    )
    assert client.get_pod_by_name(pod_name, "dagster").spec.node_name == "gpu-v100-01"
    assert client.retrieve_pod_logs(pod_name, "dagster") == "step train_model /tmp/dagster-home-unused\n"
    assert client.delete_job("dagster-step-ok", "dagster") is True
    assert client.get_job_status("dagster-step-ok", "dagster") is None


def test_failed_step_job_raises_with_debug_info(clients):
    client = dagster_client(clients)
    client.create_namespaced_job_with_retries(
        body=step_job("dagster-step-bad", "import sys; print('kaboom'); sys.exit(7)"), namespace="dagster"
    )
    with pytest.raises(DagsterK8sError, match="Encountered failed job pods"):
        client.wait_for_job_success(
            "dagster-step-bad", "dagster", wait_timeout=60, wait_time_between_attempts=0.1
        )
    (pod_name,) = client.get_pod_names_in_job("dagster-step-bad", "dagster")
    debug = client.get_pod_debug_info(pod_name, "dagster")
    assert "Terminated with exit code 7: Error" in debug and "kaboom" in debug
    assert "Debug information for job dagster-step-bad" in client.get_job_debug_info(
        "dagster-step-bad", "dagster"
    )
