"""The project's one Kubernetes quantity parser (`astromined.placement.quantities`): the apimachinery
grammar, exact values, and negatives rejected where a request, limit or allocatable is read."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astromined.placement.quantities import (
    QuantityError,
    base_units,
    cpu_millis,
    parse_quantity,
    parse_signed_quantity,
    whole_units,
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
        ("+2", Fraction(2)),
        (" 2Gi ", Fraction(2 * 2**30)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parses_kubernetes_quantities(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1Gb",
        "1 Gi",
        "1.2.3",
        "Gi",
        "1ki",
        "1K",
        "--1",
        "1e3m",  # an exponent and a suffix: not the grammar (Python's Decimal would take "1e3" + "m")
        "1_000",  # Python's Decimal accepts underscores, Kubernetes does not
        "١",  # a non-ASCII digit
        "Infinity",
        "nan",
        float("inf"),
        True,
        None,
        [1],
    ],
)
def test_rejects_what_the_api_server_rejects(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize("value", ["-1", "-500m", "-1Gi", "-1e3", -1, -0.5])
def test_negative_quantities_are_no_requests(value):
    """Strings and numbers alike (the old parser let a negative int through)."""
    assert parse_signed_quantity(value) < 0
    for read in (parse_quantity, cpu_millis, base_units, whole_units):
        with pytest.raises(QuantityError, match="non-negative"):
            read(value)


def test_minus_zero_is_zero():
    assert cpu_millis("-0") == 0 and base_units("-0Gi") == 0


def test_values_are_exact_beyond_decimal_default_precision():
    digits = "1234567890" * 4
    assert parse_quantity(digits + "Ei") == int(digits) * 2**60
    assert cpu_millis(digits + ".0001") == int(digits) * 1000 + 1
    assert base_units("0." + "0" * 40 + "1") == 1


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "m", ""]),
)
def test_suffixes_scale_integers_exactly(number, suffix):
    factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    expected = Fraction(number, 1000) if suffix == "m" else Fraction(number * factor.get(suffix, 1))
    assert parse_quantity(f"{number}{suffix}") == expected


@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=-30, max_value=30))
def test_exponents_are_powers_of_ten(mantissa, exponent):
    assert parse_signed_quantity(f"{mantissa}e{exponent}") == Decimal(mantissa).scaleb(exponent)
