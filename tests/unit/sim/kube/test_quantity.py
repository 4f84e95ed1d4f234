from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astromined.sim.kube.quantity import (
    QuantityError,
    format_units,
    is_extended_resource,
    parse_quantity,
    to_units,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("1.5", Fraction(3, 2)),
        ("16Gi", Fraction(16 * 2**30)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("1E", Fraction(10**18)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("100n", Fraction(1, 10**7)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parses_kubernetes_quantities(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1 Gi", "1.2.3", "Gi", "1ki", "--1", True, None, [1]])
def test_rejects_what_the_api_server_rejects(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_cpu_in_millicores_rounded_up_and_memory_in_bytes():
    assert to_units("cpu", "500m") == 500
    assert to_units("cpu", "0.0001") == 1
    assert to_units("cpu", "2") == 2000
    assert to_units("memory", "1Gi") == 2**30
    assert to_units("nvidia.com/gpu", "2") == 2
    assert format_units("cpu", 1500) == "1500m" and format_units("cpu", 2000) == "2"
    assert format_units("memory", 2**31) == "2Gi"


def test_extended_resources_are_domain_prefixed_outside_kubernetes_io():
    assert is_extended_resource("nvidia.com/gpu")
    assert not is_extended_resource("cpu")
    assert not is_extended_resource("kubernetes.io/something")
    assert not is_extended_resource("hugepages-2Mi")


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "m", ""]),
)
def test_suffixes_scale_integers_exactly(number, suffix):
    factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    expected = Fraction(number, 1000) if suffix == "m" else Fraction(number * factor.get(suffix, 1))
    assert parse_quantity(f"{number}{suffix}") == expected


@given(st.integers(min_value=0, max_value=10**7))
def test_millicore_strings_round_trip(millis):
    assert to_units("cpu", format_units("cpu", millis)) == millis
