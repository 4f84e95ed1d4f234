"""One source of truth: the GPU labels/taints, service accounts, namespaces, ConfigMaps/Secrets and paths in
the manifests, Helm values and cluster specs equal the executor's settings (infra/dagster/executor-prod.yaml
through astromined/placement/settings.py) and the instance (infra/dagster/dagster-prod.yaml)."""

from __future__ import annotations

import copy
from pathlib import PurePosixPath

import pytest
import yaml
from support.deploy_checks import INFRA, build, named

import assets.uplink
from astromined.placement.policy import Site, Toleration
from astromined.placement.settings import PlacementSettings, settings_from_config
from resources.signing import PROD_FLEET_PUBLIC_KEY_PATH

EXECUTOR = yaml.safe_load((INFRA / "dagster" / "executor-prod.yaml").read_text())
INSTANCE = yaml.safe_load((INFRA / "dagster" / "dagster-prod.yaml").read_text())
HELM = yaml.safe_load((INFRA / "helm" / "dagster-values.yaml").read_text())
LAUNCHER = HELM["runLauncher"]["config"]["k8sRunLauncher"]
EKSCTL = yaml.safe_load((INFRA / "clusters" / "eks-cluster.yaml").read_text())
EKSA = list(yaml.safe_load_all((INFRA / "clusters" / "eks-a-cluster.yaml").read_text()))
# Executor context -> overlay that deploys that cluster.
OVERLAY_OF_CONTEXT = {"eks-a": "eks-a", "eks": "eks"}


def _tolerates(toleration: Toleration, taint: dict) -> bool:
    """Kubernetes' toleration matching for one taint."""
    if toleration.effect and toleration.effect != taint.get("effect"):
        return False
    if toleration.key and toleration.key != taint.get("key"):
        return False
    return toleration.operator == "Exists" or toleration.value == str(taint.get("value", ""))


def gpu_groups_of(context: str) -> list[tuple[str, dict, list[dict]]]:
    """(group name, node labels, taints) of the GPU node groups the cluster spec gives a context."""
    if context == "eks":
        return [
            (g["name"], g.get("labels") or {}, g.get("taints") or [])
            for g in EKSCTL["managedNodeGroups"]
            if g["instanceType"].startswith(("p", "g"))
        ]
    cluster = next(d for d in EKSA if d["kind"] == "Cluster")
    return [
        (g["name"], g.get("labels") or {}, g.get("taints") or [])
        for g in cluster["spec"]["workerNodeGroupConfigurations"]
        if any(t["key"] == "nvidia.com/gpu" for t in g.get("taints") or [])
    ]


def gpu_problems(settings: PlacementSettings) -> list[str]:
    """Where a cluster spec or overlay disagrees with the executor's GPU node selector or toleration."""
    problems = []
    for cluster in settings.clusters:
        groups = gpu_groups_of(cluster.context)
        if not groups:
            problems.append(f"{cluster.context}: no GPU node group in its cluster spec")
        for name, labels, taints in groups:
            for key, value in cluster.gpu_node_selector.items():
                if labels.get(key) != value:
                    problems.append(
                        f"{cluster.context} node group {name}: label {key}={labels.get(key)!r}, "
                        f"executor gpu_node_selector wants {value!r}"
                    )
            for taint in taints:
                if cluster.gpu_toleration is None or not _tolerates(cluster.gpu_toleration, taint):
                    problems.append(
                        f"{cluster.context} node group {name}: taint {taint} not tolerated by the "
                        f"executor's gpu_toleration {cluster.gpu_toleration}"
                    )
        plugin = named(build(OVERLAY_OF_CONTEXT[cluster.context]), "DaemonSet", "nvidia-device-plugin")
        spec = plugin["spec"]["template"]["spec"]
        if spec["nodeSelector"] != dict(cluster.gpu_node_selector):
            problems.append(
                f"{cluster.context}: device plugin nodeSelector {spec['nodeSelector']} != executor "
                f"gpu_node_selector {dict(cluster.gpu_node_selector)}"
            )
        if cluster.gpu_toleration and cluster.gpu_toleration.to_k8s() not in [
            {k: v for k, v in t.items()} for t in spec["tolerations"]
        ]:
            problems.append(f"{cluster.context}: device plugin lacks the executor's toleration")
    return problems


