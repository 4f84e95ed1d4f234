"""An asteroid's prediction from its looks (astromined/ml/looks.py): the mean of the looks' probabilities,
sharpened by the looks' calibration exponent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.ml.evaluate import expected_calibration_error
from astromined.ml.looks import (
    LOOKS_EXPONENT_RANGE,
    AsteroidLooks,
    asteroid_looks,
    fit_looks_exponent,
    looks_cross_entropy,
    mean_over_looks,
    model_looks_exponent,
    predict_from_looks,
    predict_split,
    sharpen_by_looks,
    split_looks,
)
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.train import predict
from astromined.taxonomy import COMPLEXES

FEATURES = ("a", "b", "c")


def network(seed: int = 0) -> CompositionNet:
    torch.manual_seed(seed)
    model = CompositionNet(ArchitectureConfig(feature_names=FEATURES, classes=COMPLEXES))
    model.eval()
    return model


def test_each_look_is_found_at_its_asteroids_row_whatever_the_order():
    looks = asteroid_looks(
        np.array([30, 10, 20]), np.array([20, 30, 20, 10, 30]), np.arange(15, dtype=np.float32).reshape(5, 3)
    )
    assert looks.row.tolist() == [2, 0, 2, 1, 0]
    assert looks.looks_per_row().tolist() == [2, 1, 2]
    assert (len(looks), looks.rows) == (5, 3)


def test_a_look_at_an_asteroid_outside_the_split_is_named():
    with pytest.raises(
        ValueError, match=r"1 look\(s\) at asteroid\(s\) not in the split, e.g. asteroid_id \[99\]"
    ):
        asteroid_looks(np.array([1, 2]), np.array([1, 2, 99]), np.zeros((3, 3), dtype=np.float32))


def test_an_asteroid_without_a_look_is_named():
    with pytest.raises(ValueError, match=r"1 asteroid\(s\) without a look, e.g. asteroid_id \[7\]"):
        asteroid_looks(np.array([5, 7]), np.array([5, 5]), np.zeros((2, 3), dtype=np.float32))


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 look id"):
        asteroid_looks(np.array([1]), np.array([1, 1]), np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="outside the 1 row"):
        AsteroidLooks(np.zeros((1, 3), dtype=np.float32), np.array([1]), 1)
    with pytest.raises(ValueError, match=r"without a look, e.g. row\(s\) \[1\]"):
        AsteroidLooks(np.zeros((1, 3), dtype=np.float32), np.array([0]), 2)


def test_an_empty_split_has_no_looks():
    looks = asteroid_looks(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.zeros((0, 3)))
    probabilities, metal = predict_from_looks(lambda x: (x, x[:, 0]), looks)
    assert probabilities.shape == (0, 3) and metal.shape == (0,)


@settings(max_examples=60, deadline=None)
@given(
    looks_per_asteroid=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=12),
    seed=st.integers(0, 9),
)
def test_the_prediction_is_the_mean_of_the_asteroids_looks_and_one_look_is_its_own_prediction(
    looks_per_asteroid, seed
):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(1000)[: len(looks_per_asteroid)]
    look_ids = rng.permutation(np.repeat(ids, looks_per_asteroid))
    x = rng.normal(size=(len(look_ids), len(FEATURES))).astype(np.float32)
    model = network(seed)

    probabilities, metal = predict_split(
        model, np.zeros((len(ids), 3), np.float32), asteroid_looks(ids, look_ids, x)
    )

    look_probabilities, look_metal = predict(model, x)
    for row, asteroid in enumerate(ids):
        mine = look_ids == asteroid
        np.testing.assert_allclose(
            probabilities[row], look_probabilities[mine].mean(axis=0), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(metal[row], look_metal[mine].mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    single = np.asarray(looks_per_asteroid) == 1
    if single.any():  # an asteroid looked at once: exactly that look's prediction
        by_id = {a: i for i, a in enumerate(look_ids)}
        at = [by_id[a] for a in ids[single]]
        np.testing.assert_array_equal(probabilities[single], look_probabilities[at])


def test_without_looks_the_combined_rows_are_scored():
    model = network()
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    for got, expected in zip(predict_split(model, x, None), predict(model, x), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_noisy_look_the_network_is_unsure_of_weighs_less_than_a_sure_one():
    """Why looks are averaged as probabilities: a confident look carries the asteroid, a flat one barely
    moves it (the median of the looks' bands would give both the same say)."""
    sure = np.array([0.9, 0.05, 0.05])
    flat = np.array([0.3, 0.4, 0.3])
    looks = AsteroidLooks(np.zeros((2, 3), np.float32), np.array([0, 0]), 1)
    mean = mean_over_looks(np.stack([sure, flat]), looks)
    assert mean.argmax(axis=1).tolist() == [0]


def test_a_splits_looks_are_ordered_by_its_rows_in_the_training_set_table():
    table = pd.DataFrame(
        {"asteroid_id": [4, 9, 2, 7], "split": ["holdout", "train", "holdout", "validation"]}
    )
    frame = pd.DataFrame({c: np.arange(1.0, 4.0) for c in FEATURE_TABLE_COLUMNS})
    frame["asteroid_id"] = [2, 4, 2]
    looks = split_looks(table, frame)
    assert (looks.rows, looks.row.tolist()) == (2, [1, 0, 1])  # holdout rows: 4 then 2
    assert split_looks(table, None) is None
    frame.loc[1, "asteroid_id"] = 9  # a train asteroid's look
    with pytest.raises(ValueError, match=r"not in the split, e.g. asteroid_id \[9\]"):
        split_looks(table, frame)


def _simplex_rows(rng: np.random.Generator, rows: int, classes: int = 7, concentration: float = 1.0):
    return rng.dirichlet(np.full(classes, concentration), size=rows)


@settings(max_examples=80, deadline=None)
@given(
    looks_per_row=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=20),
    exponent=st.floats(min_value=0.0, max_value=2.0),
    seed=st.integers(0, 99),
)
def test_sharpening_keeps_one_look_and_the_ranking_and_sums_to_one(looks_per_row, exponent, seed):
    rng = np.random.default_rng(seed)
    probabilities = _simplex_rows(rng, len(looks_per_row))
    counts = np.asarray(looks_per_row)
    sharpened = sharpen_by_looks(probabilities, counts, exponent)
    np.testing.assert_allclose(sharpened.sum(axis=1), 1.0)
    np.testing.assert_array_equal(sharpened.argmax(axis=1), probabilities.argmax(axis=1))
    np.testing.assert_allclose(sharpened[counts == 1], probabilities[counts == 1], rtol=1e-9)
    # Never less sure than the plain mean, and surer the more looks: p^(n^γ) with n^γ >= 1.
    assert (sharpened.max(axis=1) >= probabilities.max(axis=1) - 1e-12).all()
    np.testing.assert_allclose(sharpen_by_looks(probabilities, counts, 0.0), probabilities, rtol=1e-9)


