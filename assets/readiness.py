"""Infrastructure readiness, one asset per site/component group (group ``infrastructure``):

- ``readiness_cluster_eks_a`` / ``readiness_cluster_eks``: one Kubernetes cluster each (API and version,
  nodes, GPU nodes, NVIDIA device plugin, default StorageClass, namespace, executor RBAC). The placement
  executor reads their latest materialization to keep GPU steps off a site that is not ready;
- ``readiness_object_stores``: lake writable (probe object written, read back, deleted), landing zone
  readable;
- ``readiness_instance_storage``: the Dagster instance's storage (Postgres in production) answers;
- ``readiness_monitoring``: Prometheus ready with every scrape target up, Alertmanager ready with receivers,
  Grafana healthy (and its datasource, when a token is configured);
- ``infrastructure_readiness``: the local probes (lake, free disk, torch device) plus ``gpu_sites``: can
  some site run GPU steps? Its blocking check gates candidate_model. It also sweeps orphaned temp files.

Every probe has its own timeout: a hung API fails its row, never the asset. Components not configured in
this deployment are rows with status ``not_configured``, not failures. Each asset's metadata holds its
readiness table; each has a check (non-blocking for the site groups: one site not ready must not stop
training that another site can run). The exporter turns the rows into
``astromined_readiness_status{component,site,status}`` (docs/monitoring.md).
"""

import time

import dagster as dg
import pandas as pd

from astromined.readiness.result import (
    META_CONFIGURED,
    META_GPU_READY,
    META_REASON,
    Probe,
    ProbeResult,
    Status,
    cluster_asset_name,
    run_probes,
    summarize,
    summary_metadata,
)
from astromined.readiness.services import s3_probes
from resources import ComputeResource, LakeResource, LandingZoneResource
from resources.lake import S3LakeResource
from resources.landing_zone import S3LandingZoneResource
from resources.readiness import READINESS_CLUSTERS, ReadinessResource

MIN_FREE_DISK_BYTES = 2 * 1024**3
GROUP = "infrastructure"
# infrastructure_readiness reads the cluster readiness materializations at most this old for gpu_sites.
GPU_SITES_MAX_AGE_S = 900.0
ROWS_KEY = "readiness/rows"


class ReadinessConfig(dg.Config):
    min_free_disk_gib: float = MIN_FREE_DISK_BYTES / 1024**3


def _table(results: list[ProbeResult]) -> str:
    return pd.DataFrame([r.row() for r in results]).to_markdown(index=False)


def _log(context: dg.AssetExecutionContext, results: list[ProbeResult]) -> None:
    for r in results:
        log = context.log.error if r.failed else context.log.info
        log(f"readiness {r.site}/{r.component}: {r.status.value} — {r.detail}")


def _outputs(asset: str, check: str, results: list[ProbeResult], extra: dict | None = None):
    failed = [r for r in results if r.failed]
    not_ready = [f"{r.site}/{r.component}" for r in failed]
    yield dg.MaterializeResult(
        metadata={
            "components": dg.MetadataValue.md(_table(results)),
            ROWS_KEY: dg.MetadataValue.json([r.row() for r in results]),
            "ready_components": sum(r.status is Status.READY for r in results),
            "not_configured": [
                f"{r.site}/{r.component}" for r in results if r.status is Status.NOT_CONFIGURED
            ],
            "not_ready": dg.MetadataValue.json(not_ready),
            **(extra or {}),
        }
    )
    yield dg.AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{r.site}/{r.component}: {r.detail}" for r in failed)
        or "every component ready",
        metadata={"not_ready": dg.MetadataValue.json(not_ready)},
    )


# The cluster probes ask "may the executor do its job here?" (SelfSubjectAccessReview answers for the caller),
# so in Kubernetes their pods run as the run worker's account, with its kubeconfig (the `eks` context), and
# stay on-prem like the run worker: infra/k8s/base/rbac.yaml grants that account the probes' reads too.
CLUSTER_PROBE_STEP_TAGS = {
    "astromined/site": "onprem",
    "dagster-k8s/config": {
        "pod_spec_config": {
            "service_account_name": "astromined-run",
            "volumes": [
                {
                    "name": "kubeconfig",
                    "secret": {"secret_name": "astromined-kubeconfig", "default_mode": 0o400},
                }
            ],
        },
        "container_config": {
            "volume_mounts": [
                {
                    "name": "kubeconfig",
                    "mount_path": "/var/run/secrets/astromined/kubeconfig",
                    "read_only": True,
                }
            ]
        },
    },
}


