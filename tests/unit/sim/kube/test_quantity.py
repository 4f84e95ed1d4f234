"""Quantities as the simulated scheduler counts them (parsing is the product's, see
tests/unit/placement/test_quantities.py and test_quantity_agreement.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astromined.placement import quantities as product
from astromined.sim.kube import quantity
from astromined.sim.kube.quantity import QuantityError, format_units, is_extended_resource, to_units


def test_cpu_in_millicores_rounded_up_and_memory_in_bytes():
    assert to_units("cpu", "500m") == 500
    assert to_units("cpu", "0.0001") == 1
    assert to_units("cpu", "2") == 2000
    assert to_units("memory", "1Gi") == 2**30
    assert to_units("nvidia.com/gpu", "2") == 2
    assert format_units("cpu", 1500) == "1500m" and format_units("cpu", 2000) == "2"
    assert format_units("memory", 2**31) == "2Gi"


@pytest.mark.parametrize("value", ["-1", "-1Gi", -2, "lots"])
def test_a_negative_or_malformed_quantity_is_an_error_not_a_negative_count(value):
    """Admission rejects such pods first (422); counting one anyway is a bug, not a -1000 millicore pod."""
    for resource in ("cpu", "memory", "nvidia.com/gpu"):
        with pytest.raises(QuantityError):
            to_units(resource, value)


def test_the_simulator_has_no_quantity_parser_of_its_own():
    assert quantity.parse_quantity is product.parse_quantity
    assert quantity.parse_signed_quantity is product.parse_signed_quantity
    assert quantity.QuantityError is product.QuantityError


def test_extended_resources_are_domain_prefixed_outside_kubernetes_io():
    assert is_extended_resource("nvidia.com/gpu")
    assert not is_extended_resource("cpu")
    assert not is_extended_resource("kubernetes.io/something")
    assert not is_extended_resource("hugepages-2Mi")


@given(st.integers(min_value=0, max_value=10**7))
def test_millicore_strings_round_trip(millis):
    assert to_units("cpu", format_units("cpu", millis)) == millis
