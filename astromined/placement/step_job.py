"""A step's Kubernetes Job: what the step asks for, what the placement adds, and the Job body.

The body is dagster-k8s's (``K8sStepHandler.launch_step`` in dagster-k8s 0.29.27: the same labels, args,
env and ``construct_dagster_k8s_job`` call) for the step's container context with the placement's k8s
config and the chosen cluster's ``step_k8s_config`` merged in last.
tests/integration/placement/test_step_job_matches_dagster_k8s.py holds the two equal for a plain step.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast

import kubernetes.client
from dagster_k8s import DagsterK8sJobConfig, construct_dagster_k8s_job
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import OwnerReference, UserDefinedDagsterK8sConfig
from dagster_k8s.utils import get_deployment_id_label

from astromined.placement.dagster_compat import StepHandlerContext
from astromined.placement.policy import Decision, PolicyError, Site, StepRequest
from astromined.placement.quantities import GPU_RESOURCE, cpu_millis, memory_bytes, whole_units
from astromined.placement.settings import PlacementSettings
from astromined.placement.snapshot import PLACEMENT_ID_LABEL
from astromined.placement.step_metadata import ENV_CLUSTER, ENV_GPUS, ENV_REASON, ENV_SITE

GPU_TAG = "astromined/gpus"
# "onprem": the step never goes to a cloud cluster (multi_cluster: it waits instead; single_cluster: a
# required node affinity to the on-prem sites' nodes). Set on steps that mount an on-prem secret.
SITE_TAG = "astromined/site"
SITE_LABEL = "astromined.io/placement-site"
CLUSTER_LABEL = "astromined.io/placement-cluster"


class PlacementError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class StepLaunch:
    """One step being launched (or relaunched): what every stage from the decision to the Job needs."""

    ctx: StepHandlerContext
    step_key: str
    job_name: str
    container_context: K8sContainerContext  # the step's own: run launcher, executor, op tags, per-op
    request: StepRequest


def step_request(
    step_key: str, run_k8s_config: UserDefinedDagsterK8sConfig, tags: Mapping[str, str]
) -> StepRequest:
    """GPUs, CPU and memory of a step, from its merged k8s config and the ``astromined/gpus`` tag."""
    resources = run_k8s_config.container_config.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    where = f"step {step_key}: dagster-k8s/config container_config.resources"
    try:
        gpus_k8s = whole_units(limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE, 0)))
        cpu = cpu_millis(requests.get("cpu", limits.get("cpu", 0)))
        memory = memory_bytes(requests.get("memory", limits.get("memory", 0)))
    except ValueError as error:
        raise PolicyError(f"{where}: {error}") from None
    gpus = gpus_k8s
    if GPU_TAG in tags:
        try:
            gpus_tag = whole_units(tags[GPU_TAG], what=f"op tag {GPU_TAG}")
        except ValueError as error:
            raise PolicyError(f"step {step_key}: op tag {GPU_TAG}: {error}") from None
        if gpus_k8s and gpus_tag != gpus_k8s:
            raise PolicyError(
                f"step {step_key}: op tag {GPU_TAG}={gpus_tag} disagrees with "
                f"{GPU_RESOURCE}={gpus_k8s} in {where}"
            )
        gpus = gpus_tag
    site = tags.get(SITE_TAG)
    if site not in (None, Site.ONPREM.value):
        raise PolicyError(f"step {step_key}: op tag {SITE_TAG}={site!r}: the only value is 'onprem'")
    return StepRequest(
        step_key, gpus=gpus, cpu_millis=cpu, memory_bytes=memory, onprem_only=site == Site.ONPREM.value
    )


def placement_k8s_config(
    settings: PlacementSettings,
    request: StepRequest,
    job_name: str,
    decision: Decision | None,
) -> UserDefinedDagsterK8sConfig:
    """What the placement adds to the step's own k8s config (deep-merged by dagster-k8s)."""
    labels = {PLACEMENT_ID_LABEL: job_name}
    env = []
    container: dict[str, Any] = {}
    pod_spec: dict[str, Any] = {}
    if decision is not None:
        cluster = settings.cluster(cast("str", decision.cluster))
        labels |= {SITE_LABEL: cluster.site.value, CLUSTER_LABEL: _label_value(cluster.context)}
        env = [
            {"name": ENV_SITE, "value": cluster.site.value},
            {"name": ENV_CLUSTER, "value": cluster.context},
            {"name": ENV_REASON, "value": decision.reason},
            {"name": ENV_GPUS, "value": str(request.gpus)},
        ]
        if request.gpus:
            if cluster.gpu_node_selector:
                pod_spec["node_selector"] = dict(cluster.gpu_node_selector)
            if cluster.gpu_toleration:
                pod_spec["tolerations"] = [cluster.gpu_toleration.to_k8s()]
    else:
        pod_spec = _single_cluster_pod_spec(settings, request)
    if request.gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: str(request.gpus)}}
    if env:
        container["env"] = env
    return UserDefinedDagsterK8sConfig(
        container_config=container,
        pod_spec_config=pod_spec,
        pod_template_spec_metadata={"labels": labels},
        job_metadata={"labels": labels},
    )


