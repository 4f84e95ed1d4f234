"""Status fragments the simulated controllers write: conditions and container statuses."""

from collections.abc import Mapping
from typing import Any


def condition(kind: str, status: str, stamp: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": stamp}


def base_container_status(container: Mapping[str, Any], restarts: int) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"sim://{container['image']}",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "lastState": {},
        "state": {},
    }


def waiting_container_status(container: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {**base_container_status(container, 0), "state": {"waiting": {"reason": reason}}}
