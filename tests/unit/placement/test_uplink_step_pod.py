"""The uplink signing key reaches the uplink_package step's pod only, and that pod never goes to the cloud.

Pods are built the way the production executor builds them: the run launcher's container settings
(infra/dagster/dagster-prod.yaml), the executor's (infra/dagster/executor-prod.yaml), the step's op tags,
then the placement and the chosen cluster's step_k8s_config.
"""

from __future__ import annotations

import json

import pytest
import yaml
from dagster import Shape
from dagster._config import process_config
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

import assets.models
import assets.telemetry
import assets.uplink
from astromined.environment import REPO_ROOT
from astromined.placement.executor_schema import PLACEMENT_EXECUTOR_CONFIG_SCHEMA
from astromined.placement.policy import Action, ClusterSnapshot, Decision, PolicyError, Site, decide
from astromined.placement.settings import settings_from_config
from astromined.placement.step_job import placement_k8s_config, step_request
from resources.signing import PROD_FLEET_PUBLIC_KEY_PATH, PROD_SIGNING_KEY_PATH

SECRET = "astromined-uplink-signing-key"


def production_configs() -> tuple[dict, dict]:
    launcher = yaml.safe_load((REPO_ROOT / "infra/dagster/dagster-prod.yaml").read_text())["run_launcher"]
    raw = yaml.safe_load((REPO_ROOT / "infra/dagster/executor-prod.yaml").read_text())
    executor = process_config(Shape(PLACEMENT_EXECUTOR_CONFIG_SCHEMA), raw)
    assert executor.success, executor.errors
    return launcher["config"], executor.value


def step_tags(asset) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in asset.op.tags.items()}


def production_job(asset, site: Site) -> dict:
    """The Kubernetes Job of ``asset``'s step placed on the production cluster of ``site``, as a dict."""
    launcher, executor = production_configs()
    settings = settings_from_config(executor)
    tags = step_tags(asset)
    # K8sContainerContext.create_for_run(run, K8sRunLauncher) takes these fields from the run launcher.
    context = K8sContainerContext(
        env_config_maps=launcher.get("env_config_maps"),
        env_secrets=launcher.get("env_secrets"),
        volume_mounts=launcher.get("volume_mounts"),
        volumes=launcher.get("volumes"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher.get("run_k8s_config", {})),
    ).merge(
        # build_executor's container context, from the executor config.
        K8sContainerContext(
            env_config_maps=executor.get("env_config_maps"),
            env_secrets=executor.get("env_secrets"),
            volume_mounts=executor.get("volume_mounts"),
            volumes=executor.get("volumes"),
            run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor.get("step_k8s_config", {})),
        )
    )
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    request = step_request(asset.op.name, context.run_k8s_config, tags)
    [cluster] = [c for c in settings.clusters if c.site is site]
    decision = Decision(asset.op.name, Action.PLACE, "test", request.gpus, site, cluster.context)
    placement = placement_k8s_config(settings, request, "dagster-step-x", decision)
    context = context.merge(K8sContainerContext(run_k8s_config=placement))
    if cluster.step_k8s_config:
        context = context.merge(
            K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cluster.step_k8s_config))
        )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="astromined:1"),
        ["dagster", "api", "execute_step"],
        "dagster-step-x",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.to_dict()


def secret_volumes(job: dict) -> list[dict]:
    volumes = job["spec"]["template"]["spec"].get("volumes") or []
    return [v for v in volumes if (v.get("secret") or {}).get("secret_name") == SECRET]


