"""The mining-value score and per-sector rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.ml.scoring import mining_value, rank_sectors
from astromined.taxonomy import COMPLEX_BASE_VALUE, COMPLEX_INDEX, COMPLEXES, METAL_RICH_COMPLEX

N = len(COMPLEXES)
M = COMPLEX_INDEX[METAL_RICH_COMPLEX]


def probability_vectors(min_size: int = 1, max_size: int = 8):
    def normalise(rows):
        p = np.asarray(rows, dtype=np.float64) + 1e-9
        return p / p.sum(axis=1, keepdims=True)

    row = st.lists(st.floats(0.0, 1.0), min_size=N, max_size=N)
    return st.lists(row, min_size=min_size, max_size=max_size).map(normalise)


def test_one_hot_value_is_the_base_value_doubled_at_full_metal():
    one_hot = np.eye(N)
    np.testing.assert_allclose(mining_value(one_hot, np.zeros(N)), [COMPLEX_BASE_VALUE[c] for c in COMPLEXES])
    np.testing.assert_allclose(
        mining_value(one_hot, np.ones(N)), [2 * COMPLEX_BASE_VALUE[c] for c in COMPLEXES]
    )
    assert mining_value(one_hot[[M]], np.array([0.5]))[0] == pytest.approx(1.5)


def test_hand_computed_mixture():
    p = np.zeros((1, N))
    p[0, COMPLEX_INDEX["S"]] = 0.5
    p[0, COMPLEX_INDEX["M"]] = 0.25
    p[0, COMPLEX_INDEX["C"]] = 0.25
    # (0.5·0.30 + 0.25·1.00 + 0.25·0.45) · (1 + 0.2)
    assert mining_value(p, np.array([0.2]))[0] == pytest.approx((0.15 + 0.25 + 0.1125) * 1.2)


def test_metal_richness_is_clipped_to_unit_interval():
    p = np.eye(N)[[M, M, M, M]]
    values = mining_value(p, np.array([-0.5, 0.0, 1.0, 3.0]))
    np.testing.assert_allclose(values, [1.0, 1.0, 2.0, 2.0])


def test_m_type_is_the_most_valuable_complex():
    assert max(COMPLEX_BASE_VALUE, key=COMPLEX_BASE_VALUE.get) == METAL_RICH_COMPLEX


@settings(max_examples=50, deadline=None)
@given(probabilities=probability_vectors(), metal=st.floats(0.0, 1.0), shift=st.floats(0.0, 1.0))
def test_value_is_monotone_in_p_m(probabilities, metal, shift):
    """Moving probability mass from the other complexes onto M never lowers the value."""
    moved = probabilities * (1.0 - shift)
    moved[:, M] += shift
    np.testing.assert_allclose(moved.sum(axis=1), 1.0)
    assert (moved[:, M] >= probabilities[:, M] - 1e-12).all()
    richness = np.full(len(probabilities), metal)
    before = mining_value(probabilities, richness)
    after = mining_value(moved, richness)
    assert (after >= before - 1e-12).all()
    if shift > 0.01:
        gained = probabilities[:, M] < 0.99
        assert (after[gained] > before[gained]).all()


@settings(max_examples=50, deadline=None)
@given(probabilities=probability_vectors(), low=st.floats(-1.0, 2.0), high=st.floats(-1.0, 2.0))
def test_value_is_monotone_in_metal_richness(probabilities, low, high):
    low, high = min(low, high), max(low, high)
    n = len(probabilities)
    v_low = mining_value(probabilities, np.full(n, low))
    v_high = mining_value(probabilities, np.full(n, high))
    assert (v_high >= v_low - 1e-12).all()
    assert ((v_low >= 0) & (v_high <= 2.0 + 1e-12)).all()
    if 0.0 <= low < high - 1e-6 <= 1.0:
        assert (v_high > v_low).all()


# --- rank_sectors -----------------------------------------------------------------------------


def test_rank_sectors_orders_by_total_value():
    sector = np.array([3, 3, 3, 7, 7, 12])
    value = np.array([0.2, 0.2, 0.2, 1.0, 0.1, 0.5])
    p_m = np.array([0.0, 0.1, 0.1, 0.9, 0.0, 0.4])
    ranked = rank_sectors(sector, value, p_m)
    assert list(ranked.columns) == [
        "rank",
        "sector",
        "asteroids",
        "expected_mining_value",
        "total_mining_value",
        "expected_m_types",
    ]
    assert ranked["rank"].tolist() == [1, 2, 3]
    assert ranked["sector"].tolist() == [7, 3, 12]
    assert ranked["asteroids"].tolist() == [2, 3, 1]
    np.testing.assert_allclose(ranked["total_mining_value"], [1.1, 0.6, 0.5])
    np.testing.assert_allclose(ranked["expected_mining_value"], [0.55, 0.2, 0.5])
    np.testing.assert_allclose(ranked["expected_m_types"], [0.9, 0.2, 0.4])


def test_rank_sectors_is_not_fooled_by_a_high_mean_in_a_small_sector():
    sector = np.array([1, 2, 2, 2, 2])
    value = np.array([1.9, 0.6, 0.6, 0.6, 0.6])
    ranked = rank_sectors(sector, value, np.zeros(5))
    assert ranked["sector"].tolist() == [2, 1]
    assert ranked.loc[ranked["sector"] == 1, "expected_mining_value"].item() == pytest.approx(1.9)


def test_rank_sectors_of_nothing_is_empty():
    ranked = rank_sectors(np.array([], dtype=int), np.array([]), np.array([]))
    assert ranked.empty
    assert "rank" in ranked.columns and "total_mining_value" in ranked.columns


def test_rank_sectors_from_mining_values():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(N), size=200)
    metal = rng.uniform(size=200)
    sector = rng.integers(0, 50, size=200)
    value = mining_value(probabilities, metal)
    ranked = rank_sectors(sector, value, probabilities[:, M])
    assert ranked["asteroids"].sum() == 200
    assert ranked["total_mining_value"].sum() == pytest.approx(value.sum())
    assert ranked["expected_m_types"].sum() == pytest.approx(probabilities[:, M].sum())
    assert ranked["total_mining_value"].is_monotonic_decreasing
    expected = pd.Series(value).groupby(sector).sum()
    for _, row in ranked.iterrows():
        assert row["total_mining_value"] == pytest.approx(expected[int(row["sector"])])
