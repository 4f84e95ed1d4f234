"""Kubernetes resource quantities ("500m", "16Gi", "1e3", "2") parsed exactly.

The grammar is the one of `k8s.io/apimachinery/pkg/api/resource.Quantity`: a signed decimal number followed by
a binary-SI suffix (Ki … Ei), a decimal-SI suffix (n, u, m, k, M, G, T, P, E) or a decimal exponent (e3, E-2).
The scheduler compares CPU in millicores and everything else in whole base units, rounded up, as Kubernetes
does (`Quantity.MilliValue()` for cpu, `Quantity.Value()` for the rest).
"""

import re
from fractions import Fraction
from functools import lru_cache

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity in base units (cores, bytes, devices)."""
    if isinstance(value, bool):
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    return _parse_string(value)


@lru_cache(maxsize=8192)
def _parse_string(value: str) -> Fraction:
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def to_units(resource: str, value: str | int | float) -> int:
    """A quantity as the integer the scheduler adds up: millicores for cpu, base units rounded up
    otherwise."""
    quantity = parse_quantity(value)
    if resource == "cpu":
        return _ceil(quantity * 1000)
    return _ceil(quantity)


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
