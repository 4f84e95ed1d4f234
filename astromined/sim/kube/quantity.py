"""Quantities as the simulated scheduler counts them. Parsing is the product's
(`astromined.placement.quantities`, the project's one Kubernetes quantity parser), so the placement policy
and the simulator agree on every request.

The scheduler compares CPU in millicores and everything else in whole base units, rounded up, as Kubernetes
does (`Quantity.MilliValue()` for cpu, `Quantity.Value()` for the rest). A negative quantity is an error
here: admission (`objects.admit_pod`) and cluster files (`spec.ClusterSpec`) reject negatives with their own
messages before anything is counted, as kube-apiserver answers 422 Invalid ("must be greater than or equal
to 0").
"""

from decimal import Decimal

from astromined.placement.quantities import (
    QuantityError,
    base_units,
    cpu_millis,
    parse_quantity,
    parse_signed_quantity,
)

__all__ = [
    "QuantityError",
    "format_units",
    "is_extended_resource",
    "is_whole",
    "parse_quantity",
    "parse_signed_quantity",
    "to_units",
]


def to_units(resource: str, value: str | int | float) -> int:
    """A non-negative quantity as the integer the scheduler adds up: millicores for cpu, base units rounded
    up otherwise. Raises `QuantityError` for a negative or malformed one."""
    return cpu_millis(value) if resource == "cpu" else base_units(value)


def is_whole(quantity: Decimal) -> bool:
    """Whether a parsed quantity is a whole number of units."""
    return quantity.as_integer_ratio()[1] == 1


def format_units(resource: str, units: int) -> str:
    """The inverse of `to_units` for messages and node status: 1500 cpu millis → "1500m", 4 → "4"."""
    if resource == "cpu":
        return str(units // 1000) if units % 1000 == 0 else f"{units}m"
    if resource in ("memory", "ephemeral-storage") and units and units % 2**30 == 0:
        return f"{units // 2**30}Gi"
    if resource in ("memory", "ephemeral-storage") and units and units % 2**20 == 0:
        return f"{units // 2**20}Mi"
    return str(units)


def is_extended_resource(resource: str) -> bool:
    """Extended resources (e.g. nvidia.com/gpu) are whole-unit and may not be over-committed."""
    if "/" not in resource:
        return False
    domain = resource.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io")) and not resource.startswith(
        "hugepages-"
    )
