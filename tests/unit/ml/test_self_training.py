"""Self-training: pseudo-labels (the unlabelled rows the teacher is sure of, capped, reproducibly), the
teacher and student trainings, and their refit on the validation rows for the early-stopped epochs."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.ml.dataset import SplitArrays
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.self_training import (
    SELF_TRAINING_CONFIDENCE,
    early_stopped_epochs,
    pseudo_labelled,
    refit_config,
    self_train,
)
from astromined.ml.train import TrainConfig, TrainResult, predict, train_model
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


def _two_blobs(n: int, seed: int, spread: float = 0.5) -> SplitArrays:
    """Two classes in two features (well separated at the default ``spread``), metal richness by class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (np.where(y[:, None] == 1, 4.0, -4.0) + rng.normal(0, spread, (n, 2))).astype(np.float32)
    return SplitArrays(x=x, y_class=y.astype(np.int64), y_metal=np.where(y == 1, 0.8, 0.1).astype(np.float32))


ARCHITECTURE = ArchitectureConfig(feature_names=("a", "b"), classes=("X", "Y"), hidden=8)
CONFIG = TrainConfig(max_epochs=30, patience=5, batch_size=32, learning_rate=1e-2, seed=3)


def _recording_fit(validation: SplitArrays, calls: list, results: list):
    """A Fit that trains for real (validating on ``validation``) and records each call."""

    def fit(rows: SplitArrays, role: str, epochs: int | None):
        calls.append((role, rows, epochs))
        result = train_model(
            ARCHITECTURE, rows.x, rows.y_class, rows.y_metal, validation.x, validation.y_class,
            validation.y_metal, torch.device("cpu"), refit_config(CONFIG, epochs),
        )  # fmt: skip
        results.append(result)
        return result

    return fit


def _assert_rows(rows: SplitArrays, *parts: SplitArrays) -> None:
    for field in ("x", "y_class", "y_metal"):
        np.testing.assert_array_equal(
            getattr(rows, field), np.concatenate([getattr(p, field) for p in parts])
        )


def test_the_student_trains_on_the_train_rows_then_the_rows_the_teacher_is_sure_of():
    train, validation = _two_blobs(40, 1), _two_blobs(30, 2)
    # 100 rows from the same classes: the teacher is sure of most of them.
    unlabelled = _two_blobs(100, 3).x
    calls, results = [], []

    outcome = self_train(_recording_fit(validation, calls, results), train, unlabelled, seed=11)

    assert [(role, epochs) for role, _, epochs in calls] == [("teacher", None), ("student", None)]
    assert calls[0][1] is train
    assert (outcome.teacher, outcome.student) == (results[0], results[1])
    assert outcome.registered is outcome.student and outcome.refit_student is None
    probabilities, metal = predict(outcome.teacher.model, unlabelled)
    expected = pseudo_labelled(unlabelled, probabilities, metal, limit=len(train), seed=11)
    _assert_rows(calls[1][1], train, expected)
    # More than 40 rows are sure: the cap (the train rows' count) binds.
    assert (probabilities.max(axis=1) >= SELF_TRAINING_CONFIDENCE).sum() > 40
    assert (outcome.unlabelled_rows, outcome.pseudo_labelled_rows) == (100, 40)
    assert outcome.note.startswith("student trained on 40 of 100 unlabelled rows")


