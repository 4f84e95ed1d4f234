"""What a change made stale: the assets of a selection whose code, or whose inputs, changed since they were
last materialized, or that were never materialized (for one partition).

The same question the UI's "Materialize changed and missing" asks Dagster, asked in the process that will
then run the answer (``astromined run --stale``): after an edit to the model code only the model assets are
re-run and a day's telemetry and features are reused (asset code versions come from the source,
``assets/code_versions.py``). Dagster answers it publicly only for sensors (``RunRequest(stale_assets_only=
True)``), so the resolver comes from ``placement/dagster_compat.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import dagster as dg

from astromined.placement.dagster_compat import (
    AssetGraphView,
    CachingStaleStatusResolver,
    StaleStatus,
    TemporalContext,
)


@dataclasses.dataclass(frozen=True)
class StaleAsset:
    key: dg.AssetKey
    partition: str | None  # None for an unpartitioned asset
    status: str  # "STALE" or "MISSING"
    causes: tuple[str, ...]  # "<asset>: <reason>" for each root cause, e.g. "has a new code version"

    def describe(self) -> str:
        where = f"[{self.partition}]" if self.partition else ""
        why = "; ".join(self.causes) or "never materialized"
        return f"{self.key.to_user_string()}{where} {self.status.lower()}: {why}"


def stale_assets(
    instance: dg.DagsterInstance,
    definitions: dg.Definitions,
    partition: str,
    selection: Iterable[dg.AssetKey] | None = None,
) -> list[StaleAsset]:
    """The executable assets of ``selection`` (default: all) that are stale or missing; partitioned ones
    for ``partition``. In the asset graph's key order (sorted by name), so the answer is reproducible."""
    graph = definitions.resolve_asset_graph()
    keys = set(selection) if selection is not None else set(graph.get_all_asset_keys())
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=dt.datetime.now(dt.UTC), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    found = []
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_executable:
            continue
        asset_partition = partition if node.is_partitioned else None
        status = resolver.get_status(key, asset_partition)
        if status not in (StaleStatus.STALE, StaleStatus.MISSING):
            continue
        causes = tuple(
            f"{cause.key.asset_key.to_user_string()}: {cause.reason}"
            for cause in resolver.get_stale_root_causes(key, asset_partition)
        )
        found.append(StaleAsset(key, asset_partition, status.value, causes))
    return found


def rerun_selection(
    definitions: dg.Definitions, stale: Iterable[StaleAsset], within: Iterable[dg.AssetKey]
) -> list[dg.AssetKey]:
    """The stale assets and everything downstream of them, limited to ``within`` (a job's assets), sorted.

    Dagster marks a dependent stale only once its input has been re-materialized with a new data version,
    so after an edit to the training code only ``candidate_model`` is stale, yet its evaluation, the
    champion and the uplink package must follow it, or the run would end without a package built from the
    new model."""
    keys = {item.key for item in stale}
    if not keys:
        return []
    graph = definitions.resolve_asset_graph()
    downstream = dg.AssetSelection.assets(*keys).downstream().resolve(graph)
    return sorted(downstream & set(within), key=lambda k: k.to_user_string())
