"""The paired bootstrap of the candidate's macro-F1 margin over the baseline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from astromined.ml.margin import MarginInterval, bootstrap_margin
from astromined.taxonomy import COMPLEXES

CLASSES = list(range(len(COMPLEXES)))


def macro_f1(labels, predicted) -> float:
    return f1_score(labels, predicted, labels=CLASSES, average="macro", zero_division=0)


def noisy(labels: np.ndarray, error_rate: float, rng: np.random.Generator) -> np.ndarray:
    wrong = rng.random(len(labels)) < error_rate
    return np.where(wrong, (labels + rng.integers(1, len(CLASSES), len(labels))) % len(CLASSES), labels)


def holdout(rows: int = 370, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(CLASSES), rows)


def test_the_margin_is_the_difference_of_the_holdouts_macro_f1s():
    rng = np.random.default_rng(2)
    labels = holdout()
    candidate, baseline = noisy(labels, 0.05, rng), noisy(labels, 0.07, rng)
    interval = bootstrap_margin(labels, candidate, baseline)
    assert interval.margin == pytest.approx(macro_f1(labels, candidate) - macro_f1(labels, baseline))
    assert interval.low < interval.margin < interval.high
    assert interval.resamples == 2000 and interval.level == 0.95


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_a_single_resample_scores_both_models_on_the_same_drawn_rows(seed):
    """One resample: the interval collapses to that draw's difference, which sklearn reproduces on the rows
    the multinomial counts repeat (small holdout: some classes drop out of the draw, zero_division=0)."""
    rng = np.random.default_rng(seed + 100)
    labels = rng.integers(0, len(CLASSES), 25)
    candidate, baseline = noisy(labels, 0.3, rng), noisy(labels, 0.3, rng)
    counts = np.random.default_rng(seed).multinomial(len(labels), np.full(len(labels), 1 / len(labels)))
    rows = np.repeat(np.arange(len(labels)), counts)
    expected = macro_f1(labels[rows], candidate[rows]) - macro_f1(labels[rows], baseline[rows])
    interval = bootstrap_margin(labels, candidate, baseline, resamples=1, seed=seed)
    assert interval.low == pytest.approx(expected) and interval.high == pytest.approx(expected)
    assert interval.win_share == (1.0 if expected > 1e-12 else 0.0)


def test_identical_predictions_tie_on_every_resample():
    labels = holdout()
    predicted = noisy(labels, 0.1, np.random.default_rng(3))
    interval = bootstrap_margin(labels, predicted, predicted.copy())
    assert (interval.margin, interval.low, interval.high, interval.win_share) == (0.0, 0.0, 0.0, 0.0)
    assert "within the holdout's noise" in interval.describe()


def test_a_clearly_better_candidate_is_above_the_noise_and_a_clearly_worse_one_below():
    rng = np.random.default_rng(4)
    labels = holdout()
    good, bad = noisy(labels, 0.02, rng), noisy(labels, 0.25, rng)
    better = bootstrap_margin(labels, good, bad)
    assert better.low > 0 and better.win_share == 1.0
    assert "above the holdout's noise" in better.describe()
    worse = bootstrap_margin(labels, bad, good)
    assert worse.high < 0 and worse.win_share == 0.0
    assert "below the holdout's noise" in worse.describe()


def test_a_one_asteroid_margin_is_within_the_noise():
    """The first-day situation: the candidate differs from the baseline on a handful of asteroids and is
    ahead by one of them. The verdict 'wins' is a coin flip of the holdout, and the interval says so."""
    labels = holdout()
    baseline = labels.copy()
    baseline[:6] = (labels[:6] + 1) % len(CLASSES)  # 6 mistakes
    candidate = labels.copy()
    candidate[6:11] = (labels[6:11] + 2) % len(CLASSES)  # 5 other mistakes
    interval = bootstrap_margin(labels, candidate, baseline)
    assert interval.margin > 0
    assert interval.low < 0 < interval.high
    assert 0.3 < interval.win_share < 0.9


def test_deterministic_for_a_seed_and_a_narrower_level_gives_a_narrower_interval():
    rng = np.random.default_rng(6)
    labels = holdout()
    candidate, baseline = noisy(labels, 0.06, rng), noisy(labels, 0.06, rng)
    first = bootstrap_margin(labels, candidate, baseline, seed=9)
    assert bootstrap_margin(labels, candidate, baseline, seed=9) == first
    assert bootstrap_margin(labels, candidate, baseline, seed=10) != first
    narrow = bootstrap_margin(labels, candidate, baseline, seed=9, level=0.5)
    assert first.low <= narrow.low <= narrow.high <= first.high
    assert MarginInterval(**first.to_dict()) == first


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(*[st.integers(0, len(CLASSES) - 1)] * 3),
        min_size=1,
        max_size=40,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_holdout_gives_an_ordered_interval_around_the_right_margin(rows, seed):
    labels, candidate, baseline = (np.asarray(column) for column in zip(*rows, strict=True))
    interval = bootstrap_margin(labels, candidate, baseline, resamples=50, seed=seed)
    assert interval.margin == pytest.approx(macro_f1(labels, candidate) - macro_f1(labels, baseline))
    assert -1.0 <= interval.low <= interval.high <= 1.0
    assert 0.0 <= interval.win_share <= 1.0


@pytest.mark.fault("bad-input", "margin bootstrap given mismatched, empty or out-of-range predictions")
@pytest.mark.parametrize(
    ("labels", "candidate", "baseline", "kwargs", "message"),
    [
        ([0, 1], [0, 1], [0], {}, "2 holdout labels, 2 candidate and 1 baseline"),
        ([], [], [], {}, "holdout is empty"),
        ([0, 7], [0, 1], [0, 1], {}, "labels must be class indices in 0..6"),
        ([0, 1], [0, -1], [0, 1], {}, "candidate must be class indices"),
        ([0, 1], [0, 1], [0.0, 1.0], {}, "baseline must be class indices"),
        ([[0, 1]], [[0, 1]], [[0, 1]], {}, "one class index per holdout row"),
        ([0, 1], [0, 1], [0, 1], {"resamples": 0}, "at least one bootstrap resample"),
        ([0, 1], [0, 1], [0, 1], {"level": 1.0}, "a probability in (0, 1)"),
    ],
)
def test_bad_input_is_named(labels, candidate, baseline, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bootstrap_margin(np.asarray(labels), np.asarray(candidate), np.asarray(baseline), **kwargs)


def test_the_result_does_not_depend_on_how_many_resamples_are_scored_at_a_time(monkeypatch):
    """A big holdout is scored in chunks of resamples (bounded memory); the draws and the interval stay."""
    import astromined.ml.margin as margin

    rng = np.random.default_rng(7)
    labels = holdout(rows=400)
    candidate, baseline = noisy(labels, 0.05, rng), noisy(labels, 0.06, rng)
    whole = bootstrap_margin(labels, candidate, baseline, resamples=300, seed=3)
    monkeypatch.setattr(margin, "_CHUNK_CELLS", 400 * 7)  # 7 resamples per chunk, the last one shorter
    assert bootstrap_margin(labels, candidate, baseline, resamples=300, seed=3) == whole
