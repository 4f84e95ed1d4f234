"""The candidate trains on every look at a train asteroid, through the assets: training_set stores the
look rows (by default one per observation on windows of 1-3 days, one per asteroid and day on longer ones)
within its row budget, candidate_model trains on exactly them (and validates on the combined rows), and
either side can turn them off. The holdout asteroids' looks, stored beside them, are what model_evaluation
scores the networks on (ml/looks.py); the validation asteroids' looks, likewise, are what candidate_model
fits the looks' calibration exponent on."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from support.training_runs import (
    TRAINING,
    materialization_metadata,
    record_train_model,
    tiny_lake_with_days,
)

import assets.models
from astromined import lake_layout
from astromined.features.engineering import (
    INPUT_COLUMNS,
    features_per_look,
    finite_model_inputs,
    model_inputs,
)
from astromined.features.training_set import (
    load_holdout_looks,
    load_look_rows,
    load_training_manifest,
    load_validation_looks,
    split_of,
)
from astromined.ml.evaluate import baseline_metrics, classification_metrics, expected_calibration_error
from astromined.ml.looks import fit_looks_exponent, sharpen_by_looks
from astromined.ml.registry import ModelRegistry
from astromined.ml.train import predict
from astromined.storage import read_arrow_columns, read_parquet, write_parquet
from astromined.taxonomy import COMPLEX_INDEX

DAYS = ("2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04")
QUICK = {"max_epochs": 2, "patience": 1, "ensemble_members": 1}


@pytest.fixture(scope="module")
def lake_with_four_days(tmp_path_factory):
    """Four days of features of the tiny fleet, materialized once for the module."""
    return tiny_lake_with_days(tmp_path_factory.mktemp("look-rows") / "state", DAYS)


@pytest.fixture
def captured_training(monkeypatch):
    return record_train_model(monkeypatch)


def _train(resources, *, window_days=4, budget=None, unit=None, candidate=None):
    training_config = {"window_days": window_days}
    if budget is not None:
        training_config["look_row_budget"] = budget
    if unit is not None:
        training_config["look_unit"] = unit
    ops = {
        "training_set": {"config": training_config},
        "candidate_model": {"config": {**QUICK, **(candidate or {})}},
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(TRAINING, resources=resources, instance=instance, run_config={"ops": ops})
    assert result.success
    return tuple(materialization_metadata(result, key) for key in ("training_set", "candidate_model"))


def _expected_day_rows(store, days=DAYS, split="train"):
    """Every day's own row of every labelled ``split`` asteroid, recomputed from the partitions."""
    table = read_parquet(store, lake_layout.TRAINING_SET)
    ids = set(table.loc[table["split"] == split, "asteroid_id"])
    frames = [read_parquet(store, lake_layout.asteroid_features(day)) for day in days]
    rows = [f.loc[f["asteroid_id"].isin(ids)] for f in frames]
    return rows, table


def _expected_observation_rows(resources, days=DAYS, split="train"):
    """Every observation of every labelled ``split`` asteroid, recomputed from the raw partitions, by id
    within each day."""
    store = resources["lake"].store()
    table = read_parquet(store, lake_layout.TRAINING_SET)
    ids = set(table.loc[table["split"] == split, "asteroid_id"])
    rows = []
    for day in days:
        raw = read_arrow_columns(store, lake_layout.raw_observations(day), INPUT_COLUMNS).to_pandas()
        raw = raw.loc[raw["asteroid_id"].isin(ids)]
        calibration = resources["landing_zone"].fleet_calibration(dt.date.fromisoformat(day))
        looks = features_per_look(raw, calibration)
        looks = looks.loc[finite_model_inputs(looks)]
        rows.append(looks.sort_values("asteroid_id", kind="stable"))
    return rows, table


