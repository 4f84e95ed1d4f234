"""Kubernetes resource quantities ("500m", "4Gi", "1e3", "2") as integers the placement policy can add up.

CPU is counted in millicores, memory in bytes, GPUs (and any other extended resource) as whole units, all
rounded up as Kubernetes does (`Quantity.MilliValue()` for cpu, `Quantity.Value()` for the rest).

This is the project's one quantity parser: the Kubernetes simulator (`astromined.sim.kube`) uses it too, so
the placement policy and the simulated scheduler never disagree about a request. The grammar is the one of
`k8s.io/apimachinery/pkg/api/resource.Quantity`: a signed decimal number (ASCII digits) followed by a
binary-SI suffix (Ki … Ei), a decimal-SI suffix (n, u, m, k, M, G, T, P, E) or a decimal exponent (e3,
E-2), never two of them. Values are exact (`Decimal` arithmetic sized to the number, no rounding).

Requests, limits and allocatable may not be negative (kube-apiserver answers 422 Invalid, "must be greater
than or equal to 0"), so `parse_quantity` and the unit functions reject a negative quantity.
`parse_signed_quantity` reads the grammar alone, for a caller that reports negatives itself (the
simulator's admission, which answers with the API server's own message).
"""

import functools
import math
import re
from decimal import Context, Decimal, DecimalException

GPU_RESOURCE = "nvidia.com/gpu"

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)
# Exponents beyond this are not quantities a cluster has (Kubernetes caps values near 2^63).
_MAX_EXPONENT = 10_000


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity (or, for `parse_quantity`, a negative one)."""


def parse_signed_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/)
    as an exact Decimal in base units (cores, bytes, devices), sign included."""
    if isinstance(value, bool):
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a Kubernetes quantity: {value!r}")
        return Decimal(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    return _parse_string(value)


def parse_quantity(value: str | int | float) -> Decimal:
    """A non-negative Kubernetes quantity as an exact Decimal in base units."""
    quantity = parse_signed_quantity(value)
    if quantity < 0:
        raise QuantityError(f"not a non-negative Kubernetes quantity: {value!r}")
    return quantity


# A cluster's pods repeat a handful of distinct quantity strings: parse each once.
@functools.lru_cache(maxsize=8192)
def _parse_string(text: str) -> Decimal:
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QuantityError(f"not a Kubernetes quantity: {text!r}")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    # Enough digits that no product below is rounded: the number's own plus 2^60's 19.
    exact = Context(prec=len(match["number"]) + 20, Emax=_MAX_EXPONENT + 100, Emin=-_MAX_EXPONENT - 100)
    try:
        if suffix in _BINARY_SUFFIXES:
            return exact.multiply(number, _BINARY_SUFFIXES[suffix])
        exponent = _DECIMAL_EXPONENTS[suffix] if suffix in _DECIMAL_EXPONENTS else int(suffix[1:] or 0)
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"not a Kubernetes quantity (exponent out of range): {text!r}")
        return number.scaleb(exponent, exact)
    except DecimalException:
        raise QuantityError(f"not a Kubernetes quantity: {text!r}") from None


def _ceil(quantity: Decimal, scale: int = 1) -> int:
    """`quantity * scale` rounded up, in integers (exact for any size)."""
    numerator, denominator = quantity.as_integer_ratio()
    return -((-numerator * scale) // denominator)


@functools.lru_cache(maxsize=4096)
def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up (Kubernetes rounds requests up to the millicore)."""
    return _ceil(parse_quantity(value), 1000)


@functools.lru_cache(maxsize=4096)
def base_units(value: str | int | float) -> int:
    """Any resource but cpu in its base unit (bytes for memory and storage), rounded up."""
    return _ceil(parse_quantity(value))


def memory_bytes(value: str | int | float) -> int:
    return base_units(value)


@functools.lru_cache(maxsize=4096)
def whole_units(value: str | int | float, *, what: str = GPU_RESOURCE) -> int:
    """An extended resource such as nvidia.com/gpu, which Kubernetes only allows in whole units."""
    numerator, denominator = parse_quantity(value).as_integer_ratio()
    if denominator != 1:
        raise QuantityError(f"{what} must be a whole number, got {value!r}")
    return numerator
