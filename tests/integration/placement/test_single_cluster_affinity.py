"""Single-cluster mode: the pod the executor builds (dagster-k8s job construction + the placement's node
affinity and tolerations) lands on on-prem GPU nodes while they have room, then on cloud GPU nodes —
decided by the simulated cluster's kube-scheduler, not by the executor."""

import kubernetes.client
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job

from astromined.placement.policy import StepRequest
from astromined.placement.settings import settings_from_config
from astromined.placement.step_job import placement_k8s_config

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
HYBRID = {
    "name": "hybrid",
    "site": "mixed",
    "nodes": [
        {
            "name": "onprem-cpu",
            "labels": {"astromined.io/site": "onprem"},
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
        },
        {
            "name": "cloud-cpu",
            "labels": {"astromined.io/site": "cloud"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
        },
        {
            "name": "onprem-v100",
            "labels": {"astromined.io/site": "onprem", "nvidia.com/gpu.present": "true"},
            "taints": [GPU_TAINT],
            "allocatable": {"cpu": "40", "memory": "376Gi", "nvidia.com/gpu": "2", "pods": "110"},
        },
        {
            "name": "cloud-a10g",
            "labels": {"astromined.io/site": "cloud", "nvidia.com/gpu.present": "true"},
            "taints": [GPU_TAINT],
            "allocatable": {"cpu": "48", "memory": "184Gi", "nvidia.com/gpu": "4", "pods": "110"},
        },
    ],
}


def step_pod(settings, name: str, gpus: int) -> dict:
    """The pod template of the step job the executor would create, as Kubernetes JSON."""
    context = K8sContainerContext(
        run_k8s_config=placement_k8s_config(settings, StepRequest(name, gpus=gpus), name, None)
    )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="astromined:test"),
        ["dagster", "api", "execute_step"],
        name,
        pod_name=name,
        user_defined_k8s_config=context.run_k8s_config,
    )
    template = kubernetes.client.ApiClient().sanitize_for_serialization(job)["spec"]["template"]
    template["metadata"]["annotations"] = {"sim.astromined.io/run": "false"}  # no process: only scheduling
    return {"apiVersion": "v1", "kind": "Pod", **template}


def test_affinity_prefers_onprem_and_falls_back_to_cloud_gpu_nodes(tmp_path) -> None:
    from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

    settings = settings_from_config({"mode": "single_cluster", "single_cluster_context": "hybrid"})
    with SimulatedCluster(ClusterSpec.from_dict(HYBRID), workdir=tmp_path) as cluster:
        write_kubeconfig({"hybrid": cluster}, tmp_path / "kubeconfig", current_context="hybrid")
        from astromined.placement.snapshot import load_api_client

        core = kubernetes.client.CoreV1Api(load_api_client(str(tmp_path / "kubeconfig"), "hybrid"))
        for i in range(4):
            core.create_namespaced_pod("default", step_pod(settings, f"train-{i}", gpus=1))
        core.create_namespaced_pod("default", step_pod(settings, "features", gpus=0))

        def bound() -> dict[str, str] | None:
            pods = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in cluster.pods("default")}
            return pods if all(pods.values()) else None

        nodes = cluster.wait_for(bound, timeout=30)
    assert sorted(nodes[f"train-{i}"] for i in range(4)) == [
        "cloud-a10g",
        "cloud-a10g",
        "onprem-v100",
        "onprem-v100",
    ]
    assert nodes["train-0"] == nodes["train-1"] == "onprem-v100"  # on-prem first, while it has room
    assert nodes["features"] == "onprem-cpu"  # no GPU: on-prem, and not on a GPU node (no toleration)
