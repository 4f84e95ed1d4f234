"""The code location: merges each layer's definitions and applies environment-wide choices once.

Loaded lazily: the environment is read when Dagster loads definitions, never at import time.
"""

from __future__ import annotations

import dagster as dg

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
import assets.uplink
from assets.code_versions import with_code_versions
from astromined.automation import build_automation
from astromined.automation.freshness import with_freshness_policies
from astromined.environment import Environment, Settings, load_settings
from resources import build_resources

LAYERS = (
    assets.readiness.defs,
    assets.telemetry.defs,
    assets.features.defs,
    assets.models.defs,
    assets.uplink.defs,
)


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    if settings.environment is Environment.LOCAL:
        # Multiprocess costs ~3.4 s per step here; the local graph is small enough to run in one process.
        return dg.in_process_executor
    # Each step a Kubernetes Job on on-prem EKS-A first, spilling GPU steps to EKS (docs/kubernetes.md).
    from astromined.environment import REPO_ROOT
    from astromined.placement.executor import production_executor

    return production_executor(REPO_ROOT)


def build_definitions(settings: Settings, executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """``executor`` overrides the environment's (make demo-k8s runs the local graph on Kubernetes)."""
    merged = dg.Definitions.merge(
        *LAYERS,
        build_automation(settings),
        dg.Definitions(resources=build_resources(settings), executor=executor or executor_for(settings)),
    )
    # Cross-cutting policy, once for every layer: code versions from the code each asset reaches (a model
    # code change makes only the model assets stale: assets/code_versions.py), freshness
    # (astromined/automation/freshness.py).
    return with_freshness_policies(with_code_versions(merged))


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