def test_uplink_step_pod_mounts_the_signing_key_and_the_fleet_key_read_only():
    job = production_job(assets.uplink.uplink_package, Site.ONPREM)
    [volume] = secret_volumes(job)
    assert volume["secret"]["default_mode"] == 0o400
    container = job["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m for m in container["volume_mounts"]}
    key_mount = mounts[volume["name"]]
    assert key_mount["read_only"] and PROD_SIGNING_KEY_PATH.startswith(key_mount["mount_path"] + "/")
    [fleet] = [
        v for v in job["spec"]["template"]["spec"]["volumes"] if (v.get("config_map") or {}).get("name")
    ]
    fleet_mount = mounts[fleet["name"]]
    assert fleet_mount["read_only"] and PROD_FLEET_PUBLIC_KEY_PATH.startswith(fleet_mount["mount_path"] + "/")
    # The step pod keeps what every step gets from the executor config (env from ConfigMap/Secrets).
    env_from = json.dumps(container["env_from"])
    assert "astromined-env" in env_from and "astromined-object-store" in env_from


@pytest.mark.parametrize(
    ("asset", "site"),
    [
        (assets.telemetry.raw_telemetry, Site.ONPREM),
        (assets.models.candidate_model, Site.ONPREM),
        (assets.models.candidate_model, Site.CLOUD),
        (assets.models.champion_model, Site.ONPREM),
    ],
    ids=["raw_telemetry-onprem", "candidate_model-onprem", "candidate_model-cloud", "champion_model-onprem"],
)
def test_other_steps_pods_never_get_the_signing_key(asset, site):
    job = production_job(asset, site)
    assert secret_volumes(job) == []
    assert SECRET not in json.dumps(job) and "uplink_signing_key" not in json.dumps(job)


def test_run_worker_pod_config_has_no_signing_key():
    launcher, executor = production_configs()
    assert SECRET not in json.dumps(launcher) and SECRET not in json.dumps(executor)


def test_uplink_step_is_pinned_on_prem():
    tags = step_tags(assets.uplink.uplink_package)
    request = step_request("uplink_package", get_user_defined_k8s_config(tags), tags)
    assert request.onprem_only and request.gpus == 0


@pytest.mark.fault("bad-config", "on-prem API unreachable while the step holding the signing key is placed")
def test_uplink_step_waits_instead_of_going_to_the_cloud():
    _, executor = production_configs()
    config = settings_from_config(executor).policy_config
    tags = step_tags(assets.uplink.uplink_package)
    request = step_request("uplink_package", get_user_defined_k8s_config(tags), tags)
    down = ClusterSnapshot.unreachable("eks-a", Site.ONPREM, "connection refused")
    cloud = ClusterSnapshot.reachable_only("eks", Site.CLOUD)
    decision = decide({"eks-a": down, "eks": cloud}, request, config)
    assert decision.action is Action.WAIT and decision.cluster is None
    assert "on-prem only" in decision.reason and "connection refused" in decision.reason
    # Another step without GPUs does spill to the cloud in the same situation (the rule is per step).
    other = step_request("sector_rankings", get_user_defined_k8s_config({}), {})
    assert decide({"eks-a": down, "eks": cloud}, other, config).site is Site.CLOUD
    up = ClusterSnapshot("eks-a", Site.ONPREM, True)
    placed = decide({"eks-a": up, "eks": cloud}, request, config)
    assert (placed.action, placed.site, placed.cluster) == (Action.PLACE, Site.ONPREM, "eks-a")


def test_single_cluster_mode_requires_on_prem_nodes_for_the_uplink_step():
    settings = settings_from_config({"mode": "single_cluster", "single_cluster_context": "hybrid"})
    tags = step_tags(assets.uplink.uplink_package)
    request = step_request("uplink_package", get_user_defined_k8s_config(tags), tags)
    pod_spec = placement_k8s_config(settings, request, "dagster-step-x", None).pod_spec_config
    required = pod_spec["affinity"]["node_affinity"]["required_during_scheduling_ignored_during_execution"]
    onprem = [c for c in settings.clusters if c.site is Site.ONPREM]
    assert [t["match_expressions"] for t in required["node_selector_terms"]] == [
        [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(c.site_node_selector.items())]
        for c in onprem
    ]
    assert onprem and all(c.site_node_selector for c in onprem)


@pytest.mark.fault("bad-config", "op tag astromined/site with a value other than onprem")
def test_unknown_site_tag_value_is_refused():
    with pytest.raises(PolicyError, match=r"step s: op tag astromined/site='cloud'"):
        step_request("s", get_user_defined_k8s_config({}), {"astromined/site": "cloud"})
