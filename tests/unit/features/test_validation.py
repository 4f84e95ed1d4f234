"""pandera validation of the feature table and the training set: clean simulated tables pass; each kind of
violation fails naming its column, without raising (the asset check decides)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from astromined.features.engineering import (
    FEATURE_TABLE_COLUMNS,
    NORMALIZED_REFLECTANCE,
    aggregate_by_asteroid,
)
from astromined.features.training_set import build_training_set, combine_days
from astromined.features.validation import (
    FAILURE_COLUMNS,
    MAX_FAILURE_ROWS,
    validate_features,
    validate_training_set,
)
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population, survey_catalog
from astromined.telemetry.decode import decode_file
from astromined.telemetry.ingest import day_window

DAY = dt.date(2031, 5, 17)
PARTITION = DAY.isoformat()
SEED = 7
SATELLITES = range(1, 101)  # two per sector
OBSERVATIONS = 12


def feature_day(population, day: dt.date) -> pd.DataFrame:
    frames = []
    for satellite in SATELLITES:
        downlink = simulate_satellite_day(population, day, satellite, OBSERVATIONS, SEED)
        frames.append(decode_file(downlink.data, downlink.file_name, *day_window(day)).observations)
    return aggregate_by_asteroid(pd.concat(frames, ignore_index=True), nominal_response(SEED))


@pytest.fixture(scope="module")
def population():
    return generate_population(3_000, 11)


@pytest.fixture(scope="module")
def clean_day(population) -> pd.DataFrame:
    return feature_day(population, DAY)


@pytest.fixture
def features(clean_day) -> pd.DataFrame:
    return clean_day.copy()


@pytest.fixture
def training(clean_day, population) -> pd.DataFrame:
    half = len(clean_day) // 2  # two "days" that share asteroids, merged as the training_set asset does
    days = [clean_day.iloc[: half + 100], clean_day.iloc[half:]]
    return build_training_set(combine_days(days), survey_catalog(population))


def failures_of(report, column: str) -> pd.DataFrame:
    return report.failures[report.failures["column"] == column]


def assert_fails_on(report, column: str, check: str, partition: str = PARTITION) -> pd.DataFrame:
    assert not report.passed
    assert report.failure_count >= 1
    assert column in report.failing_columns
    rows = failures_of(report, column)
    assert rows["check"].str.contains(check, regex=False).any(), report.failures
    assert partition in report.message
    assert column in report.message
    return rows


# --- clean tables -----------------------------------------------------------------------------------


def test_clean_simulated_day_passes(features):
    assert len(features) > 500
    assert features["radar_albedo"].isna().any()  # not measured beyond 5,000 km: allowed
    assert (features["n_satellites"] > 1).any()
    report = validate_features(features, PARTITION)
    assert report.passed, report.message
    assert report.failure_count == 0
    assert report.failing_columns == ()
    assert report.n_rows == len(features)
    assert list(report.failures.columns) == FAILURE_COLUMNS
    assert report.failures.empty
    assert PARTITION in report.message
    assert "passed" in report.message


def test_clean_training_set_passes(training):
    assert set(training["split"]) == {"train", "validation", "holdout"}
    report = validate_training_set(training, "window ending 2031-05-17")
    assert report.passed, report.message
    assert "window ending 2031-05-17" in report.message


def test_empty_day_passes_with_the_right_columns():
    report = validate_features(aggregate_by_asteroid(pd.DataFrame(), nominal_response(SEED)), PARTITION)
    assert report.passed, report.message
    assert report.n_rows == 0


def test_validation_does_not_modify_the_frame(features):
    before = features.copy()
    validate_features(features.assign(sector=99), PARTITION)
    validate_features(features, PARTITION)
    pd.testing.assert_frame_equal(features, before)


# --- one violation at a time --------------------------------------------------------------------------


def set_value(column: str, value, row: int = 3):
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[row], column] = value
        return frame

    return mutate


def duplicate_id(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame.index[5], "asteroid_id"] = frame["asteroid_id"].iloc[4]
    return frame


def more_satellites_than_looks(frame: pd.DataFrame) -> pd.DataFrame:
    row = frame.index[frame["n_observations"] == 1][0]
    frame.loc[row, "n_satellites"] = 2  # within 1..10 on its own: only the cross-column check fails
    return frame


VIOLATIONS = {
    "n_observations as float64": (
        lambda f: f.astype({"n_observations": "float64"}),
        "n_observations",
        "dtype('int64')",
    ),
    "albedo as text": (lambda f: f.astype({"albedo": str}), "albedo", "dtype('float64')"),
    "duplicate asteroid_id": (duplicate_id, "asteroid_id", "field_uniqueness"),
    "asteroid_id 0": (set_value("asteroid_id", 0), "asteroid_id", "greater_than(0)"),
    "sector 50": (set_value("sector", 50), "sector", "in_range(0, 49)"),
    "sector -1": (set_value("sector", -1), "sector", "in_range(0, 49)"),
    # 0 looks is also fewer than the asteroid's one satellite: the cross-column check fails too.
    "n_observations 0": (
        set_value("n_observations", 0),
        "n_observations",
        "greater_than_or_equal_to(1)",
        ("n_satellites",),
    ),
    "n_satellites > n_observations": (
        more_satellites_than_looks,
        "n_satellites",
        "n_satellites_le_n_observations",
    ),
    "n_satellites 11": (set_value("n_satellites", 11), "n_satellites", "in_range(1, 10)"),
    "albedo 0": (set_value("albedo", 0.0), "albedo", "greater_than(0.0)"),
    "albedo 1.2": (set_value("albedo", 1.2), "albedo", "less_than_or_equal_to(1.0)"),
    "reflectance NaN": (set_value("refl_norm_1.50um", np.nan), "refl_norm_1.50um", "not_nullable"),
    "reflectance 0": (set_value("refl_norm_0.45um", 0.0), "refl_norm_0.45um", "in_range(0.05, 4.0)"),
    "slope inf": (set_value("spectral_slope", np.inf), "spectral_slope", "in_range"),
    "band depth 1": (set_value("band_depth_1um", 1.0), "band_depth_1um", "in_range(-0.6, 0.95)"),
    "band depth -0.9": (set_value("band_depth_2um", -0.9), "band_depth_2um", "in_range(-0.6, 0.95)"),
    "radar albedo 2": (set_value("radar_albedo", 2.0), "radar_albedo", "in_range(0.0, 1.5)"),
    "rotation 0": (set_value("rotation_period_h", 0.0), "rotation_period_h", "greater_than(0.0)"),
    "amplitude NaN": (
        set_value("lightcurve_amplitude_mag", np.nan),
        "lightcurve_amplitude_mag",
        "not_nullable",
    ),
    "missing column": (lambda f: f.drop(columns=["band_depth_2um"]), "band_depth_2um", "column_in_dataframe"),
    "extra column": (lambda f: f.assign(complex="S"), "complex", "column_in_schema"),
    "duplicated column": (
        lambda f: pd.concat([f, f[["albedo"]]], axis=1),
        "albedo",
        "dataframe_column_labels_unique",
    ),
}


@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_each_violation_fails_naming_its_column(features, violation):
    mutate, column, check, *also = VIOLATIONS[violation]
    report = validate_features(mutate(features.copy()), PARTITION)
    assert_fails_on(report, column, check)
    # Only the damaged column fails (and what it is checked against).
    assert set(report.failing_columns) == {column, *(also[0] if also else ())}, report.message


@pytest.mark.parametrize(
    "violation",
    [v for v in VIOLATIONS if v.startswith(("sector", "albedo 0", "reflectance", "n_satellites >"))],
)
def test_row_failures_name_the_asteroid(features, violation):
    mutate, column, *_ = VIOLATIONS[violation]
    damaged = mutate(features.copy())
    report = validate_features(damaged, PARTITION)
    rows = failures_of(report, column)
    assert len(rows) == 1
    index = rows["index"].iloc[0]
    assert isinstance(index, int)
    assert rows["asteroid_id"].iloc[0] == damaged.loc[index, "asteroid_id"]


def test_duplicate_ids_report_both_rows(features):
    report = validate_features(duplicate_id(features.copy()), PARTITION)
    rows = failures_of(report, "asteroid_id")
    assert sorted(rows["index"]) == [features.index[4], features.index[5]]
    assert set(rows["asteroid_id"]) == {int(features["asteroid_id"].iloc[4])}


def test_dataframe_level_failure_is_one_row_per_offending_asteroid(features):
    damaged = features.copy()
    single = damaged.index[damaged["n_observations"] == 1][:3]
    damaged.loc[single, "n_satellites"] = 3
    report = validate_features(damaged, PARTITION)
    assert report.failure_count == 3
    assert report.failures_by_check == {("n_satellites", "n_satellites_le_n_observations"): 3}
    assert sorted(report.failures["asteroid_id"]) == sorted(features.loc[single, "asteroid_id"])
    assert set(report.failures["failure_case"]) == {"3"}


def test_all_failures_are_collected_lazily_and_named_in_the_message(features):
    damaged = set_value("sector", 50)(features.copy())
    damaged = set_value("albedo", 0.0, row=7)(damaged)
    damaged = set_value("refl_norm_2.05um", np.nan, row=9)(damaged)
    damaged = damaged.astype({"n_observations": "float64"})
    report = validate_features(damaged, PARTITION)
    assert report.failing_columns == ("sector", "n_observations", "refl_norm_2.05um", "albedo")
    assert report.failure_count == 4
    for column in report.failing_columns:
        assert column in report.message
    assert report.message.startswith(f"asteroid_features [{PARTITION}]: 4 failure(s)")


def test_failures_table_is_bounded_but_the_count_is_not(features):
    report = validate_features(features.assign(albedo=0.0), PARTITION)
    assert report.failure_count == len(features)
    assert len(report.failures) == MAX_FAILURE_ROWS
    assert report.failures_by_check == {("albedo", "greater_than(0.0)"): len(features)}
    assert str(len(features)) in report.message


@pytest.mark.parametrize(
    "bad",
    [
        pd.DataFrame(),
        pd.DataFrame({"asteroid_id": ["a", "b"]}),
        pd.DataFrame({c: ["x", None] for c in FEATURE_TABLE_COLUMNS}),
        pd.DataFrame({c: [np.nan, np.inf] for c in FEATURE_TABLE_COLUMNS}),
    ],
    ids=["no columns", "one text column", "all text", "all non-finite"],
)
def test_garbage_never_raises(bad):
    report = validate_features(bad, PARTITION)
    assert not report.passed
    assert report.failure_count > 0
    assert PARTITION in report.message
    json.dumps(report.summary())


def test_summary_is_json_and_names_partition_and_columns(features):
    report = validate_features(set_value("sector", 50)(features.copy()), PARTITION)
    summary = json.loads(json.dumps(report.summary()))
    assert summary["partition"] == PARTITION
    assert summary["passed"] is False
    assert summary["failing_columns"] == ["sector"]
    assert summary["failures"][0]["column"] == "sector"
    assert summary["failures"][0]["failure_case"] == "50"
    assert summary["failures"][0]["asteroid_id"] == int(features["asteroid_id"].iloc[3])


def test_every_normalized_band_is_checked(features):
    damaged = features.copy()
    damaged[NORMALIZED_REFLECTANCE] = np.nan
    report = validate_features(damaged, PARTITION)
    assert set(NORMALIZED_REFLECTANCE) <= set(report.failing_columns)


# --- training set --------------------------------------------------------------------------------------


def test_training_set_asteroid_in_two_splits_fails_on_split(training):
    row = training.iloc[[0]].copy()
    row["split"] = "holdout" if row["split"].iloc[0] != "holdout" else "train"
    damaged = pd.concat([training, row], ignore_index=True)
    report = validate_training_set(damaged, "window")
    rows = assert_fails_on(report, "split", "asteroid_in_one_split", partition="window")
    assert set(rows["asteroid_id"]) == {int(training["asteroid_id"].iloc[0])}
    assert len(rows) == 2  # both rows of that asteroid
    assert "asteroid_id" in report.failing_columns  # and the id is no longer unique


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("complex", "X", "isin"),
        ("complex", None, "not_nullable"),
        ("split", "test", "isin"),
        ("metal_richness", 1.5, "in_range(0.0, 1.0)"),
        ("metal_richness", -0.1, "in_range(0.0, 1.0)"),
        ("albedo", 0.0, "greater_than(0.0)"),
    ],
)
def test_training_set_value_violations(training, column, value, check):
    damaged = training.copy()
    damaged.loc[damaged.index[2], column] = value
    report = validate_training_set(damaged, "window")
    rows = assert_fails_on(report, column, check, partition="window")
    assert rows["asteroid_id"].iloc[0] == training["asteroid_id"].iloc[2]
    assert report.failing_columns == (column,)


def test_training_set_accepts_pandas_string_dtypes(training):
    as_strings = training.astype({"complex": "string", "split": "string"})
    assert validate_training_set(as_strings, "window").passed


def test_training_set_missing_label_columns(training):
    report = validate_training_set(training.drop(columns=["complex", "split"]), "window")
    assert set(report.failing_columns) == {"complex", "split"}