# The default look unit ("auto") is one row per observation on windows of 1-3 days, per day from 4.
@pytest.mark.parametrize(("window", "unit"), [(3, None), (4, "observation")])
def test_candidate_trains_on_every_observation_of_each_train_asteroid(
    lake_with_four_days, captured_training, window, unit
):
    store = lake_with_four_days["lake"].store()
    training, candidate = _train(lake_with_four_days, window_days=window, unit=unit)

    days = DAYS[-window:]
    expected_rows, table = _expected_observation_rows(lake_with_four_days, days)
    n_expected = sum(len(r) for r in expected_rows)
    per_day = sum(len(r) for r in _expected_day_rows(store, days)[0])
    assert n_expected > per_day, "asteroids looked at more than once a day"
    holdout_rows, _ = _expected_observation_rows(lake_with_four_days, days, "holdout")
    n_holdout = sum(len(r) for r in holdout_rows)
    assert n_holdout > int((table["split"] == "holdout").sum()), "holdout asteroids looked at more than once"
    assert training["look_rows"] == n_expected
    validation_rows, _ = _expected_observation_rows(lake_with_four_days, days, "validation")
    n_validation = sum(len(r) for r in validation_rows)
    assert training["look_rows_note"] == (
        f"{n_expected} train rows, one per observation, over {window} day(s); {n_holdout} holdout looks; "
        f"{n_validation} validation looks"
    )
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (n_expected, "per look")
    # The holdout asteroids' looks are stored too, the same way, for model_evaluation.
    holdout_looks = load_holdout_looks(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    np.testing.assert_array_equal(
        model_inputs(holdout_looks), np.concatenate([model_inputs(r) for r in holdout_rows])
    )
    assert set(holdout_looks["split"]) == {"holdout"}
    # And the validation asteroids' looks, for candidate_model's looks' calibration exponent.
    validation_looks = load_validation_looks(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    np.testing.assert_array_equal(
        model_inputs(validation_looks), np.concatenate([model_inputs(r) for r in validation_rows])
    )
    assert set(validation_looks["split"]) == {"validation"}

    [call] = captured_training
    # Exactly those rows' inputs, oldest day first; validation stays on the combined rows.
    np.testing.assert_array_equal(call["x"], np.concatenate([model_inputs(r) for r in expected_rows]))
    validation = table.loc[table["split"] == "validation"]
    np.testing.assert_array_equal(call["validation_x"], model_inputs(validation))
    assert set(split_of(np.concatenate([r["asteroid_id"].to_numpy() for r in expected_rows]))) == {"train"}

    _, manifest = ModelRegistry(store).load(candidate["version"])
    assert manifest["lineage"]["train_rows"] == n_expected
    assert manifest["lineage"]["train_rows_kind"] == "per look"


@pytest.mark.parametrize(("window", "unit"), [(4, None), (3, "day")])
def test_the_candidate_trains_on_every_days_row(lake_with_four_days, captured_training, window, unit):
    store = lake_with_four_days["lake"].store()
    training, candidate = _train(lake_with_four_days, window_days=window, unit=unit)

    expected_rows, table = _expected_day_rows(store, DAYS[-window:])
    n_expected = sum(len(r) for r in expected_rows)
    assert n_expected > int((table["split"] == "train").sum()), "asteroids seen on more than one day"
    assert training["look_rows"] == n_expected
    assert training["look_rows_note"].startswith(
        f"{n_expected} train rows, one per day, over {window} day(s); "
    )
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (n_expected, "per asteroid and day")
    np.testing.assert_array_equal(
        captured_training[0]["x"], np.concatenate([model_inputs(r) for r in expected_rows])
    )
    # The holdout asteroids' looks are their rows of each day, likewise.
    holdout_rows, _ = _expected_day_rows(store, DAYS[-window:], "holdout")
    holdout_looks = load_holdout_looks(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    np.testing.assert_array_equal(
        model_inputs(holdout_looks), np.concatenate([model_inputs(r) for r in holdout_rows])
    )
    validation_rows, _ = _expected_day_rows(store, DAYS[-window:], "validation")
    validation_looks = load_validation_looks(store, load_training_manifest(store, lake_layout.TRAINING_SET))
    np.testing.assert_array_equal(
        model_inputs(validation_looks), np.concatenate([model_inputs(r) for r in validation_rows])
    )


def test_over_the_budget_the_candidate_trains_on_the_combined_rows(lake_with_four_days, captured_training):
    store = lake_with_four_days["lake"].store()
    training, candidate = _train(lake_with_four_days, budget=100)

    table = read_parquet(store, lake_layout.TRAINING_SET)
    combined_train = table.loc[table["split"] == "train"]
    assert training["look_rows"] == 0
    assert "exceed the budget of 100" in training["look_rows_note"]
    manifest = load_training_manifest(store, lake_layout.TRAINING_SET)
    assert load_look_rows(store, manifest) is None
    assert load_holdout_looks(store, manifest) is None
    assert load_validation_looks(store, manifest) is None
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (len(combined_train), "per asteroid")
    np.testing.assert_array_equal(captured_training[0]["x"], model_inputs(combined_train))


def test_the_candidate_can_be_told_to_ignore_the_look_rows(lake_with_four_days, captured_training):
    store = lake_with_four_days["lake"].store()
    training, candidate = _train(lake_with_four_days, candidate={"look_rows": False})

    table = read_parquet(store, lake_layout.TRAINING_SET)
    assert training["look_rows"] > 0
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (
        int((table["split"] == "train").sum()),
        "per asteroid",
    )


def test_a_one_day_window_trains_on_its_observations(lake_with_four_days, captured_training):
    training, candidate = _train(lake_with_four_days, window_days=1)
    expected_rows, _ = _expected_observation_rows(lake_with_four_days, DAYS[-1:])
    assert training["look_rows"] == len(expected_rows[0]) > training["rows_train"]
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (len(expected_rows[0]), "per look")
    np.testing.assert_array_equal(captured_training[0]["x"], model_inputs(expected_rows[0]))


def test_a_one_day_window_has_no_day_rows(lake_with_four_days, captured_training):
    training, candidate = _train(lake_with_four_days, window_days=1, unit="day")
    assert training["look_rows"] == 0
    assert training["look_rows_note"].startswith("one-day window")
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (training["rows_train"], "per asteroid")


def _evaluate(resources, window_days, budget=None):
    """training_set → candidate_model → model_evaluation; model_evaluation's metadata and evaluation."""
    training_config = {"window_days": window_days, **({"look_row_budget": budget} if budget else {})}
    ops = {"training_set": {"config": training_config}, "candidate_model": {"config": QUICK}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*TRAINING, assets.models.model_evaluation],
            resources=resources,
            instance=instance,
            run_config={"ops": ops},
        )
    assert result.success
    metadata = materialization_metadata(result, "model_evaluation")
    store = resources["lake"].store()
    return metadata, json.loads(store.get_bytes(lake_layout.evaluation(metadata["candidate"])))


def _mean_over_looks(resources, model, days, split):
    """The ``split`` asteroids' (in the training set's order) mean class probabilities over their looks,
    recomputed from the raw partitions (windows of 1-3 days) or the feature partitions (4+), with each
    asteroid's number of looks and its class."""
    store = resources["lake"].store()
    table = read_parquet(store, lake_layout.TRAINING_SET)
    rows = table.loc[table["split"] == split].reset_index(drop=True)
    expected = (
        _expected_observation_rows(resources, days, split)[0]
        if len(days) <= 3
        else _expected_day_rows(store, days, split)[0]
    )
    looks = pd.concat(expected, ignore_index=True)
    probabilities = predict(model, model_inputs(looks))[0]
    row = rows.reset_index().set_index("asteroid_id").loc[looks["asteroid_id"], "index"].to_numpy()
    mean = np.zeros((len(rows), probabilities.shape[1]))
    np.add.at(mean, row, probabilities)
    counts = np.bincount(row, minlength=len(rows))
    return mean / counts[:, None], counts, rows["complex"].map(COMPLEX_INDEX).to_numpy()


# Per observation on a 2-day window, per day on a 4-day one (look_unit "auto").
@pytest.mark.parametrize("window", [2, 4])
def test_the_networks_are_scored_on_the_holdout_asteroids_looks_the_baseline_on_its_combined_rows(
    lake_with_four_days, window
):
    """Each holdout asteroid's class probabilities are the mean of its looks' (ml/looks.py), recomputed
    here from the raw or feature partitions, sharpened by the looks' calibration exponent fitted on the
    validation asteroids' looks; the baseline keeps the combined rows."""
    resources = lake_with_four_days
    store = resources["lake"].store()
    metadata, evaluation = _evaluate(resources, window_days=window)

    table = read_parquet(store, lake_layout.TRAINING_SET)
    holdout = table.loc[table["split"] == "holdout"].reset_index(drop=True)
    days = DAYS[-window:]
    model, manifest = ModelRegistry(store).load(metadata["candidate"])
    mean, looks_per_asteroid, labels = _mean_over_looks(resources, model, days, "holdout")
    assert looks_per_asteroid.sum() > len(holdout)
    by_looks = classification_metrics(labels, mean.argmax(axis=1))
    combined_predicted = predict(model, model_inputs(holdout))[0].argmax(axis=1)
    assert (mean.argmax(axis=1) != combined_predicted).any(), "the looks change some asteroid's class"
    # No self-training on 2- and 4-day windows: the registered network is the early-stopped one that
    # candidate_model fits the exponent with, on the validation asteroids' looks.
    validation_mean, validation_looks_per_asteroid, validation_labels = _mean_over_looks(
        resources, model, days, "validation"
    )
    assert (validation_looks_per_asteroid > 1).any()
    exponent = fit_looks_exponent(validation_mean, validation_looks_per_asteroid, validation_labels)
    assert manifest["scoring"]["looks_exponent"] == pytest.approx(exponent, abs=1e-6)
    assert metadata["looks_exponent"] == evaluation["looks_exponent"] == manifest["scoring"]["looks_exponent"]
    sharpened = sharpen_by_looks(mean, looks_per_asteroid, manifest["scoring"]["looks_exponent"])

    assert metadata["macro_f1"] == pytest.approx(by_looks["macro_f1"])
    assert metadata["accuracy"] == pytest.approx(by_looks["accuracy"])
    assert metadata["ece"] == pytest.approx(expected_calibration_error(sharpened, labels), abs=1e-6)
    assert metadata["holdout_scored_on"] == (
        f"{looks_per_asteroid.sum()} looks, each asteroid's probabilities averaged over its looks "
        f"(looks' calibration exponent {metadata['looks_exponent']:.2f})"
    )
    assert (evaluation["holdout_rows"], evaluation["holdout_looks"]) == (
        len(holdout),
        looks_per_asteroid.sum(),
    )
    train = table.loc[table["split"] == "train"]
    baseline = baseline_metrics(
        model_inputs(train), train["complex"].map(COMPLEX_INDEX).to_numpy(), model_inputs(holdout), labels
    )
    assert metadata["baseline_macro_f1"] == pytest.approx(baseline["macro_f1"])


def test_without_holdout_looks_the_networks_are_scored_on_the_combined_rows(lake_with_four_days):
    resources = lake_with_four_days
    store = resources["lake"].store()
    metadata, evaluation = _evaluate(resources, window_days=2, budget=100)  # no look rows at all

    table = read_parquet(store, lake_layout.TRAINING_SET)
    holdout = table.loc[table["split"] == "holdout"]
    model, _ = ModelRegistry(store).load(metadata["candidate"])
    predicted = predict(model, model_inputs(holdout))[0].argmax(axis=1)
    expected = classification_metrics(holdout["complex"].map(COMPLEX_INDEX).to_numpy(), predicted)
    assert metadata["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert metadata["holdout_scored_on"] == "one combined row per asteroid"
    assert evaluation["holdout_looks"] is None
    _, manifest = ModelRegistry(store).load(metadata["candidate"])
    assert manifest["scoring"] == {"looks_exponent": 0.0}  # no validation looks to fit it on


@pytest.mark.fault(
    "tamper",
    "a split's stored looks replaced by looks at other asteroids: the step that reads them fails, naming "
    "the training set and the fix",
)
@pytest.mark.parametrize(
    ("split", "step"), [("validation", "candidate_model"), ("holdout", "model_evaluation")]
)
def test_looks_that_do_not_match_their_split_fail_the_step_that_reads_them(lake_with_four_days, split, step):
    """candidate_model fits the looks' calibration exponent on the validation's, model_evaluation scores
    the holdout's: a look at an asteroid outside the split (same row count, so the object itself reads
    back) must not be scored or fitted on silently."""
    resources = lake_with_four_days
    store = resources["lake"].store()
    _evaluate(resources, window_days=2)
    key = load_training_manifest(store, lake_layout.TRAINING_SET)[f"{split}_looks"]["key"]
    looks = read_parquet(store, key)
    table = read_parquet(store, lake_layout.TRAINING_SET)
    stranger = int(table.loc[table["split"] == "train", "asteroid_id"].iloc[0])
    looks.loc[looks.index[0], "asteroid_id"] = stranger
    write_parquet(store, key, looks)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [assets.models.candidate_model, assets.models.model_evaluation],
            resources=resources,
            instance=instance,
            run_config={"ops": {"candidate_model": {"config": QUICK}}},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == step]
    message = str(failure.step_failure_data.user_failure_data.description)
    assert (
        f"the {split} looks of {store.describe(lake_layout.TRAINING_SET)} do not match its {split}" in message
    )
    assert f"asteroid_id [{stranger}]" in message and "re-materialize training_set" in message