def test_gpu_labels_and_taints_equal_the_executor_settings():
    settings = settings_from_config(EXECUTOR)
    assert {c.context for c in settings.clusters} == set(OVERLAY_OF_CONTEXT)
    assert gpu_problems(settings) == []
    # Scale from zero: the autoscaler's node template promises the same labels and taint.
    eks = next(c for c in settings.clusters if c.context == "eks")
    for group in (g for g in EKSCTL["managedNodeGroups"] if g["name"].startswith("gpu")):
        assert group["minSize"] == 0
        for key, value in eks.gpu_node_selector.items():
            assert group["tags"][f"k8s.io/cluster-autoscaler/node-template/label/{key}"] == value
        for taint in group["taints"]:
            tag = group["tags"][f"k8s.io/cluster-autoscaler/node-template/taint/{taint['key']}"]
            assert tag == f"{taint['value']}:{taint['effect']}"
    # 27 on-prem servers x 2 V100 (the gpu pool's 54 slots, dagster-prod.yaml).
    [(name, _, _)] = gpu_groups_of("eks-a")
    cluster = next(d for d in EKSA if d["kind"] == "Cluster")
    assert (
        next(g for g in cluster["spec"]["workerNodeGroupConfigurations"] if g["name"] == name)["count"] == 27
    )