def test_sharpening_is_the_mean_raised_to_the_power_of_looks_to_the_exponent():
    mean = np.array([[0.6, 0.3, 0.1]])
    expected = mean**4 / (mean**4).sum()  # 4 looks, exponent 1: as if the 4 looks were independent
    np.testing.assert_allclose(sharpen_by_looks(mean, np.array([4]), 1.0), expected)
    expected = mean**2 / (mean**2).sum()  # 4^0.5 = 2
    np.testing.assert_allclose(sharpen_by_looks(mean, np.array([4]), 0.5), expected)
    # A class a float32 softmax rounded to 0 stays (near) 0 without a NaN.
    assert np.isfinite(sharpen_by_looks(np.array([[1.0, 0.0, 0.0]]), np.array([3]), 1.0)).all()


def test_sharpening_refuses_bad_input():
    mean = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"0 or more, not -0\.1"):
        sharpen_by_looks(mean, np.array([2]), -0.1)
    with pytest.raises(ValueError, match=r"2 look count\(s\) for 1 row"):
        sharpen_by_looks(mean, np.array([2, 1]), 1.0)
    with pytest.raises(ValueError, match="a row with 0 looks"):
        sharpen_by_looks(mean, np.array([0]), 1.0)
    with pytest.raises(ValueError, match=r"3 label\(s\) for 1 row"):
        fit_looks_exponent(mean, np.array([2]), np.array([0, 1, 1]))


