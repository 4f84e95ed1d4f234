"""Every asset's Dagster code version, computed from the code its computation reaches.

Change the model code (``astromined/ml/model.py``) and Dagster marks ``candidate_model`` and what is
downstream of it stale ("code version changed"), while ``raw_telemetry``, ``asteroid_features`` and
``training_set`` stay fresh: the model-iteration loop re-materializes only what the change affects (the
UI's "Materialize changed and missing", or ``dagster asset materialize --select`` the stale assets;
docs/operations.md). The version is a hash of the asset function, the asset-layer helpers and config
classes it uses, and the domain modules those reach (``astromined/source_version.py``); orchestration
modules (resources, automation, monitoring, the executor) are deliberately not part of it: changing how
a step is run or watched does not change what it computes.
"""

from __future__ import annotations

import warnings

import dagster as dg

from astromined.source_version import SourceIndex, source_version

# The domain library: what the assets compute with.
DOMAIN_PACKAGES = (
    "astromined.telemetry",
    "astromined.features",
    "astromined.ml",
    "astromined.calibration",
    "astromined.taxonomy",
    "astromined.physics",
    "astromined.storage",
    "astromined.lake_layout",
    "astromined.fleet",
    "astromined.readiness",
)
# The asset layer: helpers and config classes defined next to the assets.
ASSET_PACKAGES = ("assets",)


def computed_code_versions(defs: dg.Definitions) -> dict[dg.AssetKey, str]:
    versions, index = {}, SourceIndex()
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        fn = assets_def.op.compute_fn.decorated_fn
        version = source_version(fn, DOMAIN_PACKAGES, ASSET_PACKAGES, index)
        for key in assets_def.keys:
            versions[key] = version
    return versions


def with_code_versions(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with every executable asset's code version set from its code (an explicit one is kept)."""
    versions = computed_code_versions(defs)

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.code_version is not None or spec.key not in versions:
            return spec
        return spec.replace_attributes(code_version=versions[spec.key])

    with warnings.catch_warnings():  # "preview" in 1.13, as in astromined/automation/freshness.py
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_resolved_asset_specs(func=attach)
