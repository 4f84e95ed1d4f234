"""Infrastructure readiness: can the pipeline write to the lake, is there disk, does the device compute?

GPU steps depend on this asset, and its blocking check stops them in the same run when a component
is not ready.
"""

import dagster as dg
import pandas as pd

from resources import ComputeResource, LakeResource

MIN_FREE_DISK_BYTES = 2 * 1024**3


class ReadinessConfig(dg.Config):
    min_free_disk_gib: float = MIN_FREE_DISK_BYTES / 1024**3


@dg.asset(
    group_name="infrastructure",
    check_specs=[dg.AssetCheckSpec("all_components_ready", asset="infrastructure_readiness", blocking=True)],
    description="Probes every component the pipeline needs; one row per component with status and detail.",
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

    table = pd.DataFrame(rows)
    for row in rows:
        log = context.log.info if row["ready"] else context.log.error
        log(f"readiness {row['component']}: {'ready' if row['ready'] else 'NOT READY'} — {row['detail']}")
    not_ready = table.loc[~table["ready"], "component"].tolist()
    yield dg.MaterializeResult(
        metadata={
            "components": dg.MetadataValue.md(table.to_markdown(index=False)),
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
        description="not ready: " + ", ".join(not_ready) if not_ready else "every component ready",
        metadata={"not_ready": dg.MetadataValue.json(not_ready)},
    )


defs = dg.Definitions(assets=[infrastructure_readiness])