@pytest.mark.parametrize("true_exponent", [0.0, 0.4, 0.7, 1.0])
def test_the_fit_recovers_the_exponent_the_labels_were_drawn_with(true_exponent):
    """Labels drawn from the sharpened probabilities: the fitted exponent is the one they were drawn with,
    and scoring with it makes the probabilities calibrated where the plain mean is under-confident."""
    rng = np.random.default_rng(3)
    rows = 6000
    counts = rng.integers(1, 6, size=rows)
    mean = _simplex_rows(rng, rows, concentration=0.7)
    truth = sharpen_by_looks(mean, counts, true_exponent)
    labels = np.array([rng.choice(truth.shape[1], p=p) for p in truth])

    fitted = fit_looks_exponent(mean, counts, labels)

    assert fitted == pytest.approx(true_exponent, abs=0.12)
    assert LOOKS_EXPONENT_RANGE[0] <= fitted <= LOOKS_EXPONENT_RANGE[1]
    assert looks_cross_entropy(mean, counts, labels, fitted) <= looks_cross_entropy(mean, counts, labels, 0.0)
    if true_exponent >= 0.7:
        calibrated = expected_calibration_error(sharpen_by_looks(mean, counts, fitted), labels)
        assert calibrated < expected_calibration_error(mean, labels) / 2


def test_looks_are_never_worth_more_than_independent_measurements():
    """Labels drawn as if each look were worth two: the fit stops at 1, the independence limit."""
    rng = np.random.default_rng(8)
    counts = rng.integers(2, 5, size=3000)
    mean = _simplex_rows(rng, 3000, concentration=0.7)
    truth = sharpen_by_looks(mean, counts, 1.8)
    labels = np.array([rng.choice(truth.shape[1], p=p) for p in truth])
    assert fit_looks_exponent(mean, counts, labels) == LOOKS_EXPONENT_RANGE[1] == 1.0


def test_with_no_asteroid_looked_at_twice_there_is_nothing_to_fit():
    rng = np.random.default_rng(0)
    mean = _simplex_rows(rng, 30)
    assert fit_looks_exponent(mean, np.ones(30, dtype=int), rng.integers(0, 7, 30)) == 0.0
    assert fit_looks_exponent(np.zeros((0, 7)), np.zeros(0, dtype=int), np.zeros(0, dtype=int)) == 0.0


def test_the_fit_ignores_asteroids_looked_at_once():
    rng = np.random.default_rng(1)
    mean = _simplex_rows(rng, 400)
    counts = np.where(np.arange(400) < 200, 1, 3)
    labels = mean.argmax(axis=1)  # the mean is always right: sharpen as far as allowed
    fitted = fit_looks_exponent(mean, counts, labels)
    labels[:200] = (labels[:200] + 1) % 7  # the single looks wrong instead: no say in the fit
    assert fit_looks_exponent(mean, counts, labels) == pytest.approx(fitted, abs=1e-6)
    assert fitted == pytest.approx(LOOKS_EXPONENT_RANGE[1], abs=1e-3)


def test_predicting_with_an_exponent_sharpens_the_mean_over_the_looks():
    model = network(4)
    rng = np.random.default_rng(4)
    ids = np.array([10, 11, 12])
    look_ids = np.array([10, 11, 11, 12, 12, 12])
    looks = asteroid_looks(ids, look_ids, rng.normal(size=(6, 3)).astype(np.float32))
    plain, metal = predict_split(model, np.zeros((3, 3), np.float32), looks)
    sharpened, sharpened_metal = predict_split(model, np.zeros((3, 3), np.float32), looks, 0.8)
    np.testing.assert_allclose(sharpened, sharpen_by_looks(plain, np.array([1, 2, 3]), 0.8), rtol=1e-5)
    np.testing.assert_array_equal(sharpened_metal, metal)  # metal richness is a mean, not a probability
    assert sharpened.dtype == np.float32
    labels = np.array([0, 3, 5])
    assert model_looks_exponent(model, looks, labels) == pytest.approx(
        fit_looks_exponent(plain, np.array([1, 2, 3]), labels), abs=1e-6
    )
