"""Self-training through the assets: on a one-day window training_set stores the day's unlabelled rows, and
candidate_model trains a teacher on the train rows and a student on the train rows followed by the
unlabelled rows the teacher is sure of, then refits both on train + validation for their early-stopped
epochs and registers the refit student; longer windows, a small budget or the candidate's own switches
turn it (or the refit) off, and a missing object fails the step by name."""

import dagster as dg
import numpy as np
import pytest
from support.training_runs import (
    TRAINING,
    materialization_metadata,
    record_train_model,
    tiny_lake_with_days,
)

import assets.models
from astromined import lake_layout
from astromined.features.engineering import finite_model_inputs, model_inputs
from astromined.features.training_set import load_training_manifest, load_unlabelled_rows
from astromined.ml.dataset import split_arrays
from astromined.ml.evaluate import model_metrics
from astromined.ml.registry import ModelRegistry
from astromined.ml.train import predict
from astromined.storage import read_parquet

DAYS = ("2026-06-01", "2026-06-02")
QUICK = {"max_epochs": 3, "patience": 2, "ensemble_members": 1}


@pytest.fixture(scope="module")
def lake_with_two_days(tmp_path_factory):
    """Two days of features of the tiny fleet, materialized once for the module."""
    return tiny_lake_with_days(tmp_path_factory.mktemp("self-training") / "state", DAYS)


@pytest.fixture
def captured_training(monkeypatch):
    return record_train_model(monkeypatch)


