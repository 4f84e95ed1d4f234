"""The multi-cluster Kubernetes step executor: dagster-k8s's step handler, placing each step on a cluster.

``astromined_k8s_executor`` is dagster-k8s's ``k8s_job_executor`` (same config schema, same job
construction through ``construct_dagster_k8s_job`` and user-defined k8s config merges) with a step handler
that, per step:

- reads the GPUs the step asks for (``nvidia.com/gpu`` in its ``dagster-k8s/config`` container resources, or
  the ``astromined/gpus`` op tag) and decides with the placement policy (``policy.py``) which cluster it
  runs on — on-prem EKS-A first, the cloud EKS when on-prem GPUs are full or the on-prem API is down;
- adds the ``nvidia.com/gpu`` limit, the site's GPU toleration and GPU node selector, placement labels and
  ``ASTROMINED_PLACEMENT_*`` env vars through a user-defined k8s config merged onto the step's own;
- creates the Kubernetes Job with a ``DagsterKubernetesClient`` for that cluster's kubeconfig context;
- records the decision: an engine event with ``placement/site``, ``placement/cluster``,
  ``placement/reason``, ``placement/gpus`` metadata (docs/contracts.md), the run tag
  ``astromined/placement/<step_key>=<site>`` and a log line;
- checks health and terminates on the cluster the job actually runs on — found through the job's labels
  on every cluster when this process did not launch it (a restarted run worker);
- deletes a pod left Unschedulable on-prem longer than ``unschedulable_timeout_s`` and resubmits the step
  to the cloud;
- when on-prem cannot take a step and no cloud API answers, waits (retrying at every health check) and
  fails the step after ``cloud_unreachable_timeout_s`` with the reason.

In ``single_cluster`` mode one control plane holds both kinds of nodes: the same preference becomes
preferred node affinity (on-prem weight high), the sites' GPU tolerations, and a required affinity to GPU
nodes for GPU steps; the site is recorded once the pod is bound to a node.
"""

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
import yaml
from dagster import (
    AssetKey,
    Bool,
    Enum,
    EnumValue,
    Field,
    Float,
    Int,
    Map,
    Noneable,
    Shape,
    StringSource,
    executor,
)
from dagster import (
    _check as check,
)
from dagster._config import process_config
from dagster._core.definitions.executor_definition import (
    ExecutorDefinition,
    multiple_process_executor_requirements,
)
from dagster._core.definitions.metadata import MetadataValue
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating import (
    CheckStepHealthResult,
    StepDelegatingExecutor,
    StepHandler,
    StepHandlerContext,
)
from dagster._utils.merger import merge_dicts
from dagster_k8s.client import (
    DagsterKubernetesClient,
    PatchedApiClient,
)
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.executor import _K8S_EXECUTOR_CONFIG_SCHEMA, K8sStepHandler
from dagster_k8s.job import (
    USER_DEFINED_K8S_JOB_CONFIG_SCHEMA,
    DagsterK8sJobConfig,
    OwnerReference,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from dagster_k8s.launcher import K8sRunLauncher
from dagster_k8s.utils import get_deployment_id_label
from kubernetes.client.rest import ApiException

from astromined.placement.placer import Placer
from astromined.placement.policy import Action, Decision, PolicyError, Site, StepRequest
from astromined.placement.quantities import GPU_RESOURCE, cpu_millis, memory_bytes, whole_units
from astromined.placement.settings import DEFAULT_CLUSTERS, Mode, PlacementSettings, settings_from_config
from astromined.placement.snapshot import (
    PLACEMENT_ID_LABEL,
    describe_api_error,
    is_unreachable_error,
    load_api_client,
    read_json,
)
from astromined.placement.step_metadata import ENV_CLUSTER, ENV_GPUS, ENV_REASON, ENV_SITE
from astromined.readiness.result import SiteReadiness, cluster_asset_name, site_readiness_from_metadata

GPU_TAG = "astromined/gpus"
# "onprem": the step never goes to a cloud cluster (multi_cluster: it waits instead; single_cluster: a
# required node affinity to the on-prem sites' nodes). Set on steps that mount an on-prem secret.
SITE_TAG = "astromined/site"
RUN_TAG_PREFIX = "astromined/placement/"
# Launches within this many seconds share one read of the readiness materializations.
READINESS_CACHE_S = 5.0
SITE_LABEL = "astromined.io/placement-site"
CLUSTER_LABEL = "astromined.io/placement-cluster"
IN_CLUSTER = "in-cluster"

_TOLERATION_SCHEMA = Noneable(
    Shape(
        {
            "key": Field(str, is_required=False),
            "operator": Field(str, is_required=False, default_value="Equal"),
            "value": Field(str, is_required=False),
            "effect": Field(str, is_required=False),
        }
    )
)
_CLUSTER_SCHEMA = Shape(
    {
        "site": Field(Enum("PlacementSite", [EnumValue(s.value) for s in Site]), is_required=True),
        "gpu_node_selector": Field(
            Map(str, str), is_required=False, default_value={}, description="Labels of the site's GPU nodes."
        ),
        "gpu_toleration": Field(
            _TOLERATION_SCHEMA,
            is_required=False,
            description="Toleration for the taint on the site's GPU nodes.",
        ),
        "site_node_selector": Field(
            Map(str, str),
            is_required=False,
            default_value={},
            description="single_cluster mode: labels of this site's nodes in the one cluster.",
        ),
        "affinity_weight": Field(
            Int, is_required=False, description="single_cluster mode: preferred-affinity weight (1-100)."
        ),
        "step_k8s_config": Field(
            USER_DEFINED_K8S_JOB_CONFIG_SCHEMA,
            is_required=False,
            description="Raw k8s config for the step pods placed on this cluster (merged last).",
        ),
        "in_cluster": Field(
            bool,
            is_required=False,
            default_value=False,
            description="Talk to this cluster with the pod's service account (the run worker's own cluster).",
        ),
    }
)

PLACEMENT_EXECUTOR_CONFIG_SCHEMA = merge_dicts(
    _K8S_EXECUTOR_CONFIG_SCHEMA,
    {
        "mode": Field(
            Enum("PlacementMode", [EnumValue(m.value) for m in Mode]),
            is_required=False,
            default_value=Mode.MULTI_CLUSTER.value,
        ),
        "clusters": Field(
            Map(str, _CLUSTER_SCHEMA, key_label_name="kubeconfig_context"),
            is_required=False,
            default_value=DEFAULT_CLUSTERS,
            description="Clusters by kubeconfig context: the site each one is and how to find its GPU nodes.",
        ),
        "single_cluster_context": Field(
            Noneable(str),
            is_required=False,
            default_value=None,
            description="single_cluster mode: the kubeconfig context (default: the current context).",
        ),
        "unschedulable_timeout_s": Field(Float, is_required=False, default_value=300.0),
        "cloud_unreachable_timeout_s": Field(Float, is_required=False, default_value=900.0),
        "health_check_interval_s": Field(Int, is_required=False, default_value=20),
        "api_timeout_s": Field(Float, is_required=False, default_value=10.0),
        "watch_cluster_state": Field(
            Bool,
            is_required=False,
            default_value=True,
            description="GPU decisions read on-prem nodes and pods from a watch-based cache (list + watch, "
            "started with the run) instead of listing them per decision. Needs the 'watch' verb on nodes "
            "and pods; without it the executor falls back to lists.",
        ),
        "readiness_max_age_s": Field(
            Float,
            is_required=False,
            default_value=900.0,
            description="Each decision reads every cluster's latest readiness materialization "
            "(readiness_cluster_<context>) from the instance; one younger than this keeps a not-ready "
            "site from taking steps (GPU rows failed: GPU steps). Older or missing: not used. 0: never.",
        ),
        "snapshot_ttl_s": Field(
            Float,
            is_required=False,
            default_value=2.0,
            description="Without the watch cache: GPU decisions within this many seconds share one listed "
            "on-prem snapshot (0: list every time).",
        ),
        # Used when the instance's run launcher is not a K8sRunLauncher (which otherwise supplies them).
        "dagster_home": Field(Noneable(StringSource), is_required=False, default_value=None),
        "instance_config_map": Field(Noneable(StringSource), is_required=False, default_value=None),
        "postgres_password_secret": Field(Noneable(StringSource), is_required=False, default_value=None),
    },
)
# dagster-k8s's own "kubeconfig_file" field is reused: one kubeconfig holding every context.
check.invariant("kubeconfig_file" in PLACEMENT_EXECUTOR_CONFIG_SCHEMA)


class PlacementError(Exception):
    pass


@dataclasses.dataclass
class _Placement:
    """Where a step's job is (this process launched it, or found it by its labels)."""

    job_name: str
    cluster: str
    site: Site | None
    request: StepRequest | None = None
    recorded: bool = True  # single_cluster mode: the site is recorded once the pod is bound


@dataclasses.dataclass
class _Waiting:
    since: float
    reason: str
    last_logged: float


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


def load_cluster_clients(settings: PlacementSettings) -> dict[str, DagsterKubernetesClient]:
    """One DagsterKubernetesClient per configured context (never the process-wide default configuration)."""
    if settings.mode is Mode.SINGLE_CLUSTER:
        name = settings.single_cluster_context or IN_CLUSTER
        in_cluster = settings.single_cluster_context is None and settings.kubeconfig_file is None
        return {name: _client(settings.kubeconfig_file, settings.single_cluster_context, in_cluster)}
    return {c.context: _client(settings.kubeconfig_file, c.context, c.in_cluster) for c in settings.clusters}


def _client(kubeconfig_file: str | None, context: str | None, in_cluster: bool) -> DagsterKubernetesClient:
    if in_cluster:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        api_client = PatchedApiClient(configuration=configuration)
    else:
        api_client = load_api_client(kubeconfig_file, context, PatchedApiClient)
    return DagsterKubernetesClient.production_client(
        batch_api_override=kubernetes.client.BatchV1Api(api_client),
        core_api_override=kubernetes.client.CoreV1Api(api_client),
    )


class PlacementStepHandler(K8sStepHandler):
    """K8sStepHandler whose launch, health check and termination go to the cluster the step is placed on.

    Reuses K8sStepHandler's container-context merge, job naming and owner-reference detection; does not
    call its ``__init__`` (which loads one kubeconfig into the process-wide default).
    """

    def __init__(
        self,
        settings: PlacementSettings,
        clients: Mapping[str, DagsterKubernetesClient],
        image: str | None,
        container_context: K8sContainerContext,
        per_step_k8s_config: Mapping[str, Any] | None = None,
        enable_owner_references: bool = False,
        fallback_job_config: DagsterK8sJobConfig | None = None,
        clock=time.monotonic,
        wall_clock=time.time,
    ) -> None:
        StepHandler.__init__(self)
        self._settings = settings
        self._clients = dict(clients)
        self._executor_image = check.opt_str_param(image, "image")
        self._executor_container_context = container_context
        self._per_step_k8s_config = dict(per_step_k8s_config or {})
        self._enable_owner_references = enable_owner_references
        self._fallback_job_config = fallback_job_config or DagsterK8sJobConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._kubeconfig_file = settings.kubeconfig_file
        home = next((c.context for c in settings.clusters if c.in_cluster), None)
        self._home_cluster = home or next(iter(self._clients))
        self._api_client = self._clients[self._home_cluster]  # K8sStepHandler's owner-reference lookup
        self._namespace = container_context.namespace or "default"
        self._placer = (
            Placer(settings, {name: c.core_api for name, c in self._clients.items()}, self._namespace)
            if settings.mode is Mode.MULTI_CLUSTER
            else None
        )
        self._placements: dict[str, _Placement] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._blocked: dict[str, str] = {}  # step key → why readiness rules out every cluster
        self._readiness_cache: tuple[float, dict[str, SiteReadiness], str] | None = None
        self._unschedulable_since: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "PlacementStepHandler"

    @property
    def placer(self) -> Placer | None:
        return self._placer

    # ---- container context and job construction (dagster-k8s) -------------------------------------------

    def _get_container_context(self, step_handler_context: StepHandlerContext) -> K8sContainerContext:
        """As K8sStepHandler's, but also for instances whose run launcher is not a K8sRunLauncher."""
        step_key = self._get_step_key(step_handler_context)
        run_launcher = step_handler_context.instance.run_launcher
        context = K8sContainerContext.create_for_run(
            step_handler_context.dagster_run,
            run_launcher if isinstance(run_launcher, K8sRunLauncher) else None,
            include_run_tags=False,
        ).merge(self._executor_container_context)
        user_defined = get_user_defined_k8s_config(step_handler_context.step_tags[step_key])
        op_name = step_handler_context.get_step_context(step_key).step.op_name
        per_op = UserDefinedDagsterK8sConfig.from_dict(self._per_step_k8s_config.get(op_name, {}))
        return context.merge(K8sContainerContext(run_k8s_config=user_defined)).merge(
            K8sContainerContext(run_k8s_config=per_op)
        )

    def _job_config(self, container_context: K8sContainerContext, instance) -> DagsterK8sJobConfig:
        if isinstance(instance.run_launcher, K8sRunLauncher):
            return container_context.get_k8s_job_config(self._executor_image, instance.run_launcher)
        fallback = self._fallback_job_config
        return fallback._replace(job_image=self._executor_image or fallback.job_image)

    def _build_job(
        self,
        ctx: StepHandlerContext,
        step_key: str,
        job_name: str,
        container_context: K8sContainerContext,
        request: StepRequest,
        decision: Decision | None,
        cluster: str,
    ) -> kubernetes.client.V1Job:
        context = container_context.merge(
            K8sContainerContext(
                run_k8s_config=placement_k8s_config(self._settings, request, job_name, decision)
            )
        )
        cluster_k8s_config = self._settings.cluster(cluster).step_k8s_config if decision is not None else None
        if cluster_k8s_config:
            cluster_config = UserDefinedDagsterK8sConfig.from_dict(cluster_k8s_config)
            context = context.merge(K8sContainerContext(run_k8s_config=cluster_config))
        job_config = self._job_config(context, ctx.instance)
        if not job_config.job_image:
            job_config = job_config.with_image(
                ctx.execute_step_args.job_origin.repository_origin.container_image
            )
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
        owner_references = []
        if self._enable_owner_references and cluster == self._home_cluster:
            my_pod = self._detect_current_name_and_uid()
            if my_pod:
                owner_references = [OwnerReference(kind="Pod", name=my_pod[0], uid=my_pod[1])]
        return construct_dagster_k8s_job(
            job_config=job_config,
            args=ctx.execute_step_args.get_command_args(skip_serialized_namedtuple=True),
            job_name=job_name,
            pod_name=job_name,
            component="step_worker",
            user_defined_k8s_config=context.run_k8s_config,
            labels=labels,
            env_vars=[
                *ctx.execute_step_args.get_command_env(),
                {"name": "DAGSTER_RUN_JOB_NAME", "value": run.job_name},
                {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key},
            ],
            owner_references=owner_references,
        )

    # ---- launch -------------------------------------------------------------------------------------------

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        ctx = step_handler_context
        step_key = self._get_step_key(ctx)
        job_name = self._get_k8s_step_job_name(ctx)
        container_context = self._get_container_context(ctx)
        request = step_request(step_key, container_context.run_k8s_config, ctx.step_tags[step_key])
        if self._placer is None:
            cluster = next(iter(self._clients))
            self._create(ctx, step_key, job_name, container_context, request, None, cluster)
            self._placements[step_key] = _Placement(job_name, cluster, None, request, recorded=False)
            DagsterEvent.step_worker_starting(
                ctx.get_step_context(step_key),
                message=f'Executing step "{step_key}" in Kubernetes job {job_name} on {cluster} '
                "(single cluster: node affinity prefers on-prem nodes).",
                metadata={"Kubernetes Job name": MetadataValue.text(job_name)},
            )
            return
        self._placer.start_watching()
        self._place(ctx, step_key, job_name, container_context, request)
        yield from ()

    def _place(
        self,
        ctx: StepHandlerContext,
        step_key: str,
        job_name: str,
        container_context: K8sContainerContext,
        request: StepRequest,
        unusable: Mapping[str, str] | None = None,
        why_moved: str = "",
    ) -> bool:
        """Decide and submit; on a wait decision, remember the step (check_step_health retries it).
        Returns whether the job was created."""
        placer = cast("Placer", self._placer)
        unusable = dict(unusable or {})
        readiness, readiness_summary = self.site_readiness(ctx.instance)
        for _ in range(len(self._settings.clusters) + 1):
            trace = placer.decide(request, unusable, readiness)
            decision = trace.decision
            if decision.is_blocked:
                self._block(ctx, step_key, decision.reason, readiness_summary)
                return False
            if decision.is_wait:
                self._wait(ctx, step_key, decision.reason)
                return False
            cluster = cast("str", decision.cluster)
            placer.reserve(decision, job_name, request)
            try:
                self._create(ctx, step_key, job_name, container_context, request, decision, cluster)
            except Exception as error:
                placer.release(job_name)
                if not is_unreachable_error(error):
                    raise
                unusable[cluster] = f"job creation failed: {describe_api_error(error)}"
                continue
            self._waiting.pop(step_key, None)
            self._placements[step_key] = _Placement(job_name, cluster, decision.site, request)
            self._record(
                ctx,
                step_key,
                job_name,
                decision,
                trace.seconds,
                why_moved,
                trace.source_summary,
                readiness_summary,
            )
            return True
        raise PlacementError(f"step {step_key}: no cluster accepted job {job_name} ({unusable})")

    def _create(
        self,
        ctx: StepHandlerContext,
        step_key: str,
        job_name: str,
        container_context: K8sContainerContext,
        request: StepRequest,
        decision: Decision | None,
        cluster: str,
    ) -> None:
        job = self._build_job(ctx, step_key, job_name, container_context, request, decision, cluster)
        create_job_once(self._clients[cluster].batch_api, job, self._namespace, self._settings.api_timeout_s)

    def _record(
        self,
        ctx: StepHandlerContext,
        step_key: str,
        job_name: str,
        decision: Decision,
        seconds: float,
        why_moved: str,
        snapshot_sources: str = "",
        readiness_summary: str = "",
    ) -> None:
        step_context = ctx.get_step_context(step_key)
        site = cast("Site", decision.site)
        verb = "Moved" if why_moved else "Placed"
        message = (
            f'{verb} step "{step_key}" on {site.value} cluster {decision.cluster} '
            f"(Kubernetes job {job_name}, {decision.gpus} GPU(s)): {why_moved or decision.reason}"
        )
        DagsterEvent.step_worker_starting(
            step_context,
            message=f'Executing step "{step_key}" in Kubernetes job {job_name} on {decision.cluster}.',
            metadata={
                "Kubernetes Job name": MetadataValue.text(job_name),
                "Kubernetes cluster": MetadataValue.text(str(decision.cluster)),
            },
        )
        DagsterEvent.engine_event(
            step_context,
            message,
            EngineEventData(
                metadata={
                    "placement/site": MetadataValue.text(site.value),
                    "placement/cluster": MetadataValue.text(str(decision.cluster)),
                    "placement/reason": MetadataValue.text(why_moved or decision.reason),
                    "placement/gpus": MetadataValue.int(decision.gpus),
                    "placement/decision_ms": MetadataValue.float(round(seconds * 1000, 2)),
                    **(
                        {"placement/snapshot": MetadataValue.text(snapshot_sources)}
                        if snapshot_sources
                        else {}
                    ),
                    **(
                        {"placement/readiness": MetadataValue.text(readiness_summary)}
                        if readiness_summary
                        else {}
                    ),
                    "Kubernetes Job name": MetadataValue.text(job_name),
                }
            ),
        )
        step_context.log.info(message)
        ctx.instance.add_run_tags(ctx.execute_step_args.run_id, {f"{RUN_TAG_PREFIX}{step_key}": site.value})

    def site_readiness(self, instance) -> tuple[dict[str, SiteReadiness], str]:
        """Each cluster's latest readiness materialization younger than ``readiness_max_age_s``, and a
        one-line summary for the placement record. Read at most every few seconds (bursts of launches)."""
        max_age = self._settings.readiness_max_age_s
        if max_age <= 0:
            return {}, ""
        now = self._clock()
        if self._readiness_cache is not None and now - self._readiness_cache[0] < READINESS_CACHE_S:
            return self._readiness_cache[1], self._readiness_cache[2]
        readiness: dict[str, SiteReadiness] = {}
        notes = []
        for cluster in self._settings.clusters:
            name = cluster_asset_name(cluster.context)
            try:
                event = instance.get_latest_materialization_event(AssetKey(name))
            except Exception as error:  # the instance's storage is down: placement goes on without
                notes.append(f"{cluster.context}: readiness unreadable ({type(error).__name__})")
                continue
            if event is None or event.asset_materialization is None:
                notes.append(f"{cluster.context}: no readiness materialization ({name})")
                continue
            metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
            entry, why_not = site_readiness_from_metadata(
                cluster.context, metadata, self._wall_clock() - event.timestamp, max_age
            )
            if entry is None:
                notes.append(why_not)
                continue
            readiness[cluster.context] = entry
            if entry.site_ready and entry.gpu_ready:
                notes.append(f"{cluster.context}: ready")
            else:
                scope = "not ready" if not entry.site_ready else "not ready for GPU steps"
                notes.append(f"{cluster.context}: {scope} ({entry.reason})")
        summary = "; ".join(notes)
        self._readiness_cache = (now, readiness, summary)
        return readiness, summary

    def _block(self, ctx: StepHandlerContext, step_key: str, reason: str, readiness_summary: str) -> None:
        """Readiness rules out every cluster: the next health check fails the step with the reason."""
        self._waiting.pop(step_key, None)
        self._blocked[step_key] = reason
        step_context = ctx.get_step_context(step_key)
        message = f'Step "{step_key}" {reason}'
        DagsterEvent.engine_event(
            step_context,
            message,
            EngineEventData(
                metadata={
                    "placement/blocked": MetadataValue.text(reason),
                    "placement/readiness": MetadataValue.text(readiness_summary),
                }
            ),
        )
        step_context.log.error(message)

    def _wait(self, ctx: StepHandlerContext, step_key: str, reason: str) -> None:
        now = self._clock()
        waiting = self._waiting.get(step_key)
        if waiting is None:
            self._waiting[step_key] = _Waiting(since=now, reason=reason, last_logged=now)
            elapsed = 0.0
        else:
            waiting.reason = reason
            elapsed = now - waiting.since
            if now - waiting.last_logged < 60:
                return
            waiting.last_logged = now
        message = (
            f'Step "{step_key}" is waiting for a cluster ({elapsed:.0f}s of '
            f"{self._settings.cloud_unreachable_timeout_s:.0f}s): {reason}"
        )
        step_context = ctx.get_step_context(step_key)
        DagsterEvent.engine_event(
            step_context, message, EngineEventData(metadata={"placement/waiting": reason})
        )
        step_context.log.warning(message)

    # ---- health -------------------------------------------------------------------------------------------

    def check_step_health(self, step_handler_context: StepHandlerContext) -> CheckStepHealthResult:
        ctx = step_handler_context
        step_key = self._get_step_key(ctx)
        job_name = self._get_k8s_step_job_name(ctx)
        if step_key in self._blocked:
            return CheckStepHealthResult.unhealthy(reason=self._blocked.pop(step_key))
        if step_key in self._waiting:
            return self._retry_waiting(ctx, step_key, job_name)
        located = self._locate(ctx, step_key, job_name)
        if located is None:
            return CheckStepHealthResult.unhealthy(
                reason=f"Kubernetes job {job_name} for step {step_key} could not be found on any cluster "
                f"({', '.join(self._clients)})."
            )
        placement, job = located
        status = job.get("status") or {}
        if status.get("failed"):
            self._forget(job_name)
            return CheckStepHealthResult.unhealthy(
                reason=f"Discovered failed Kubernetes job {job_name} for step {step_key} on cluster "
                f"{placement.cluster}."
            )
        if status.get("succeeded"):
            self._forget(job_name)
            return CheckStepHealthResult.healthy()
        pods = self._pods(placement.cluster, job_name)
        if not placement.recorded:
            self._record_single_cluster(ctx, step_key, placement, pods)
        if placement.site is Site.ONPREM and self._placer is not None:
            self._check_unschedulable(ctx, step_key, placement, pods)
        return CheckStepHealthResult.healthy()

    def _retry_waiting(self, ctx: StepHandlerContext, step_key: str, job_name: str) -> CheckStepHealthResult:
        waiting = self._waiting[step_key]
        container_context = self._get_container_context(ctx)
        request = step_request(step_key, container_context.run_k8s_config, ctx.step_tags[step_key])
        if self._place(ctx, step_key, job_name, container_context, request):
            return CheckStepHealthResult.healthy()
        if step_key in self._blocked:
            return CheckStepHealthResult.unhealthy(reason=self._blocked.pop(step_key))
        elapsed = self._clock() - waiting.since
        if elapsed >= self._settings.cloud_unreachable_timeout_s:
            self._waiting.pop(step_key, None)
            return CheckStepHealthResult.unhealthy(
                reason=f"no cluster could take step {step_key} for {elapsed:.0f}s "
                f"(cloud_unreachable_timeout_s={self._settings.cloud_unreachable_timeout_s:.0f}): "
                f"{waiting.reason}"
            )
        return CheckStepHealthResult.healthy()

    def _locate(
        self, ctx: StepHandlerContext, step_key: str, job_name: str
    ) -> tuple[_Placement, dict] | None:
        """The job and the cluster it is on: the one this process placed it on, else found by its labels
        (the run worker restarted) on every cluster. Raises if a cluster that may hold it does not answer."""
        known = self._placements.get(step_key)
        if known is not None and known.job_name == job_name:
            job = self._read_job(known.cluster, job_name)
            if job is not None:
                return known, job
        found: list[tuple[str, dict]] = []
        errors = []
        selector = f"{PLACEMENT_ID_LABEL}={job_name},dagster/run-id={ctx.execute_step_args.run_id}"
        for cluster, client in self._clients.items():
            try:
                response = client.batch_api.list_namespaced_job(
                    self._namespace,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=self._settings.api_timeout_s,
                )
                items = read_json(response).get("items") or []
            except Exception as error:
                errors.append(f"{cluster}: {describe_api_error(error)}")
                continue
            found.extend(
                (cluster, item) for item in items if not (item.get("metadata") or {}).get("deletionTimestamp")
            )
        if not found:
            if errors:
                raise PlacementError(f"cannot locate Kubernetes job {job_name} for step {step_key}: {errors}")
            return None
        # During a move to the cloud the on-prem job may linger briefly: the cloud one is the live one.
        found.sort(key=lambda item: self._site_rank(item[0]), reverse=True)
        cluster, job = found[0]
        labels = (job.get("metadata") or {}).get("labels") or {}
        site = Site(labels[SITE_LABEL]) if labels.get(SITE_LABEL) in {s.value for s in Site} else None
        placement = _Placement(job_name, cluster, site, recorded=site is not None or self._placer is not None)
        self._placements[step_key] = placement
        return placement, job

    def _site_rank(self, cluster: str) -> int:
        try:
            return 1 if self._settings.cluster(cluster).site is Site.CLOUD else 0
        except PolicyError:
            return 0

    def _read_job(self, cluster: str, job_name: str) -> dict | None:
        try:
            response = self._clients[cluster].batch_api.read_namespaced_job_status(
                job_name,
                self._namespace,
                _preload_content=False,
                _request_timeout=self._settings.api_timeout_s,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return read_json(response)

    def _pods(self, cluster: str, job_name: str) -> list[dict]:
        response = self._clients[cluster].core_api.list_namespaced_pod(
            self._namespace,
            label_selector=f"{PLACEMENT_ID_LABEL}={job_name}",
            _preload_content=False,
            _request_timeout=self._settings.api_timeout_s,
        )
        return read_json(response).get("items") or []

    def _check_unschedulable(
        self, ctx: StepHandlerContext, step_key: str, placement: _Placement, pods: list[dict]
    ) -> None:
        job_name = placement.job_name
        stuck = [(pod, condition) for pod in pods if (condition := _unschedulable_condition(pod))]
        if not stuck:
            self._unschedulable_since.pop(job_name, None)
            return
        now = self._clock()
        since = self._unschedulable_since.setdefault(job_name, now)
        pod, condition = stuck[0]
        elapsed = unschedulable_seconds(condition, now - since, self._wall_clock())
        if elapsed < self._settings.unschedulable_timeout_s:
            return
        why = (
            f"pod {pod['metadata']['name']} Unschedulable on on-prem {placement.cluster} for {elapsed:.0f}s "
            f"(unschedulable_timeout_s={self._settings.unschedulable_timeout_s:.0f}): "
            f"{condition.get('message') or condition.get('reason')}"
        )
        step_context = ctx.get_step_context(step_key)
        step_context.log.warning(f'Step "{step_key}": {why}; deleting job {job_name} and resubmitting')
        self._clients[placement.cluster].delete_job(job_name=job_name, namespace=self._namespace)
        self._forget(job_name)
        self._placements.pop(step_key, None)
        container_context = self._get_container_context(ctx)
        request = step_request(step_key, container_context.run_k8s_config, ctx.step_tags[step_key])
        # Every on-prem cluster is out for this step now; the policy picks a cloud cluster or waits.
        unusable = {c.context: why for c in self._settings.clusters if c.site is Site.ONPREM}
        if self._place(ctx, step_key, job_name, container_context, request, unusable, why_moved=why):
            placed = self._placements[step_key]
            step_context.log.info(f'Step "{step_key}" resubmitted to {placed.site} cluster {placed.cluster}')

    def _record_single_cluster(
        self, ctx: StepHandlerContext, step_key: str, placement: _Placement, pods: list[dict]
    ) -> None:
        """single_cluster mode: the scheduler chose the node; record which site's node it is."""
        node_name = next(
            ((p.get("spec") or {}).get("nodeName") for p in pods if (p.get("spec") or {}).get("nodeName")),
            None,
        )
        if not node_name:
            return
        node = self._clients[placement.cluster].core_api.read_node(
            node_name, _preload_content=False, _request_timeout=self._settings.api_timeout_s
        )
        labels = (read_json(node).get("metadata") or {}).get("labels") or {}
        site = next(
            (
                c.site
                for c in sorted(self._settings.clusters, key=lambda c: -c.affinity_weight)
                if all(labels.get(k) == v for k, v in c.site_node_selector.items())
            ),
            None,
        )
        if site is None:
            return
        placement.site, placement.recorded = site, True
        gpus = placement.request.gpus if placement.request else 0
        decision = Decision(
            step_key=step_key,
            action=Action.PLACE,
            reason=f"scheduled by node affinity on {site.value} node {node_name}",
            gpus=gpus,
            site=site,
            cluster=placement.cluster,
            node=node_name,
        )
        self._record(ctx, step_key, placement.job_name, decision, 0.0, "")

    def close(self) -> None:
        """Stop the placer's watch caches (the executor calls this when the run's steps are done)."""
        if self._placer is not None:
            self._placer.close()

    def _forget(self, job_name: str) -> None:
        self._unschedulable_since.pop(job_name, None)
        if self._placer is not None:
            self._placer.release(job_name)

    # ---- terminate ----------------------------------------------------------------------------------------

    def terminate_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        ctx = step_handler_context
        step_key = self._get_step_key(ctx)
        job_name = self._get_k8s_step_job_name(ctx)
        if self._waiting.pop(step_key, None) is not None:
            yield DagsterEvent.engine_event(
                ctx.get_step_context(step_key),
                message=f"Step {step_key} was still waiting for a cluster: nothing to delete",
                event_specific_data=EngineEventData(),
            )
            return
        located = self._locate(ctx, step_key, job_name)
        if located is None:
            return
        placement, _job = located
        yield DagsterEvent.engine_event(
            ctx.get_step_context(step_key),
            message=f"Deleting Kubernetes job {job_name} for step on cluster {placement.cluster}",
            event_specific_data=EngineEventData(),
        )
        self._clients[placement.cluster].delete_job(job_name=job_name, namespace=self._namespace)
        self._forget(job_name)


def unschedulable_seconds(condition: Mapping[str, Any], seen_for: float, wall_now: float) -> float:
    """How long a pod has been Unschedulable: the longer of how long this step handler has seen it so and
    the age of the condition's lastTransitionTime, so a restarted run worker does not start the clock over."""
    return max(seen_for, _seconds_since(condition.get("lastTransitionTime"), wall_now))


def _seconds_since(timestamp: str | None, now: float) -> float:
    """Seconds from a Kubernetes RFC 3339 timestamp to ``now`` (epoch seconds); 0 if absent, unreadable or
    in the future (clock skew between the API server and us)."""
    if not timestamp:
        return 0.0
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return max(0.0, now - then.timestamp())


def _unschedulable_condition(pod: Mapping[str, Any]) -> dict | None:
    status = pod.get("status") or {}
    if status.get("phase") != "Pending" or (pod.get("spec") or {}).get("nodeName"):
        return None
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return condition
    return None


def create_job_once(batch_api, job: kubernetes.client.V1Job, namespace: str, timeout: float) -> None:
    """Create the job, retrying once after a transport error or a transient status. A 409 on that retry
    means the first attempt did create it (its answer was lost). dagster-k8s 0.29.27's
    ``k8s_api_retry_creation_mutation`` only accepts the 409 when the first failure was an HTTP status, so a
    dropped connection followed by 409 fails the run there."""
    for attempt in (1, 2):
        try:
            batch_api.create_namespaced_job(body=job, namespace=namespace, _request_timeout=timeout)
            return
        except ApiException as error:
            if attempt == 2 and error.status == 409:
                return
            if attempt == 2 or not is_unreachable_error(error):
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if attempt == 2:
                raise
        time.sleep(1.0)


@executor(
    name="astromined_k8s",
    config_schema=PLACEMENT_EXECUTOR_CONFIG_SCHEMA,
    requirements=multiple_process_executor_requirements(),
)
def astromined_k8s_executor(init_context: InitExecutorContext) -> Executor:
    """Runs each step as a Kubernetes Job on the cluster the placement policy picks (docs/kubernetes.md)."""
    return build_executor(init_context.executor_config, init_context.instance.run_launcher)


class PlacementExecutor(StepDelegatingExecutor):
    """StepDelegatingExecutor that stops its step handler's watch caches when the run's steps are done."""

    def __init__(self, step_handler: PlacementStepHandler, **kwargs: Any) -> None:
        super().__init__(step_handler, **kwargs)
        self._placement_handler = step_handler

    def execute(self, plan_context, execution_plan):
        try:
            yield from super().execute(plan_context, execution_plan)
        finally:
            self._placement_handler.close()


def build_executor(exc_cfg: Mapping[str, Any], run_launcher=None, clients=None) -> PlacementExecutor:
    settings = settings_from_config(exc_cfg)
    k8s_launcher = run_launcher if isinstance(run_launcher, K8sRunLauncher) else None
    if (
        settings.kubeconfig_file is None
        and k8s_launcher is not None
        and not k8s_launcher.load_incluster_config
    ):
        settings = dataclasses.replace(settings, kubeconfig_file=k8s_launcher.kubeconfig_file)
    container_context = K8sContainerContext(
        image_pull_policy=exc_cfg.get("image_pull_policy"),
        image_pull_secrets=exc_cfg.get("image_pull_secrets"),
        service_account_name=exc_cfg.get("service_account_name"),
        env_config_maps=exc_cfg.get("env_config_maps"),
        env_secrets=exc_cfg.get("env_secrets"),
        env_vars=exc_cfg.get("env_vars"),
        volume_mounts=exc_cfg.get("volume_mounts"),
        volumes=exc_cfg.get("volumes"),
        labels=exc_cfg.get("labels"),
        namespace=exc_cfg.get("job_namespace") or (k8s_launcher.job_namespace if k8s_launcher else None),
        resources=exc_cfg.get("resources"),
        scheduler_name=exc_cfg.get("scheduler_name"),
        security_context=exc_cfg.get("security_context"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(exc_cfg.get("step_k8s_config", {})),
    )
    handler = PlacementStepHandler(
        settings=settings,
        clients=clients if clients is not None else load_cluster_clients(settings),
        image=exc_cfg.get("job_image"),
        container_context=container_context,
        per_step_k8s_config=exc_cfg.get("per_step_k8s_config", {}),
        enable_owner_references=bool(exc_cfg.get("enable_owner_references", False)),
        fallback_job_config=DagsterK8sJobConfig(
            job_image=exc_cfg.get("job_image"),
            dagster_home=exc_cfg.get("dagster_home"),
            instance_config_map=exc_cfg.get("instance_config_map"),
            postgres_password_secret=exc_cfg.get("postgres_password_secret"),
            image_pull_policy=exc_cfg.get("image_pull_policy"),
        ),
    )
    return PlacementExecutor(
        handler,
        retries=RetryMode.from_config(exc_cfg["retries"]),  # type: ignore[arg-type]
        max_concurrent=exc_cfg.get("max_concurrent"),
        tag_concurrency_limits=exc_cfg.get("tag_concurrency_limits"),
        should_verify_step=True,
        check_step_health_interval_seconds=settings.health_check_interval_s,
        step_dependency_config=StepDependencyConfig.from_config(exc_cfg.get("step_dependency_config")),
    )


PRODUCTION_EXECUTOR_CONFIG = "infra/dagster/executor-prod.yaml"


def production_executor(repo_root: Path) -> ExecutorDefinition:
    """The executor with the production config in infra/dagster/executor-prod.yaml."""
    path = repo_root / PRODUCTION_EXECUTOR_CONFIG
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PlacementError(f"cannot read the executor config {path}: {error}") from None
    if not isinstance(config, dict):
        raise PlacementError(f"{path}: expected a mapping of executor config fields")
    result = process_config(Shape(PLACEMENT_EXECUTOR_CONFIG_SCHEMA), config)
    if not result.success:
        raise PlacementError(f"{path}: invalid executor config: {[e.message for e in result.errors or []]}")
    settings_from_config(cast("dict", result.value))  # the semantic checks, with errors naming the field
    return astromined_k8s_executor.configured(config, name="astromined_k8s")
