"""The code location of `make demo-k8s`: the local graph and resources, each step a Kubernetes Job.

astromined/definitions.py's definitions for the environment in ASTROMINED_ENV (local in the demo), with
the multi-cluster executor instead of the in-process one. Loaded by the demo's run worker and by every
step pod it starts.
"""

import dagster as dg

from astromined.definitions import build_definitions
from astromined.environment import load_settings
from astromined.placement.executor import astromined_k8s_executor


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings(), executor=astromined_k8s_executor)