def _single_cluster_pod_spec(settings: PlacementSettings, request: StepRequest) -> dict[str, Any]:
    """Preferred node affinity per site (on-prem weighted high); GPU steps must land on some site's GPU
    nodes and tolerate their taints."""
    preferred = [
        {
            "weight": cluster.affinity_weight,
            "preference": {"match_expressions": _match_expressions(cluster.site_node_selector)},
        }
        for cluster in settings.clusters
    ]
    affinity: dict[str, Any] = {"preferred_during_scheduling_ignored_during_execution": preferred}
    pod_spec: dict[str, Any] = {}
    if request.gpus:
        affinity["required_during_scheduling_ignored_during_execution"] = {
            "node_selector_terms": [
                {"match_expressions": _match_expressions(cluster.gpu_node_selector)}
                for cluster in settings.clusters
                if cluster.gpu_node_selector
            ]
        }
        tolerations = []
        for cluster in settings.clusters:
            if cluster.gpu_toleration and cluster.gpu_toleration.to_k8s() not in tolerations:
                tolerations.append(cluster.gpu_toleration.to_k8s())
        if tolerations:
            pod_spec["tolerations"] = tolerations
        if not affinity["required_during_scheduling_ignored_during_execution"]["node_selector_terms"]:
            del affinity["required_during_scheduling_ignored_during_execution"]
    if request.onprem_only:
        # On an on-prem site's nodes only (and on its GPU nodes when the step asks for GPUs).
        affinity["required_during_scheduling_ignored_during_execution"] = {
            "node_selector_terms": [
                {
                    "match_expressions": _match_expressions(
                        {**cluster.site_node_selector, **(cluster.gpu_node_selector if request.gpus else {})}
                    )
                }
                for cluster in settings.clusters
                if cluster.site is Site.ONPREM
            ]
        }
    pod_spec["affinity"] = {"node_affinity": affinity}
    return pod_spec


def _match_expressions(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(selector.items())]


def _label_value(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.") or "unknown"


def placed_container_context(
    settings: PlacementSettings, launch: StepLaunch, cluster: str, decision: Decision | None
) -> K8sContainerContext:
    """The step's container context with the placement's k8s config merged onto it, then (multi_cluster)
    the chosen cluster's ``step_k8s_config``."""
    placement = placement_k8s_config(settings, launch.request, launch.job_name, decision)
    context = launch.container_context.merge(K8sContainerContext(run_k8s_config=placement))
    cluster_k8s_config = settings.cluster(cluster).step_k8s_config if decision is not None else None
    if cluster_k8s_config:
        cluster_config = UserDefinedDagsterK8sConfig.from_dict(cluster_k8s_config)
        context = context.merge(K8sContainerContext(run_k8s_config=cluster_config))
    return context


def step_job(
    launch: StepLaunch,
    context: K8sContainerContext,
    job_config: DagsterK8sJobConfig,
    owner_references: Sequence[OwnerReference] = (),
) -> kubernetes.client.V1Job:
    """The Job ``K8sStepHandler.launch_step`` builds, for ``context`` (``placed_container_context``)."""
    ctx, step_key = launch.ctx, launch.step_key
    if not job_config.job_image:
        job_config = job_config.with_image(ctx.execute_step_args.job_origin.repository_origin.container_image)
    if not job_config.job_image:
        raise PlacementError("No image included in either executor config or the job")
    run = ctx.dagster_run
    labels = {
        "dagster/job": run.job_name,
        "dagster/op": step_key,
        "dagster/run-id": ctx.execute_step_args.run_id,
    }
    if run.remote_job_origin:
        labels["dagster/code-location"] = (
            run.remote_job_origin.repository_origin.code_location_origin.location_name
        )
    deployment_name = get_deployment_id_label(context.run_k8s_config)
    if deployment_name:
        labels["dagster/deployment-name"] = deployment_name
    return construct_dagster_k8s_job(
        job_config=job_config,
        args=ctx.execute_step_args.get_command_args(skip_serialized_namedtuple=True),
        job_name=launch.job_name,
        pod_name=launch.job_name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels=labels,
        env_vars=[
            *ctx.execute_step_args.get_command_env(),
            {"name": "DAGSTER_RUN_JOB_NAME", "value": run.job_name},
            {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key},
        ],
        owner_references=list(owner_references),
    )