def _cluster_asset(context_name: str) -> dg.AssetsDefinition:
    name = cluster_asset_name(context_name)

    @dg.asset(
        name=name,
        group_name=GROUP,
        op_tags=CLUSTER_PROBE_STEP_TAGS,
        check_specs=[dg.AssetCheckSpec("cluster_ready", asset=name)],
        description=f"Readiness of Kubernetes cluster {context_name}: API and version, nodes Ready, "
        "GPU nodes with allocatable nvidia.com/gpu, NVIDIA device plugin DaemonSet, default StorageClass, "
        "the pipeline namespace and the executor's RBAC (SelfSubjectAccessReview). Read by placement.",
    )
    def cluster_readiness(context: dg.AssetExecutionContext, readiness: ReadinessResource):
        probes, configured = readiness.cluster_probes(context_name)
        results = run_probes(probes)
        _log(context, results)
        summary = summarize(context_name, results)
        yield from _outputs(name, "cluster_ready", results, summary_metadata(summary, configured))

    return cluster_readiness


cluster_readiness_assets = [_cluster_asset(c) for c in READINESS_CLUSTERS]


@dg.asset(
    group_name=GROUP,
    check_specs=[dg.AssetCheckSpec("object_stores_ready", asset="readiness_object_stores")],
    description="Lake writable (a probe object written, read back and deleted) and landing zone readable.",
)
def readiness_object_stores(
    context: dg.AssetExecutionContext,
    readiness: ReadinessResource,
    lake: LakeResource,
    landing_zone: LandingZoneResource,
):
    timeout = readiness.probe_timeout_s
    probes: list[Probe] = []
    if isinstance(lake, S3LakeResource):
        probes.append(_s3(lake, timeout, lake=True))
    else:
        probes.append(Probe("lake_bucket", "object_stores", lake.probe, timeout))
    if isinstance(landing_zone, S3LandingZoneResource):
        probes.append(_s3(landing_zone, timeout, lake=False))
    else:
        store = landing_zone.store()

        def landing_readable() -> tuple[bool, str]:
            keys = store.list_keys("")
            return True, f"{store.describe('')} readable ({len(keys)} object(s))"

        probes.append(Probe("landing_zone", "object_stores", landing_readable, timeout))
    results = run_probes(probes)
    _log(context, results)
    yield from _outputs("readiness_object_stores", "object_stores_ready", results)


def _s3(resource, timeout: float, *, lake: bool) -> Probe:
    import boto3

    def factory():
        return boto3.client("s3", endpoint_url=resource.endpoint_url, region_name=resource.region_name)

    probes = s3_probes(
        factory,
        resource.bucket if lake else "",
        "" if lake else resource.bucket,
        lake_prefix=resource.prefix,
        landing_prefix=resource.prefix,
        timeout_s=timeout,
    )
    return probes[0] if lake else probes[1]


@dg.asset(
    group_name=GROUP,
    check_specs=[dg.AssetCheckSpec("instance_storage_ready", asset="readiness_instance_storage")],
    description="The Dagster instance's run, event-log and schedule storage answer (Postgres in production).",
)
def readiness_instance_storage(context: dg.AssetExecutionContext, readiness: ReadinessResource):
    instance = context.instance

    def storage(kind: str, call):
        def probe() -> tuple[bool, str]:
            call()
            return True, f"{kind} storage {type(getattr(instance, kind + '_storage')).__name__} answers"

        return Probe(f"{kind}_storage", "instance_storage", probe, readiness.probe_timeout_s)

    results = run_probes(
        [
            storage("run", lambda: instance.get_runs(limit=1)),
            storage("event_log", lambda: instance.event_log_storage.get_asset_records([dg.AssetKey(GROUP)])),
            storage("schedule", lambda: instance.all_instigator_state()),
        ]
    )
    _log(context, results)
    yield from _outputs("readiness_instance_storage", "instance_storage_ready", results)


@dg.asset(
    group_name=GROUP,
    check_specs=[dg.AssetCheckSpec("monitoring_stack_ready", asset="readiness_monitoring")],
    description="Prometheus ready with every scrape target up, Alertmanager ready with its receivers, "
    "Grafana healthy with its datasource (when configured).",
)
def readiness_monitoring(context: dg.AssetExecutionContext, readiness: ReadinessResource):
    results = run_probes(readiness.monitoring_probes())
    _log(context, results)
    yield from _outputs("readiness_monitoring", "monitoring_stack_ready", results)