@pytest.mark.fault(
    "bad-config", "the executor's GPU node selector or toleration drifts from the cluster specs"
)
def test_a_drifted_gpu_label_or_taint_is_named():
    drifted = copy.deepcopy(EXECUTOR)
    drifted["clusters"]["eks-a"]["gpu_node_selector"]["nvidia.com/gpu.product"] = "Tesla-V100-PCIE-16GB"
    drifted["clusters"]["eks"]["gpu_toleration"] = {
        "key": "gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    problems = gpu_problems(settings_from_config(drifted))
    assert any("eks-a node group gpu-v100: label nvidia.com/gpu.product" in p for p in problems)
    assert any("eks-a: device plugin nodeSelector" in p for p in problems)
    assert any(p.startswith("eks node group gpu-v100: taint") for p in problems)
    assert any("eks: device plugin lacks the executor's toleration" in p for p in problems)


def test_service_accounts_equal_the_dagster_config():
    run_sa = INSTANCE["run_launcher"]["config"]["service_account_name"]
    step_sa = EXECUTOR["service_account_name"]
    cloud_sa = EXECUTOR["clusters"]["eks"]["step_k8s_config"]["pod_spec_config"]["service_account_name"]
    assert LAUNCHER["runK8sConfig"]["podSpecConfig"]["serviceAccountName"] == run_sa
    for overlay in ("eks-a", "eks"):
        docs = build(overlay)
        for name in (run_sa, step_sa, cloud_sa):
            named(docs, "ServiceAccount", name)
        binding = named(docs, "RoleBinding", "astromined-run-worker")
        assert {"kind": "ServiceAccount", "name": run_sa, "namespace": "astromined"} in binding["subjects"]
    irsa = named(build("eks"), "ServiceAccount", cloud_sa)["metadata"]["annotations"][
        "eks.amazonaws.com/role-arn"
    ]
    eksctl_role = next(s for s in EKSCTL["iam"]["serviceAccounts"] if s["metadata"]["name"] == cloud_sa)
    assert irsa.endswith(f":role/{eksctl_role['roleName']}")
    assert eksctl_role["metadata"]["namespace"] == EXECUTOR["job_namespace"]
    # The on-prem run worker's IAM principal is in the group the eks overlay binds.
    [entry] = EKSCTL["accessConfig"]["accessEntries"]
    cloud_binding = named(build("eks"), "RoleBinding", "astromined-run-worker")
    assert {
        "kind": "Group",
        "name": entry["kubernetesGroups"][0],
        "apiGroup": "rbac.authorization.k8s.io",
    } in (cloud_binding["subjects"])


def test_namespace_config_maps_and_secrets_equal_the_dagster_config():
    namespace = EXECUTOR["job_namespace"]
    assert INSTANCE["run_launcher"]["config"]["job_namespace"] == namespace == LAUNCHER["jobNamespace"]
    for overlay in ("eks-a", "eks"):
        docs = build(overlay)
        named(docs, "Namespace", namespace)
        assert {
            d["metadata"].get("namespace")
            for d in docs
            if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass")
            and d["metadata"].get("namespace") != "kube-system"
        } == {namespace}
        # kube-system holds only the NVIDIA device plugin and the run worker's read of its status.
        assert {
            (d["kind"], d["metadata"]["name"])
            for d in docs
            if d["metadata"].get("namespace") == "kube-system"
        } == {
            ("DaemonSet", "nvidia-device-plugin"),
            ("Role", "astromined-run-worker-device-plugin"),
            ("RoleBinding", "astromined-run-worker-device-plugin"),
        }
        for config_map in EXECUTOR["env_config_maps"]:
            named(docs, "ConfigMap", config_map)
    launcher = INSTANCE["run_launcher"]["config"]
    assert (
        [e["name"] for e in LAUNCHER["envConfigMaps"]]
        == launcher["env_config_maps"]
        == EXECUTOR["env_config_maps"]
    )
    assert [e["name"] for e in LAUNCHER["envSecrets"]] == launcher["env_secrets"] == EXECUTOR["env_secrets"]
    assert HELM["fullnameOverride"] + "-instance" == launcher["instance_config_map"]
    assert HELM["global"]["dagsterHome"] == launcher["dagster_home"]
    assert launcher["load_incluster_config"] is LAUNCHER["loadInclusterConfig"] is True
    assert (
        LAUNCHER["runK8sConfig"]["containerConfig"]["resources"]
        == launcher["run_k8s_config"]["container_config"]["resources"]
    )


def test_paths_the_code_reads_are_where_the_manifests_put_them():
    # The kubeconfig with the eks context: mounted into the run worker where the executor reads it.
    kubeconfig = PurePosixPath(EXECUTOR["kubeconfig_file"])
    [mount] = LAUNCHER["volumeMounts"]
    assert PurePosixPath(mount["mountPath"]) == kubeconfig.parent
    [volume] = [v for v in LAUNCHER["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "astromined-kubeconfig"
    # The fleet public key: the uplink step mounts ConfigMap astromined-fleet-public-key where the env says.
    for overlay in ("eks-a", "eks"):
        env = named(build(overlay), "ConfigMap", "astromined-env")["data"]
        assert env["ASTROMINED_FLEET_PUBLIC_KEY_PATH"] == PROD_FLEET_PUBLIC_KEY_PATH
        assert env["ASTROMINED_ENV"] == "prod"
    volumes = assets.uplink.UPLINK_STEP_TAGS["dagster-k8s/config"]["pod_spec_config"]["volumes"]
    assert {
        "name": assets.uplink.FLEET_PUBLIC_KEY_VOLUME,
        "config_map": {"name": "astromined-fleet-public-key"},
    } in (volumes)
    assert assets.uplink.SIGNING_KEY_SECRET == "astromined-uplink-signing-key"
    # The uplink step is pinned on-prem: the signing key Secret is created on the on-prem cluster only.
    assert assets.uplink.UPLINK_STEP_TAGS["astromined/site"] == Site.ONPREM.value
    # No run-wide secret volume: the signing key reaches the uplink step only.
    assert "astromined-uplink-signing-key" not in str(LAUNCHER) + str(EXECUTOR)
    # The on-prem object store: the eks-a overlay's endpoint equals the compute logs' endpoint.
    endpoint = named(build("eks-a"), "ConfigMap", "astromined-env")["data"]["ASTROMINED_S3_ENDPOINT_URL"]
    assert HELM["computeLogManager"]["config"]["s3ComputeLogManager"]["endpointUrl"] == endpoint
    assert "ASTROMINED_S3_ENDPOINT_URL" not in named(build("eks"), "ConfigMap", "astromined-env")["data"]


def test_helm_daemon_settings_equal_the_instance():
    daemon = HELM["dagsterDaemon"]
    monitoring = INSTANCE["run_monitoring"]
    assert daemon["runMonitoring"] == {
        "enabled": monitoring["enabled"],
        "startTimeoutSeconds": monitoring["start_timeout_seconds"],
        "cancelTimeoutSeconds": monitoring["cancel_timeout_seconds"],
        "maxResumeRunAttempts": monitoring["max_resume_run_attempts"],
        "pollIntervalSeconds": monitoring["poll_interval_seconds"],
        "freeSlotsAfterRunEndSeconds": monitoring["free_slots_after_run_end_seconds"],
    }
    retries = INSTANCE["run_retries"]
    assert daemon["runRetries"] == {
        "enabled": retries["enabled"],
        "maxRetries": retries["max_retries"],
        "retryOnAssetOrOpFailure": retries["retry_on_asset_or_op_failure"],
    }
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = INSTANCE["concurrency"]["runs"]
    assert queue["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    pools = INSTANCE["concurrency"]["pools"]
    assert HELM["concurrency"]["pools"] == {
        "defaultLimit": pools["default_limit"],
        "granularity": pools["granularity"],
    }
    for section in ("sensors", "schedules"):
        assert daemon[section] == {
            "useThreads": INSTANCE[section]["use_threads"],
            "numWorkers": INSTANCE[section]["num_workers"],
        }
    assert HELM["telemetry"]["enabled"] is INSTANCE["telemetry"]["enabled"] is False
    assert HELM["postgresql"]["postgresqlScheme"] == INSTANCE["storage"]["postgres"]["postgres_db"]["scheme"]
    assert HELM["postgresql"]["service"]["port"] == INSTANCE["storage"]["postgres"]["postgres_db"]["port"]
