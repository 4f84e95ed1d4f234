"""The candidate trains on every look at a train asteroid, through the assets: training_set stores the
look rows (by default one per observation on windows of 1-3 days, one per asteroid and day on longer ones)
within its row budget, candidate_model trains on exactly them (and validates on the combined rows), and
either side can turn them off."""

import datetime as dt

import dagster as dg
import numpy as np
import pytest
from support.training_runs import (
    TRAINING,
    materialization_metadata,
    record_train_model,
    tiny_lake_with_days,
)

from astromined import lake_layout
from astromined.features.engineering import (
    INPUT_COLUMNS,
    features_per_look,
    finite_model_inputs,
    model_inputs,
)
from astromined.features.training_set import load_look_rows, load_training_manifest, split_of
from astromined.ml.registry import ModelRegistry
from astromined.storage import read_arrow_columns, read_parquet

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


def _expected_day_rows(store, days=DAYS):
    """Every day's own row of every labelled train asteroid, recomputed from the partitions."""
    table = read_parquet(store, lake_layout.TRAINING_SET)
    train_ids = set(table.loc[table["split"] == "train", "asteroid_id"])
    frames = [read_parquet(store, lake_layout.asteroid_features(day)) for day in days]
    rows = [f.loc[f["asteroid_id"].isin(train_ids)] for f in frames]
    return rows, table


def _expected_observation_rows(resources, days=DAYS):
    """Every observation of every labelled train asteroid, recomputed from the raw partitions, by id
    within each day."""
    store = resources["lake"].store()
    table = read_parquet(store, lake_layout.TRAINING_SET)
    train_ids = set(table.loc[table["split"] == "train", "asteroid_id"])
    rows = []
    for day in days:
        raw = read_arrow_columns(store, lake_layout.raw_observations(day), INPUT_COLUMNS).to_pandas()
        raw = raw.loc[raw["asteroid_id"].isin(train_ids)]
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
    assert training["look_rows"] == n_expected
    assert training["look_rows_note"] == f"{n_expected} train rows, one per observation, over {window} day(s)"
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (n_expected, "per look")

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
    assert training["look_rows_note"] == f"{n_expected} train rows, one per day, over {window} day(s)"
    assert (candidate["train_rows"], candidate["train_rows_kind"]) == (n_expected, "per asteroid and day")
    np.testing.assert_array_equal(
        captured_training[0]["x"], np.concatenate([model_inputs(r) for r in expected_rows])
    )


def test_over_the_budget_the_candidate_trains_on_the_combined_rows(lake_with_four_days, captured_training):
    store = lake_with_four_days["lake"].store()
    training, candidate = _train(lake_with_four_days, budget=100)

    table = read_parquet(store, lake_layout.TRAINING_SET)
    combined_train = table.loc[table["split"] == "train"]
    assert training["look_rows"] == 0
    assert "exceed the budget of 100" in training["look_rows_note"]
    assert load_look_rows(store, load_training_manifest(store, lake_layout.TRAINING_SET)) is None
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