def test_with_the_validation_rows_both_are_refit_on_them_for_their_early_stopped_epochs():
    # Overlapping classes: the temperatures are not at the grid's edge.
    train, validation = _two_blobs(40, 1, spread=3.0), _two_blobs(30, 2, spread=3.0)
    unlabelled = _two_blobs(200, 3, spread=3.0).x
    calls, results = [], []

    outcome = self_train(
        _recording_fit(validation, calls, results), train, unlabelled, seed=11, validation=validation
    )

    teacher, student, refit_teacher, refit_student = results
    # The refit teacher is its training's; the refit student its training's with the early-stopped
    # student's temperature.
    assert outcome.refit_teacher is refit_teacher
    assert outcome.refit_student.model is refit_student.model
    refit_student = outcome.refit_student
    assert [(role, epochs) for role, _, epochs in calls] == [
        ("teacher", None),
        ("student", None),
        ("teacher refit", early_stopped_epochs(teacher)),
        ("student refit", early_stopped_epochs(student)),
    ]
    assert (outcome.teacher, outcome.student) == (teacher, student)
    assert outcome.registered is refit_student
    # The refit teacher trains on train + validation; the pseudo-labels of the registered student are ITS
    # labels (not the early-stopped teacher's), at most as many as the 70 labelled rows.
    _assert_rows(calls[2][1], train, validation)
    probabilities, metal = predict(refit_teacher.model, unlabelled)
    expected = pseudo_labelled(unlabelled, probabilities, metal, limit=70, seed=11)
    assert (probabilities.max(axis=1) >= SELF_TRAINING_CONFIDENCE).sum() > 70
    _assert_rows(calls[3][1], train, validation, expected)
    assert (outcome.unlabelled_rows, outcome.pseudo_labelled_rows, outcome.labelled_rows) == (200, 70, 70)
    # Each refit ran exactly its epochs: no early stop cut it short.
    assert refit_teacher.epochs_run == early_stopped_epochs(teacher)
    assert refit_student.epochs_run == early_stopped_epochs(student)
    # The validation rows are in a refit's training, so the temperature fitted on them is in sample: the
    # registered student takes the early-stopped student's (fitted out of sample) instead. Retraining it
    # gives the refit's own temperature folded in; the registered logits are those rescaled.
    assert CONFIG.temperature_scaling and refit_student.temperature == student.temperature
    again = train_model(
        ARCHITECTURE, calls[3][1].x, calls[3][1].y_class, calls[3][1].y_metal, validation.x,
        validation.y_class, validation.y_metal,
        torch.device("cpu"), refit_config(CONFIG, early_stopped_epochs(student)),
    )  # fmt: skip
    assert again.temperature not in (1.0, student.temperature)
    x = torch.as_tensor(unlabelled)
    with torch.no_grad():
        torch.testing.assert_close(
            refit_student.model(x)[0], again.model(x)[0] * again.temperature / student.temperature
        )
    assert outcome.note.startswith("student trained on 70 of 200 unlabelled rows (refit teacher")
    assert f"for the {early_stopped_epochs(student)} epochs the early-stopped student took" in outcome.note


def _result(best_epoch: int, member_best_epochs: tuple[int, ...] = ()) -> TrainResult:
    return TrainResult(
        model=CompositionNet(ARCHITECTURE),
        best_epoch=best_epoch,
        epochs_run=best_epoch + 1,
        best_validation_loss=0.1,
        train_seconds=1.0,
        samples_per_second=1.0,
        history=[],
        member_best_epochs=member_best_epochs,
    )


@pytest.mark.parametrize(
    ("best_epoch", "members", "epochs"),
    [
        (0, (), 1),  # best at the first epoch: one epoch
        (11, (), 12),  # a single network (or data-parallel training): its best epoch, 0-based, + 1
        (20, (10, 14, 20), 16),  # an ensemble: its members' mean (14.67 -> 15) + 1, not their maximum
        (13, (12, 13), 13),  # 12.5 rounds half to even
        (14, (13, 14), 15),  # 13.5 too
    ],
)
def test_a_refit_trains_the_early_stopped_epochs(best_epoch, members, epochs):
    assert early_stopped_epochs(_result(best_epoch, members)) == epochs


def test_a_refit_config_trains_exactly_its_epochs():
    assert refit_config(CONFIG, None) is CONFIG
    assert refit_config(CONFIG, 7) == dataclasses.replace(CONFIG, max_epochs=7, patience=7)
    with pytest.raises(ValueError, match="at least one epoch, not 0"):
        refit_config(CONFIG, 0)
    # Patience 1 stops early within a few epochs; the same config refit for 25 runs all 25.
    train, validation = _two_blobs(40, 1), _two_blobs(30, 2)
    impatient = dataclasses.replace(CONFIG, patience=1, max_epochs=100)
    arrays = (train.x, train.y_class, train.y_metal, validation.x, validation.y_class, validation.y_metal)
    stopped = train_model(ARCHITECTURE, *arrays, torch.device("cpu"), impatient)
    assert stopped.epochs_run < 25
    assert (
        train_model(ARCHITECTURE, *arrays, torch.device("cpu"), refit_config(impatient, 25)).epochs_run == 25
    )
