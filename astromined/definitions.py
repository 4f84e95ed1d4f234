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
import astromined.automation
from astromined.environment import Environment, Settings, load_settings
from resources import build_resources

LAYERS = (
    assets.readiness.defs,
    assets.telemetry.defs,
    assets.features.defs,
    assets.models.defs,
    assets.uplink.defs,
    astromined.automation.defs,
)


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    if settings.environment is Environment.LOCAL:
        # Multiprocess costs ~3.4 s per step here; the local graph is small enough to run in one process.
        return dg.in_process_executor
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        *LAYERS,
        dg.Definitions(resources=build_resources(settings), executor=executor_for(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