def gpu_sites_row(
    instance: dg.DagsterInstance, now: float, max_age_s: float = GPU_SITES_MAX_AGE_S
) -> ProbeResult:
    """Can some site run GPU steps? From the latest cluster readiness materializations (not older than
    ``max_age_s``). No cluster configured or none materialized recently: not configured (local mode)."""
    configured, ready, failed, stale = [], [], [], []
    for context_name in READINESS_CLUSTERS:
        event = instance.get_latest_materialization_event(dg.AssetKey(cluster_asset_name(context_name)))
        if event is None or event.asset_materialization is None:
            continue
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        if not metadata.get(META_CONFIGURED):
            continue
        if now - event.timestamp > max_age_s:
            stale.append(context_name)
            continue
        configured.append(context_name)
        if metadata.get(META_GPU_READY):
            ready.append(context_name)
        else:
            failed.append(f"{context_name}: {metadata.get(META_REASON) or 'not ready'}")
    if not configured:
        detail = "no cluster readiness recorded" + (
            f" within {max_age_s:.0f}s ({', '.join(stale)} older)" if stale else ""
        )
        return ProbeResult("gpu_sites", "clusters", Status.NOT_CONFIGURED, detail)
    if ready:
        note = f"; not ready: {'; '.join(failed)}" if failed else ""
        return ProbeResult(
            "gpu_sites", "clusters", Status.READY, f"GPU steps can run on {', '.join(ready)}{note}"
        )
    return ProbeResult(
        "gpu_sites", "clusters", Status.NOT_READY, f"no site can run GPU steps: {'; '.join(failed)}"
    )


@dg.asset(
    group_name=GROUP,
    deps=[*(a.key for a in cluster_readiness_assets)],
    check_specs=[dg.AssetCheckSpec("all_components_ready", asset="infrastructure_readiness", blocking=True)],
    description="The local probes (lake, free disk, compute device) and whether some site can run GPU steps; "
    "one row per component. Its blocking check stops GPU training in the same run when one is not ready.",
)
def infrastructure_readiness(
    context: dg.AssetExecutionContext, config: ReadinessConfig, lake: LakeResource, compute: ComputeResource
):
    rows: list[dict[str, object]] = []
    # Every main-job run starts here: clear what killed runs left half-written (never work in progress).
    orphans = lake.sweep_orphans()
    if orphans:
        context.log.warning(f"removed {len(orphans)} temp/staging file(s) of killed writers: {orphans[:10]}")
    ok, detail = lake.probe()
    rows.append({"component": "lake", "ready": ok, "detail": detail})
    free = lake.free_bytes()
    if free is not None:
        need = config.min_free_disk_gib * 1024**3
        rows.append(
            {
                "component": "lake_disk",
                "ready": free >= need,
                "detail": f"{free / 1024**3:.1f} GiB free (need {config.min_free_disk_gib:.1f} GiB)",
            }
        )
    ok, detail = compute.probe()
    rows.append({"component": "compute_device", "ready": ok, "detail": detail})
    gpu_sites = gpu_sites_row(context.instance, time.time())
    rows.append(
        {
            "component": "gpu_sites",
            "ready": gpu_sites.status is not Status.NOT_READY,
            "detail": gpu_sites.detail,
        }
    )

    table = pd.DataFrame(rows)
    for row in rows:
        log = context.log.info if row["ready"] else context.log.error
        log(f"readiness {row['component']}: {'ready' if row['ready'] else 'NOT READY'} — {row['detail']}")
    not_ready = table.loc[~table["ready"], "component"].tolist()
    # gpu_sites names the sites and their failed components; the local rows name themselves.
    failed_details = [
        f"{r['component']} ({r['detail']})" if r["component"] == "gpu_sites" else str(r["component"])
        for r in rows
        if not r["ready"]
    ]
    statuses = [
        ProbeResult(
            str(r["component"]),
            "clusters" if r["component"] == "gpu_sites" else "local",
            gpu_sites.status
            if r["component"] == "gpu_sites"
            else (Status.READY if r["ready"] else Status.NOT_READY),
            str(r["detail"]),
        ).row()
        for r in rows
    ]
    yield dg.MaterializeResult(
        metadata={
            "components": dg.MetadataValue.md(table.to_markdown(index=False)),
            ROWS_KEY: dg.MetadataValue.json(statuses),
            "ready_components": int(table["ready"].sum()),
            "not_ready": dg.MetadataValue.json(not_ready),
            "orphans_removed": len(orphans),
            **{f"ready/{r['component']}": bool(r["ready"]) for r in rows},
        }
    )
    yield dg.AssetCheckResult(
        check_name="all_components_ready",
        passed=not not_ready,
        severity=dg.AssetCheckSeverity.ERROR,
        description=("not ready: " + "; ".join(failed_details)) if not_ready else "every component ready",
        metadata={"not_ready": dg.MetadataValue.json(not_ready)},
    )


READINESS_ASSETS = [
    *cluster_readiness_assets,
    readiness_object_stores,
    readiness_instance_storage,
    readiness_monitoring,
    infrastructure_readiness,
]
defs = dg.Definitions(assets=READINESS_ASSETS)
