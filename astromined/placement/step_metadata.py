"""The placement of the running step, for its materialization metadata.

The executor passes its decision to the step pod as ``ASTROMINED_PLACEMENT_*`` env vars (executor.py); an
asset adds ``placement_metadata()`` to its MaterializeResult metadata to keep the placement with the
asset. Outside the Kubernetes executor (local runs) it is empty.
"""

import os
from collections.abc import Mapping

ENV_SITE = "ASTROMINED_PLACEMENT_SITE"
ENV_CLUSTER = "ASTROMINED_PLACEMENT_CLUSTER"
ENV_REASON = "ASTROMINED_PLACEMENT_REASON"
ENV_GPUS = "ASTROMINED_PLACEMENT_GPUS"
ENV_TO_METADATA = {
    ENV_SITE: "placement/site",
    ENV_CLUSTER: "placement/cluster",
    ENV_REASON: "placement/reason",
    ENV_GPUS: "placement/gpus",
}


def placement_metadata(environ: Mapping[str, str] | None = None) -> dict[str, str | int]:
    environ = os.environ if environ is None else environ
    metadata: dict[str, str | int] = {}
    for env, key in ENV_TO_METADATA.items():
        if env in environ:
            metadata[key] = int(environ[env]) if key == "placement/gpus" else environ[env]
    return metadata
