"""Per-day train rows: one row per train asteroid and day of the window, stored beside the training set."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.killed_writer import KilledAfterPuts

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.features.reference_stats import ReferenceStatistics
from astromined.features.training_set import (
    PER_DAY_GRACE_S,
    build_training_set,
    combine_days,
    load_per_day_train,
    load_training_manifest,
    per_day_prefix,
    per_day_train_rows,
    save_training_set,
    split_of,
)
from astromined.storage import LocalBlobStore, read_parquet

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
KEY = "training/set.parquet"


def feature_day(ids: list[int], day_index: int) -> pd.DataFrame:
    """A feature table whose values say which asteroid and day they came from."""
    ids = sorted(ids)
    frame = pd.DataFrame({c: np.zeros(len(ids)) for c in FEATURE_TABLE_COLUMNS})
    frame["asteroid_id"] = np.array(ids, dtype=np.int64)
    frame["sector"] = np.array(ids, dtype=np.int64) % 7
    frame["n_observations"] = np.full(len(ids), day_index + 1, dtype=np.int64)
    frame["n_satellites"] = np.ones(len(ids), dtype=np.int64)
    frame["albedo"] = 0.1 + 0.01 * day_index + np.array(ids) * 1e-6
    frame["radar_albedo"] = np.where(np.array(ids) % 2 == 0, np.nan, 0.2 + 0.01 * day_index)
    return frame[FEATURE_TABLE_COLUMNS]


def catalog(ids) -> pd.DataFrame:
    ids = np.array(sorted(ids), dtype=np.int64)
    return pd.DataFrame(
        {
            "asteroid_id": ids,
            "complex": np.where(ids % 3 == 0, "S", "C"),
            "metal_richness": (ids % 10) / 10.0,
        }
    )


def window(daily_ids: list[list[int]], labelled: set[int]):
    days = DAYS[: len(daily_ids)]
    daily = [feature_day(ids, i) for i, ids in enumerate(daily_ids)]
    table = build_training_set(combine_days(daily), catalog(labelled))
    return days, daily, table


_ids = st.lists(st.integers(min_value=1, max_value=60), unique=True, max_size=25)


@settings(max_examples=60, deadline=None)
@given(daily_ids=st.lists(_ids, min_size=2, max_size=4), labelled=st.sets(st.integers(1, 60)))
def test_per_day_rows_are_every_days_own_row_of_every_train_asteroid(daily_ids, labelled):
    days, daily, table = window([ids or [61] for ids in daily_ids], labelled)
    rows, why = per_day_train_rows(daily, days, table, budget=10**6)

    train = table.loc[table["split"] == "train"].set_index("asteroid_id")
    expected = [
        (day, asteroid)
        for day, frame in zip(days, daily, strict=True)
        for asteroid in frame["asteroid_id"]
        if asteroid in train.index
    ]
    assert list(zip(rows["day"], rows["asteroid_id"], strict=True)) == expected
    assert why == f"{len(expected)} per-day train rows over {len(days)} days"
    assert set(rows.columns) == set(table.columns) | {"day"}
    assert (rows["split"] == "train").all()
    for day_index, (day, frame) in enumerate(zip(days, daily, strict=True)):
        mine = rows.loc[rows["day"] == day].set_index("asteroid_id")
        source = frame.set_index("asteroid_id").loc[mine.index]
        # That day's own measurement, not the window's combined one.
        pd.testing.assert_frame_equal(mine[source.columns], source, check_names=False)
        assert (mine["n_observations"] == day_index + 1).all()
        assert mine["complex"].tolist() == train.loc[mine.index, "complex"].tolist()
        assert mine["metal_richness"].tolist() == train.loc[mine.index, "metal_richness"].tolist()


def test_no_validation_or_holdout_asteroid_gets_a_per_day_row():
    ids = list(range(1, 400))
    days, daily, table = window([ids, ids[::2]], set(ids))
    rows, _ = per_day_train_rows(daily, days, table, budget=10**6)
    assert set(split_of(rows["asteroid_id"].to_numpy())) == {"train"}
    assert set(rows["asteroid_id"]) == set(table.loc[table["split"] == "train", "asteroid_id"])


def test_the_budget_is_inclusive_and_counts_rows_not_asteroids():
    ids = list(range(1, 200))
    days, daily, table = window([ids, ids, ids], set(ids))
    train_asteroids = int((table["split"] == "train").sum())
    rows, _ = per_day_train_rows(daily, days, table, budget=3 * train_asteroids)
    assert len(rows) == 3 * train_asteroids
    over, why = per_day_train_rows(daily, days, table, budget=3 * train_asteroids - 1)
    assert over is None
    assert f"{3 * train_asteroids} per-day train rows exceed the budget of {3 * train_asteroids - 1}" in why
    assert "per_day_row_budget" in why
    off, _ = per_day_train_rows(daily, days, table, budget=0)
    assert off is None


@pytest.mark.fault("bad-config", "a negative per-day row budget fails naming the setting")
def test_a_negative_budget_is_refused_by_name():
    days, daily, table = window([[1, 2], [2, 3]], {1, 2, 3})
    with pytest.raises(ValueError, match=r"per_day_row_budget must be 0 \(off\) or more, not -1"):
        per_day_train_rows(daily, days, table, budget=-1)


def test_a_one_day_window_has_no_per_day_rows():
    days, daily, table = window([[1, 2, 3, 4, 5]], {1, 2, 3, 4, 5})
    rows, why = per_day_train_rows(daily, days, table)
    assert rows is None
    assert why.startswith("one-day window")


def test_frames_and_days_must_pair_up():
    _, daily, table = window([[1, 2], [2, 3]], {1, 2, 3})
    with pytest.raises(ValueError, match=r"2 feature table\(s\) for 1 day\(s\)"):
        per_day_train_rows(daily, DAYS[:1], table)


# --- stored beside the training set -----------------------------------------------------------


def _stored(store, per_day, reference_rows=1, now=None):
    table = pd.DataFrame({"asteroid_id": [1, 2], "split": ["train", "holdout"]})
    save_training_set(
        store, KEY, table, {"partitions": DAYS[:2]}, ReferenceStatistics(reference_rows, {}), per_day, now=now
    )
    return load_training_manifest(store, KEY)


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"asteroid_id": np.arange(1, n + 1), "split": ["train"] * n, "day": DAYS[0]})


def test_the_manifest_names_the_per_day_rows_and_they_load_back(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _rows(5))
    assert manifest["per_day_train"]["rows"] == 5
    assert manifest["per_day_train"]["key"].startswith(per_day_prefix(KEY))
    pd.testing.assert_frame_equal(load_per_day_train(store, manifest), _rows(5))


def test_a_set_without_per_day_rows_loads_none(tmp_path):
    store = LocalBlobStore(tmp_path)
    assert _stored(store, None)["per_day_train"] is None
    assert load_per_day_train(store, load_training_manifest(store, KEY)) is None
    # A training set written before per-day rows existed: no entry at all.
    assert load_per_day_train(store, {"partitions": DAYS}) is None


def test_superseded_per_day_objects_go_once_past_the_grace_period(tmp_path):
    store = LocalBlobStore(tmp_path)
    first = _stored(store, _rows(3))["per_day_train"]["key"]
    first_written = store.modified_at(first)
    # Within the grace period a reader that loaded the first manifest still finds its rows.
    second = _stored(store, _rows(4), now=first_written + PER_DAY_GRACE_S - 1)["per_day_train"]["key"]
    assert sorted(store.list_keys(per_day_prefix(KEY))) == sorted([first, second])
    # Past it (both were written within a second), only the current one stays, also when the new set
    # has none.
    third = _stored(store, _rows(6), now=first_written + PER_DAY_GRACE_S + 5)["per_day_train"]["key"]
    assert store.list_keys(per_day_prefix(KEY)) == [third]
    _stored(store, None, now=store.modified_at(third) + PER_DAY_GRACE_S + 1)
    assert store.list_keys(per_day_prefix(KEY)) == []


def test_missing_or_mismatched_per_day_rows_fail_naming_the_object_and_the_remedy(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _rows(5))
    key = manifest["per_day_train"]["key"]
    with pytest.raises(ValueError, match=r"holds 5 rows, the training set names 7: re-materialize"):
        load_per_day_train(store, {"per_day_train": {"key": key, "rows": 7}})
    store.delete(key)
    with pytest.raises(ValueError, match=rf"{key.split('/')[-1]}, which are gone .*re-materialize"):
        load_per_day_train(store, manifest)


@pytest.mark.fault(
    "kill", "writer killed at every write of a training set with per-day rows: the set finds its own rows"
)
@pytest.mark.parametrize("allowed", [0, 1, 2])
def test_a_killed_write_never_leaves_a_set_naming_rows_it_does_not_have(tmp_path, allowed):
    store = LocalBlobStore(tmp_path)
    _stored(store, _rows(3), reference_rows=3)
    with contextlib.suppress(KeyboardInterrupt):
        _stored(KilledAfterPuts(store, allowed), _rows(8), reference_rows=8)
    manifest = load_training_manifest(store, KEY)
    rows = load_per_day_train(store, manifest)
    # Whichever set is there (the old one, or the new one if both writes happened), its rows are its own.
    expected = 8 if allowed >= 2 else 3
    assert len(rows) == expected
    assert len(read_parquet(store, KEY)) == 2
