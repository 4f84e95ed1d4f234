"""Pseudo-labels for self-training: the unlabelled rows the teacher is sure of, capped, reproducibly."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.ml.dataset import SplitArrays
from astromined.ml.model import ArchitectureConfig
from astromined.ml.self_training import SELF_TRAINING_CONFIDENCE, pseudo_labelled, self_train
from astromined.ml.train import TrainConfig, predict, train_model
from astromined.taxonomy import COMPLEXES

N = len(COMPLEXES)


@st.composite
def teacher_outputs(draw):
    """Unlabelled rows (their index as the only feature), the teacher's probabilities and metal."""
    rows = draw(st.integers(0, 40))
    raw = np.asarray(
        draw(st.lists(st.lists(st.floats(0.0, 1.0), min_size=N, max_size=N), min_size=rows, max_size=rows)),
        dtype=np.float64,
    ).reshape(rows, N)
    # Sharpen some rows, so that both sure and unsure rows occur.
    power = np.asarray(draw(st.lists(st.sampled_from([1.0, 8.0, 40.0]), min_size=rows, max_size=rows)))
    weights = (raw + 1e-6) ** power.reshape(rows, 1)
    probabilities = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    metal = np.asarray(draw(st.lists(st.floats(0.0, 1.0), min_size=rows, max_size=rows)), dtype=np.float32)
    x = np.arange(rows, dtype=np.float32).reshape(rows, 1)
    return x, probabilities, metal


@settings(max_examples=150, deadline=None)
@given(
    teacher_outputs(), st.integers(0, 50), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 0.9, 1.0])
)
def test_only_sure_rows_with_the_teachers_labels_in_order_and_capped(outputs, limit, seed, confidence):
    x, probabilities, metal = outputs
    pseudo = pseudo_labelled(x, probabilities, metal, limit=limit, seed=seed, confidence=confidence)
    chosen = pseudo.x[:, 0].astype(int)
    sure = np.flatnonzero(probabilities.max(axis=1) >= confidence)
    assert len(pseudo) == min(len(sure), limit)
    assert set(chosen) <= set(sure)
    assert np.all(np.diff(chosen) > 0)  # in their order in x, each once
    np.testing.assert_array_equal(pseudo.y_class, probabilities[chosen].argmax(axis=1))
    np.testing.assert_array_equal(pseudo.y_metal, metal[chosen])
    assert pseudo.y_class.dtype == np.int64 and pseudo.y_metal.dtype == np.float32
    again = pseudo_labelled(x, probabilities, metal, limit=limit, seed=seed, confidence=confidence)
    np.testing.assert_array_equal(again.x, pseudo.x)  # the same seed draws the same rows


def test_all_sure_rows_when_under_the_limit_and_a_seeded_draw_over_it():
    probabilities = np.full((6, N), 0.01 / (N - 1), dtype=np.float32)
    probabilities[:, 0] = 0.99
    probabilities[[1, 4]] = 1.0 / N  # unsure
    x = np.arange(6, dtype=np.float32).reshape(6, 1)
    metal = np.linspace(0, 1, 6, dtype=np.float32)
    everything = pseudo_labelled(x, probabilities, metal, limit=10, seed=1)
    assert everything.x[:, 0].tolist() == [0, 2, 3, 5]
    drawn = {tuple(pseudo_labelled(x, probabilities, metal, limit=2, seed=s).x[:, 0]) for s in range(20)}
    assert all(len(d) == 2 and set(d) <= {0, 2, 3, 5} for d in drawn)
    assert len(drawn) > 1  # the seed decides which of the sure rows are drawn


def test_no_rows_and_a_zero_limit_give_no_pseudo_labels():
    assert len(pseudo_labelled(np.zeros((0, 3)), np.zeros((0, N)), np.zeros(0), limit=5, seed=1)) == 0
    probabilities = np.eye(N, dtype=np.float32)
    assert len(pseudo_labelled(np.ones((N, 3)), probabilities, np.ones(N), limit=0, seed=1)) == 0


@pytest.mark.parametrize(
    ("probabilities", "metal", "confidence", "limit", "message"),
    [
        (np.ones((3, N)) / N, np.ones(4), 0.9, 5, "one probability row and one metal richness per"),
        (np.ones((2, N)) / N, np.ones(4), 0.9, 5, "probabilities of shape"),
        (np.ones(4), np.ones(4), 0.9, 5, "probabilities of shape"),
        (np.ones((4, N)) / N, np.ones(4), 1.5, 5, "a probability in [0, 1], not 1.5"),
        (np.ones((4, N)) / N, np.ones(4), 0.9, -1, "0 or more, not -1"),
    ],
)
def test_bad_teacher_outputs_are_refused_by_name(probabilities, metal, confidence, limit, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pseudo_labelled(np.ones((4, 3)), probabilities, metal, limit=limit, seed=1, confidence=confidence)


# --- self_train: teacher, pseudo-labels, student -------------------------------------------------------


def _two_blobs(n: int, seed: int) -> SplitArrays:
    """Two well-separated classes in two features, metal richness by class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (np.where(y[:, None] == 1, 4.0, -4.0) + rng.normal(0, 0.5, (n, 2))).astype(np.float32)
    return SplitArrays(x=x, y_class=y.astype(np.int64), y_metal=np.where(y == 1, 0.8, 0.1).astype(np.float32))


def test_the_student_trains_on_the_train_rows_then_the_rows_the_teacher_is_sure_of():
    architecture = ArchitectureConfig(feature_names=("a", "b"), classes=("X", "Y"), hidden=8)
    config = TrainConfig(max_epochs=30, patience=5, batch_size=32, learning_rate=1e-2, seed=3)
    train, validation = _two_blobs(40, 1), _two_blobs(30, 2)
    # 100 rows from the same classes: the teacher is sure of most of them.
    unlabelled = _two_blobs(100, 3).x
    calls, results = [], []

    def fit(rows: SplitArrays, role: str):
        calls.append((role, rows))
        result = train_model(
            architecture, rows.x, rows.y_class, rows.y_metal, validation.x, validation.y_class,
            validation.y_metal, torch.device("cpu"), config,
        )  # fmt: skip
        results.append(result)
        return result

    outcome = self_train(fit, train, unlabelled, seed=11)

    assert [role for role, _ in calls] == ["teacher", "student"]
    assert calls[0][1] is train
    assert (outcome.teacher, outcome.student) == (results[0], results[1])
    probabilities, metal = predict(outcome.teacher.model, unlabelled)
    expected = pseudo_labelled(unlabelled, probabilities, metal, limit=len(train), seed=11)
    student_rows = calls[1][1]
    for field in ("x", "y_class", "y_metal"):
        np.testing.assert_array_equal(
            getattr(student_rows, field), np.concatenate([getattr(train, field), getattr(expected, field)])
        )
    # More than 40 rows are sure: the cap (the train rows' count) binds.
    assert (probabilities.max(axis=1) >= SELF_TRAINING_CONFIDENCE).sum() > 40
    assert (outcome.unlabelled_rows, outcome.pseudo_labelled_rows) == (100, 40)
    assert outcome.note.startswith("student trained on 40 of 100 unlabelled rows")
