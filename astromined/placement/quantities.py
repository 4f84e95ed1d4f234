"""Kubernetes resource quantities ("500m", "4Gi", "2") as integers the placement policy can add up.

CPU is counted in millicores, memory in bytes, GPUs (and any other extended resource) as whole units.
"""

import functools
from decimal import Decimal, InvalidOperation

GPU_RESOURCE = "nvidia.com/gpu"

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


class QuantityError(ValueError):
    pass


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/)
    as an exact Decimal in base units."""
    if isinstance(value, bool):
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    if not text:
        raise QuantityError("empty Kubernetes quantity")
    for suffix, factor in _BINARY_SUFFIXES.items():
        if text.endswith(suffix):
            return _number(text[: -len(suffix)], value) * factor
    suffix = text[-1] if text[-1] in _DECIMAL_SUFFIXES and not text[-1].isdigit() else ""
    number = text[: -len(suffix)] if suffix else text
    return _number(number, value) * _DECIMAL_SUFFIXES[suffix]


def _number(text: str, original: object) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise QuantityError(f"not a Kubernetes quantity: {original!r}") from None
    if not number.is_finite() or number < 0:
        raise QuantityError(f"not a non-negative Kubernetes quantity: {original!r}")
    return number


# A cluster's pods repeat a handful of distinct quantity strings: parse each once.
@functools.lru_cache(maxsize=4096)
def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up (Kubernetes rounds requests up to the millicore)."""
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


@functools.lru_cache(maxsize=4096)
def memory_bytes(value: str | int | float) -> int:
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


@functools.lru_cache(maxsize=4096)
def whole_units(value: str | int | float, *, what: str = GPU_RESOURCE) -> int:
    """An extended resource such as nvidia.com/gpu, which Kubernetes only allows in whole units."""
    quantity = parse_quantity(value)
    if quantity != quantity.to_integral_value():
        raise QuantityError(f"{what} must be a whole number, got {value!r}")
    return int(quantity)
