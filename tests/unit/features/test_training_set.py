"""Training-set assembly: day merging, the asteroid-level split and the label join."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.killed_writer import KilledAfterPuts

from astromined.features.engineering import FEATURE_TABLE_COLUMNS, NORMALIZED_REFLECTANCE
from astromined.features.training_set import (
    SPLIT_PERCENT,
    SPLITS,
    build_training_set,
    combine_days,
    split_of,
)


def split_oracle(asteroid_id: int) -> str:
    """The documented hash in exact integer arithmetic (no uint64 wrap-around to get wrong)."""
    percent = ((asteroid_id * 2654435761) % 2**32 * 100) >> 32
    if percent < 70:
        return "train"
    return "validation" if percent < 85 else "holdout"


def feature_day(rows: list[dict]) -> pd.DataFrame:
    full = []
    for row in rows:
        base = {c: 1.0 for c in FEATURE_TABLE_COLUMNS}
        base.update(sector=0, n_satellites=1, radar_albedo=np.nan)
        base.update(row)
        full.append(base)
    return pd.DataFrame(full, columns=FEATURE_TABLE_COLUMNS)


# --- split_of ---------------------------------------------------------------------------------


def test_split_percentages_sum_to_100():
    assert sum(SPLIT_PERCENT.values()) == 100
    assert set(SPLIT_PERCENT) == set(SPLITS)


def test_split_of_is_deterministic_and_matches_the_documented_hash():
    ids = np.array([1, 2, 3, 17, 1000, 123456, 2**31 + 5, 2**40 + 11, 2**62 + 3], dtype=np.int64)
    first = split_of(ids)
    assert first.tolist() == split_of(ids.copy()).tolist()
    assert first.tolist() == [split_oracle(int(i)) for i in ids]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=50))
def test_split_of_matches_oracle_for_any_ids(ids):
    assert split_of(np.array(ids, dtype=np.int64)).tolist() == [split_oracle(i) for i in ids]


def test_split_of_scalar_and_vector_agree():
    ids = np.arange(1, 200)
    vector = split_of(ids)
    assert [str(split_of(int(i))) for i in ids] == vector.tolist()


def test_split_proportions_over_100k_ids():
    splits = split_of(np.arange(1, 100_001))
    assert set(np.unique(splits)) == set(SPLITS)
    for name, percent in SPLIT_PERCENT.items():
        assert np.mean(splits == name) == pytest.approx(percent / 100, abs=0.01)


def test_no_asteroid_in_two_splits_regardless_of_position():
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 5_000, size=20_000)  # many repeats, arbitrary order
    splits = split_of(ids)
    by_id = pd.DataFrame({"asteroid_id": ids, "split": splits}).groupby("asteroid_id")["split"].nunique()
    assert (by_id == 1).all()
    members = {name: set(ids[splits == name].tolist()) for name in SPLITS}
    assert not members["train"] & members["validation"]
    assert not members["train"] & members["holdout"]
    assert not members["validation"] & members["holdout"]


# --- combine_days -----------------------------------------------------------------------------


def test_combine_days_weights_by_observations():
    day1 = feature_day(
        [
            {"asteroid_id": 1, "n_observations": 1, "albedo": 0.10, "radar_albedo": np.nan, "sector": 4},
            {"asteroid_id": 2, "n_observations": 2, "albedo": 0.50, "spectral_slope": 0.3},
        ]
    )
    day2 = feature_day(
        [
            {
                "asteroid_id": 1,
                "n_observations": 3,
                "albedo": 0.30,
                "radar_albedo": 0.5,
                "sector": 4,
                "n_satellites": 2,
                "refl_norm_0.45um": 2.0,
            },
            {"asteroid_id": 3, "n_observations": 5, "albedo": 0.07},
        ]
    )
    combined = combine_days([day1, day2]).set_index("asteroid_id")
    assert sorted(combined.index) == [1, 2, 3]
    # (0.10·1 + 0.30·3) / 4
    assert combined.loc[1, "albedo"] == pytest.approx(0.25)
    # (1.0·1 + 2.0·3) / 4
    assert combined.loc[1, "refl_norm_0.45um"] == pytest.approx(1.75)
    # radar measured only on day 2: the NaN day does not dilute it
    assert combined.loc[1, "radar_albedo"] == pytest.approx(0.5)
    assert combined.loc[1, "n_observations"] == 4
    assert combined.loc[1, "n_satellites"] == 2
    assert combined.loc[1, "sector"] == 4
    # single-day asteroids keep their values
    assert combined.loc[2, "albedo"] == pytest.approx(0.50)
    assert combined.loc[2, "spectral_slope"] == pytest.approx(0.3)
    assert combined.loc[2, "n_observations"] == 2
    assert combined.loc[3, "albedo"] == pytest.approx(0.07)
    # never radar-measured stays NaN
    assert np.isnan(combined.loc[2, "radar_albedo"])
    assert np.isnan(combined.loc[3, "radar_albedo"])


def test_combine_days_nan_in_one_day_uses_only_the_other_days_weights():
    day1 = feature_day([{"asteroid_id": 9, "n_observations": 2, "band_depth_1um": np.nan}])
    day2 = feature_day([{"asteroid_id": 9, "n_observations": 6, "band_depth_1um": 0.2}])
    day3 = feature_day([{"asteroid_id": 9, "n_observations": 2, "band_depth_1um": 0.4}])
    combined = combine_days([day1, day2, day3])
    # (0.2·6 + 0.4·2) / 8
    assert combined["band_depth_1um"].iloc[0] == pytest.approx(0.25)
    assert combined["n_observations"].iloc[0] == 10


def test_combine_days_output_layout():
    day = feature_day([{"asteroid_id": i, "n_observations": 1} for i in (5, 2, 8)])
    combined = combine_days([day])
    assert list(combined.columns) == FEATURE_TABLE_COLUMNS
    assert combined["asteroid_id"].tolist() == [2, 5, 8]
    for column in NORMALIZED_REFLECTANCE:
        np.testing.assert_allclose(combined[column], 1.0)


def test_combine_days_skips_empty_days_and_rejects_an_empty_window():
    day = feature_day([{"asteroid_id": 1, "n_observations": 2, "albedo": 0.3}])
    empty = feature_day([])
    combined = combine_days([empty, day, empty])
    assert combined["albedo"].tolist() == pytest.approx([0.3])
    with pytest.raises(ValueError, match="no feature rows"):
        combine_days([empty, empty])
    with pytest.raises(ValueError, match="no feature rows"):
        combine_days([])


AVERAGED = [
    c for c in FEATURE_TABLE_COLUMNS if c not in ("asteroid_id", "sector", "n_observations", "n_satellites")
]
INT_COLUMNS = {"asteroid_id": "int64", "sector": "int64", "n_observations": "int64", "n_satellites": "int64"}


def feature_table(rows: list[dict]) -> pd.DataFrame:
    """A feature partition with the dtypes aggregate_by_asteroid writes (also when it has no rows)."""
    return pd.DataFrame(rows, columns=FEATURE_TABLE_COLUMNS).astype(
        {**dict.fromkeys(AVERAGED, "float64"), **INT_COLUMNS}
    )


def combine_days_reference(daily: list[pd.DataFrame]) -> pd.DataFrame:
    """The documented merge, one asteroid and one column at a time."""
    rows = [row for day in daily for row in day.to_dict("records")]
    if not rows:
        raise ValueError("no feature rows in the training window")
    merged = []
    for asteroid in sorted({row["asteroid_id"] for row in rows}):
        looks = [row for row in rows if row["asteroid_id"] == asteroid]
        record = {
            "asteroid_id": asteroid,
            "sector": min(row["sector"] for row in looks),
            "n_observations": sum(row["n_observations"] for row in looks),
            "n_satellites": max(row["n_satellites"] for row in looks),
        }
        for column in AVERAGED:
            measured = [(row[column], row["n_observations"]) for row in looks if not math.isnan(row[column])]
            weight = sum(w for _, w in measured)
            record[column] = sum(v * w for v, w in measured) / weight if weight > 0 else math.nan
        merged.append(record)
    return feature_table(merged)


def _row(asteroid_id: int, n_observations: int = 1, fill: float = 0.5, **values) -> dict:
    return {
        "asteroid_id": asteroid_id,
        "sector": asteroid_id % 7,
        "n_observations": n_observations,
        "n_satellites": 1,
        **dict.fromkeys(AVERAGED, fill),
        **values,
    }


feature_value = st.one_of(st.just(math.nan), st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))
feature_row = st.fixed_dictionaries(
    {
        "asteroid_id": st.one_of(st.integers(0, 6), st.just(2**62 + 1)),
        "sector": st.integers(0, 49),
        "n_observations": st.integers(0, 20),
        "n_satellites": st.integers(1, 5),
        **{column: feature_value for column in AVERAGED},
    }
)


@settings(max_examples=150, deadline=None)
@given(days=st.lists(st.lists(feature_row, max_size=6), max_size=5))
@example(days=[[_row(3, 2, fill=0.25), _row(1, 5)]])  # one day, unsorted
@example(days=[[], [_row(1, 2, radar_albedo=math.nan)], [], [_row(1, 3, radar_albedo=0.4), _row(2)]])
@example(days=[[_row(1, 0, fill=0.7)], [_row(1, 0, albedo=math.nan)]])  # zero weight: NaN, never 0/0 noise
@example(days=[[_row(5, 4, fill=math.nan)], [_row(5, 1, fill=math.nan)]])  # never measured stays NaN
@example(days=[[], []])
@example(days=[])
def test_combine_days_matches_the_per_asteroid_reference(days):
    daily = [feature_table(rows) for rows in days]
    if not any(rows for rows in days):
        with pytest.raises(ValueError, match="no feature rows"):
            combine_days(daily)
        return
    actual = combine_days(daily)
    expected = combine_days_reference(daily)
    assert list(actual.columns) == FEATURE_TABLE_COLUMNS
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9, atol=1e-8)


def test_combine_days_keeps_float_counts_and_skips_missing_ones_like_pandas():
    """Tables built by hand can carry float counts; a missing count adds no weight and no looks."""
    day1 = feature_day([{"asteroid_id": 1, "n_observations": 2.0, "albedo": 0.2}])
    day2 = feature_day([{"asteroid_id": 1, "n_observations": np.nan, "albedo": 0.9}])
    combined = combine_days([day1, day2])
    assert combined["n_observations"].dtype == np.float64
    assert combined["n_observations"].tolist() == [2.0]
    assert combined["albedo"].tolist() == pytest.approx([0.2])


# --- build_training_set -----------------------------------------------------------------------


def catalog(ids, complexes, metal, **extra) -> pd.DataFrame:
    return pd.DataFrame({"asteroid_id": ids, "complex": complexes, "metal_richness": metal, **extra})


def test_build_training_set_keeps_only_labelled_asteroids():
    features = feature_day([{"asteroid_id": i, "n_observations": i} for i in range(1, 6)])
    labels = catalog([2, 4, 99], ["S", "M", "C"], [0.1, 0.9, 0.0], survey=["a", "b", "c"])
    table = build_training_set(features, labels)
    assert sorted(table["asteroid_id"]) == [2, 4]
    by_id = table.set_index("asteroid_id")
    assert by_id.loc[2, "complex"] == "S"
    assert by_id.loc[4, "complex"] == "M"
    assert by_id.loc[4, "metal_richness"] == pytest.approx(0.9)
    assert by_id.loc[4, "n_observations"] == 4
    assert "survey" not in table.columns
    assert set(FEATURE_TABLE_COLUMNS) <= set(table.columns)
    assert {"complex", "metal_richness", "split"} <= set(table.columns)
    assert table["split"].tolist() == split_of(table["asteroid_id"].to_numpy()).tolist()
    assert list(table.index) == list(range(len(table)))


def test_build_training_set_with_no_overlap_is_empty():
    features = feature_day([{"asteroid_id": 1, "n_observations": 1}])
    table = build_training_set(features, catalog([2], ["S"], [0.1]))
    assert table.empty
    assert "split" in table.columns


@pytest.mark.parametrize("dropped", ["complex", "metal_richness", "asteroid_id"])
def test_build_training_set_names_missing_catalog_columns(dropped):
    features = feature_day([{"asteroid_id": 1, "n_observations": 1}])
    labels = catalog([1], ["S"], [0.1]).drop(columns=[dropped])
    with pytest.raises(ValueError, match=dropped):
        build_training_set(features, labels)


@pytest.mark.fault(
    "kill", "writer killed at every write of the training set: table, manifest and reference stay together"
)
@pytest.mark.parametrize("allowed", [0, 1, 2])
def test_a_killed_training_set_write_never_mixes_table_and_manifest(tmp_path, allowed):
    from astromined.features.reference_stats import ReferenceStatistics
    from astromined.features.training_set import (
        load_training_manifest,
        load_training_reference,
        save_training_set,
    )
    from astromined.storage import LocalBlobStore, read_parquet

    store = LocalBlobStore(tmp_path)
    old = pd.DataFrame({"asteroid_id": [1, 2], "split": ["train", "holdout"]})
    new = pd.DataFrame({"asteroid_id": [3, 4, 5], "split": ["train", "train", "validation"]})
    # A reference's n_rows tells which write it came from.
    old_reference, new_reference = ReferenceStatistics(20, {}), ReferenceStatistics(30, {})
    save_training_set(store, "training/set.parquet", old, {"partitions": ["2026-01-01"]}, old_reference)
    with contextlib.suppress(KeyboardInterrupt):
        save_training_set(
            KilledAfterPuts(store, allowed),
            "training/set.parquet",
            new,
            {"partitions": ["2026-01-02"]},
            new_reference,
        )
    table = read_parquet(store, "training/set.parquet")
    manifest = load_training_manifest(store, "training/set.parquet")
    reference = load_training_reference(store, "training/set.parquet")
    expected = {3: (["2026-01-02"], 30), 2: (["2026-01-01"], 20)}[len(table)]
    assert manifest["partitions"] == expected[0], "the manifest must describe the table beside it"
    assert reference.n_rows == expected[1], "the reference must be that of the table beside it"
    assert (len(table) == 3) == (allowed >= 1), "one write: it either happened or it did not"


def test_a_training_set_without_a_manifest_names_the_object(tmp_path):
    from astromined.features.training_set import load_training_manifest
    from astromined.storage import LocalBlobStore, write_parquet

    store = LocalBlobStore(tmp_path)
    write_parquet(store, "training/set.parquet", pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match=r"set\.parquet has no training_manifest"):
        load_training_manifest(store, "training/set.parquet")


def test_a_training_set_without_reference_statistics_names_the_object_and_the_remedy(tmp_path):
    """A set written before the reference travelled with it (manifest only) fails by name, not with a
    KeyError in the middle of a training run."""
    from astromined.features.training_set import MANIFEST_METADATA_KEY, load_training_reference
    from astromined.storage import LocalBlobStore, write_parquet

    store = LocalBlobStore(tmp_path)
    write_parquet(store, "training/set.parquet", pd.DataFrame({"a": [1]}), {MANIFEST_METADATA_KEY: "{}"})
    with pytest.raises(ValueError, match=r"set\.parquet has no reference_statistics .*re-materialize"):
        load_training_reference(store, "training/set.parquet")
