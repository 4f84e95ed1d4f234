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

Around it: the config schema (``executor_schema.py``), a step's request and Job body (``step_job.py``),
the per-context Kubernetes clients (``clients.py``); private Dagster names come from ``dagster_compat.py``.
"""

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import yaml
from dagster import (
    AssetKey,
    DagsterEvent,
    Executor,
    ExecutorDefinition,
    InitExecutorContext,
    MetadataValue,
    Shape,
    executor,
    multiple_process_executor_requirements,
)
from dagster_k8s import DagsterK8sJobConfig, K8sRunLauncher
from dagster_k8s.client import DagsterKubernetesClient
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.executor import K8sStepHandler
from dagster_k8s.job import OwnerReference, UserDefinedDagsterK8sConfig, get_user_defined_k8s_config
from kubernetes.client import V1Job
from kubernetes.client.rest import ApiException

from astromined.placement.clients import create_job_once, load_cluster_clients
from astromined.placement.dagster_compat import (
    CheckStepHealthResult,
    EngineEventData,
    RetryMode,
    StepDelegatingExecutor,
    StepDependencyConfig,
    StepHandler,
    StepHandlerContext,
    process_config,
)
from astromined.placement.executor_schema import PLACEMENT_EXECUTOR_CONFIG_SCHEMA
from astromined.placement.placer import Placer
from astromined.placement.policy import Action, Decision, PolicyError, Site, StepRequest
from astromined.placement.settings import Mode, PlacementSettings, settings_from_config
from astromined.placement.snapshot import (
    PLACEMENT_ID_LABEL,
    describe_api_error,
    is_unreachable_error,
    read_json,
)
from astromined.placement.step_job import (
    SITE_LABEL,
    PlacementError,
    StepLaunch,
    placed_container_context,
    step_job,
    step_request,
)
from astromined.readiness.result import SiteReadiness, cluster_asset_name, site_readiness_from_metadata

RUN_TAG_PREFIX = "astromined/placement/"
# Launches within this many seconds share one read of the readiness materializations.
READINESS_CACHE_S = 5.0


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
        self._executor_image = image
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

    def _launch(self, ctx: StepHandlerContext) -> StepLaunch:
        """The step of ``ctx`` (one step per launch, as dagster-k8s), its job name, context and request."""
        step_key = self._get_step_key(ctx)
        container_context = self._get_container_context(ctx)
        request = step_request(step_key, container_context.run_k8s_config, ctx.step_tags[step_key])
        return StepLaunch(ctx, step_key, self._get_k8s_step_job_name(ctx), container_context, request)

    def _build_job(self, launch: StepLaunch, cluster: str, decision: Decision | None) -> V1Job:
        """The Job for ``cluster``; ``decision`` is None in single_cluster mode (node affinity decides)."""
        context = placed_container_context(self._settings, launch, cluster, decision)
        owner_references = []
        if self._enable_owner_references and cluster == self._home_cluster:
            my_pod = self._detect_current_name_and_uid()
            if my_pod:
                owner_references = [OwnerReference(kind="Pod", name=my_pod[0], uid=my_pod[1])]
        return step_job(launch, context, self._job_config(context, launch.ctx.instance), owner_references)

    # ---- launch -------------------------------------------------------------------------------------------

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        launch = self._launch(step_handler_context)
        step_key, job_name = launch.step_key, launch.job_name
        if self._placer is None:
            cluster = next(iter(self._clients))
            self._create(launch, cluster, None)
            self._placements[step_key] = _Placement(job_name, cluster, None, launch.request, recorded=False)
            DagsterEvent.step_worker_starting(
                launch.ctx.get_step_context(step_key),
                message=f'Executing step "{step_key}" in Kubernetes job {job_name} on {cluster} '
                "(single cluster: node affinity prefers on-prem nodes).",
                metadata={"Kubernetes Job name": MetadataValue.text(job_name)},
            )
            return
        self._placer.start_watching()
        self._place(launch)
        yield from ()

    def _place(
        self, launch: StepLaunch, unusable: Mapping[str, str] | None = None, why_moved: str = ""
    ) -> bool:
        """Decide and submit; on a wait decision, remember the step (check_step_health retries it).
        Returns whether the job was created."""
        ctx, step_key, job_name = launch.ctx, launch.step_key, launch.job_name
        placer = cast("Placer", self._placer)
        unusable = dict(unusable or {})
        readiness, readiness_summary = self.site_readiness(ctx.instance)
        for _ in range(len(self._settings.clusters) + 1):
            trace = placer.decide(launch.request, unusable, readiness)
            decision = trace.decision
            if decision.is_blocked:
                self._block(ctx, step_key, decision.reason, readiness_summary)
                return False
            if decision.is_wait:
                self._wait(ctx, step_key, decision.reason)
                return False
            cluster = cast("str", decision.cluster)
            placer.reserve(decision, job_name, launch.request)
            try:
                self._create(launch, cluster, decision)
            except Exception as error:
                placer.release(job_name)
                if not is_unreachable_error(error):
                    raise
                unusable[cluster] = f"job creation failed: {describe_api_error(error)}"
                continue
            self._waiting.pop(step_key, None)
            self._placements[step_key] = _Placement(job_name, cluster, decision.site, launch.request)
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

    def _create(self, launch: StepLaunch, cluster: str, decision: Decision | None) -> None:
        job = self._build_job(launch, cluster, decision)
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
            return self._retry_waiting(ctx, step_key)
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

    def _retry_waiting(self, ctx: StepHandlerContext, step_key: str) -> CheckStepHealthResult:
        waiting = self._waiting[step_key]
        if self._place(self._launch(ctx)):
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
        # Every on-prem cluster is out for this step now; the policy picks a cloud cluster or waits.
        unusable = {c.context: why for c in self._settings.clusters if c.site is Site.ONPREM}
        if self._place(self._launch(ctx), unusable, why_moved=why):
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