def _train(resources, *, window_days=1, training=None, candidate=None):
    ops = {
        "training_set": {"config": {"window_days": window_days, **(training or {})}},
        "candidate_model": {"config": {**QUICK, **(candidate or {})}},
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(TRAINING, resources=resources, instance=instance, run_config={"ops": ops})
    assert result.success
    return tuple(materialization_metadata(result, key) for key in ("training_set", "candidate_model"))


def _expected_unlabelled(store, days):
    """Each day's rows of the asteroids the training set has no row for, by id, finite inputs only."""
    table = read_parquet(store, lake_layout.TRAINING_SET)
    rows = []
    for day in days:
        frame = read_parquet(store, lake_layout.asteroid_features(day))
        frame = frame.loc[~frame["asteroid_id"].isin(table["asteroid_id"])]
        rows.append(frame.loc[finite_model_inputs(frame)])
    return rows


def _is_subsequence(rows: np.ndarray, of: np.ndarray) -> bool:
    """Is every row of ``rows`` a row of ``of``, in ``of``'s order, each used once?"""
    position = 0
    for row in rows:
        while position < len(of) and not np.array_equal(of[position], row):
            position += 1
        if position == len(of):
            return False
        position += 1
    return True


def test_a_one_day_window_self_trains_on_its_unlabelled_asteroids(lake_with_two_days, captured_training):
    store = lake_with_two_days["lake"].store()
    training, candidate = _train(lake_with_two_days)

    [expected] = _expected_unlabelled(store, DAYS[-1:])
    assert training["unlabelled_rows"] == len(expected) > training["dagster/row_count"]
    assert training["unlabelled_rows_note"] == (
        f"{len(expected)} unlabelled rows over 1 day(s) for self-training"
    )
    stored = load_unlabelled_rows(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    np.testing.assert_array_equal(stored["asteroid_id"], expected["asteroid_id"])

    teacher, student, refit_teacher, refit_student = captured_training
    # The teacher trains on the train looks; the student on the same rows followed by pseudo-labelled
    # unlabelled rows, at most as many, drawn in the stored order; all four validate on the same rows.
    n_train = len(teacher["x"])
    assert candidate["train_rows"] == n_train
    np.testing.assert_array_equal(student["x"][:n_train], teacher["x"])
    np.testing.assert_array_equal(student["y_class"][:n_train], teacher["y_class"])
    assert 0 < len(student["x"]) - n_train <= n_train
    assert _is_subsequence(student["x"][n_train:], model_inputs(expected))
    for refit in (student, refit_teacher, refit_student):
        np.testing.assert_array_equal(refit["validation_x"], teacher["validation_x"])
    # The refits train on the validation rows too: the teacher on train + validation, the registered
    # student on those followed by the refit teacher's pseudo-labels, at most as many as both.
    validation_x = teacher["validation_x"]
    n_labelled = n_train + len(validation_x)
    np.testing.assert_array_equal(refit_teacher["x"], np.concatenate([teacher["x"], validation_x]))
    np.testing.assert_array_equal(refit_student["x"][:n_labelled], refit_teacher["x"])
    np.testing.assert_array_equal(refit_student["y_class"][:n_labelled], refit_teacher["y_class"])
    pseudo = refit_student["x"][n_labelled:]
    assert 0 < len(pseudo) == candidate["pseudo_labelled_rows"] <= n_labelled
    assert _is_subsequence(pseudo, model_inputs(expected))
    assert candidate["self_training"].startswith(
        f"student trained on {len(pseudo)} of {len(expected)} unlabelled rows (refit teacher"
    )
    assert candidate["refit_validation_rows"] == len(validation_x)
    # QUICK trains at most 3 epochs: each refit trains as many as its early-stopped training chose.
    assert 1 <= candidate["epochs_run"] <= 3

    _, manifest = ModelRegistry(store).load(candidate["version"])
    assert manifest["lineage"]["pseudo_labelled_rows"] == len(pseudo)
    assert manifest["lineage"]["train_rows"] == n_train
    assert manifest["lineage"]["refit_validation_rows"] == len(validation_x)


def test_the_validation_metrics_are_the_early_stopped_students(lake_with_two_days, monkeypatch):
    """The refit student trained on the validation rows: what the candidate reports about them comes from
    the early-stopped student, which did not; the refit one is what is registered."""
    outcomes = []
    real = assets.models.self_train

    def recording(*args, **kwargs):
        outcomes.append(real(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(assets.models, "self_train", recording)
    store = lake_with_two_days["lake"].store()
    _, candidate = _train(lake_with_two_days)

    [outcome] = outcomes
    validation = split_arrays(read_parquet(store, lake_layout.TRAINING_SET), "validation")
    model, manifest = ModelRegistry(store).load(candidate["version"])
    early, _ = predict(outcome.student.model, validation.x)
    registered, _ = predict(model, validation.x)
    np.testing.assert_allclose(registered, predict(outcome.refit_student.model, validation.x)[0], atol=1e-6)
    assert candidate["best_validation_loss"] == outcome.student.best_validation_loss
    expected = model_metrics(early, predict(outcome.student.model, validation.x)[1], validation.y_class,
                             validation.y_metal)  # fmt: skip
    assert candidate["validation_macro_f1"] == pytest.approx(expected["macro_f1"])
    assert manifest["metrics"]["validation_macro_f1"] == pytest.approx(expected["macro_f1"])


def test_the_refit_can_be_turned_off(lake_with_two_days, captured_training):
    store = lake_with_two_days["lake"].store()
    _, candidate = _train(lake_with_two_days, candidate={"refit_with_validation": False})
    teacher, student = captured_training
    n_train = len(teacher["x"])
    assert 0 < len(student["x"]) - n_train == candidate["pseudo_labelled_rows"] <= n_train
    assert " (teacher at least" in candidate["self_training"]
    assert candidate["refit_validation_rows"] == 0
    _, manifest = ModelRegistry(store).load(candidate["version"])
    assert manifest["lineage"]["pseudo_labelled_rows"] == candidate["pseudo_labelled_rows"]
    assert manifest["lineage"]["refit_validation_rows"] == 0


def test_a_two_day_window_stores_none_and_trains_once(lake_with_two_days, captured_training):
    store = lake_with_two_days["lake"].store()
    training, candidate = _train(lake_with_two_days, window_days=2)

    assert training["unlabelled_rows"] == 0
    assert training["unlabelled_rows_note"].startswith(
        "a 2-day window is longer than self_training_max_days=1"
    )
    assert load_unlabelled_rows(store, load_training_manifest(store, lake_layout.TRAINING_SET)) is None
    assert len(captured_training) == 1
    assert candidate["pseudo_labelled_rows"] == 0
    assert candidate["self_training"].startswith("none: the training set stores no unlabelled rows")


def test_a_longer_self_training_window_stores_each_days_rows(lake_with_two_days, captured_training):
    store = lake_with_two_days["lake"].store()
    training, candidate = _train(lake_with_two_days, window_days=2, training={"self_training_max_days": 2})

    expected = _expected_unlabelled(store, DAYS)
    assert training["unlabelled_rows"] == sum(len(rows) for rows in expected)
    stored = load_unlabelled_rows(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    assert list(stored["day"]) == [
        day for day, rows in zip(DAYS, expected, strict=True) for _ in range(len(rows))
    ]
    assert len(captured_training) == 4 and candidate["pseudo_labelled_rows"] > 0


def test_over_the_budget_the_candidate_trains_on_the_labelled_rows(lake_with_two_days, captured_training):
    training, candidate = _train(lake_with_two_days, training={"unlabelled_row_budget": 10})
    assert training["unlabelled_rows"] == 0
    assert "exceed the budget of 10" in training["unlabelled_rows_note"]
    assert len(captured_training) == 1 and candidate["pseudo_labelled_rows"] == 0


def test_the_candidate_can_be_told_not_to_self_train(lake_with_two_days, captured_training):
    training, candidate = _train(lake_with_two_days, candidate={"self_training": False})
    assert training["unlabelled_rows"] > 0
    assert len(captured_training) == 1
    assert (candidate["pseudo_labelled_rows"], candidate["self_training"]) == (
        0,
        "off (CandidateConfig.self_training)",
    )


@pytest.mark.fault(
    "tamper", "the unlabelled rows the training set names are deleted: the candidate fails naming them"
)
def test_missing_unlabelled_rows_fail_the_candidate_naming_them(lake_with_two_days):
    store = lake_with_two_days["lake"].store()
    _train(lake_with_two_days)
    key = load_training_manifest(store, lake_layout.TRAINING_SET)["unlabelled_rows"]["key"]
    store.delete(key)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [assets.models.candidate_model],
            resources=lake_with_two_days,
            instance=instance,
            run_config={"ops": {"candidate_model": {"config": QUICK}}},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert key.split("/")[-1] in message and "re-materialize training_set" in message
