"""Unlabelled rows: each day's feature rows of the asteroids without a label, stored beside the training set
on self-training's windows (one day by default) for candidate_model's self-training."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.feature_windows import DAYS, window
from support.killed_writer import KilledAfterPuts

from astromined.features.engineering import FEATURE_TABLE_COLUMNS
from astromined.features.reference_stats import ReferenceStatistics
from astromined.features.training_set import (
    LOOK_ROWS_GRACE_S,
    LookRows,
    load_look_rows,
    load_training_manifest,
    load_unlabelled_rows,
    save_training_set,
    unlabelled_rows_prefix,
)
from astromined.features.unlabelled_rows import (
    SELF_TRAINING_MAX_DAYS,
    unlabelled_rows_plan,
    window_unlabelled_rows,
)
from astromined.storage import LocalBlobStore, read_parquet

KEY = "training/set.parquet"
_ids = st.lists(st.integers(min_value=1, max_value=60), unique=True, min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(daily_ids=st.lists(_ids, min_size=1, max_size=3), labelled=st.sets(st.integers(1, 60)))
def test_the_rows_are_every_days_own_row_of_every_unlabelled_asteroid(daily_ids, labelled):
    days, daily, table = window(daily_ids, labelled)
    rows, note = window_unlabelled_rows(daily, days, table, max_days=len(days), budget=10_000)

    expected = [
        (day, asteroid)
        for day, ids in zip(days, daily_ids, strict=True)
        for asteroid in sorted(set(ids) - labelled)
    ]
    if not expected:
        assert rows is None
        assert note.startswith("no unlabelled asteroid in the window")
        return
    # Oldest day first, by id within a day; each with that day's own values.
    assert list(zip(rows["day"], rows["asteroid_id"], strict=True)) == expected
    assert not set(rows["asteroid_id"]) & set(table["asteroid_id"])
    for (day, asteroid), albedo in zip(expected, rows["albedo"], strict=True):
        day_index = days.index(day)
        source = daily[day_index].loc[daily[day_index]["asteroid_id"] == asteroid, "albedo"]
        assert albedo == source.item()
    assert list(rows.columns) == [*FEATURE_TABLE_COLUMNS, "day"]
    assert note == f"{len(expected)} unlabelled rows over {len(days)} day(s) for self-training"


@pytest.mark.parametrize("days", [1, 2, 3, 4])
def test_by_default_only_a_one_day_window_gets_them(days):
    assert SELF_TRAINING_MAX_DAYS == 1
    day_names, daily, table = window([[1, 2, 3, 4]] * days, {1})
    rows, note = window_unlabelled_rows(daily, day_names, table)
    if days == 1:
        assert list(rows["asteroid_id"]) == [2, 3, 4]
    else:
        assert rows is None
        assert note == (
            f"a {days}-day window is longer than self_training_max_days=1: "
            "the candidate trains on the labelled rows alone"
        )


def test_zero_days_turns_them_off():
    days, daily, table = window([[1, 2, 3]], {1})
    rows, note = window_unlabelled_rows(daily, days, table, max_days=0)
    assert rows is None
    assert "self_training_max_days=0" in note


def test_the_budget_is_inclusive_and_counts_rows_over_the_days():
    days, daily, table = window([[1, 2, 3, 4], [2, 3, 5]], {1})
    # Asteroids 2 and 3 count once a day: 3 rows on the first day, 3 on the second.
    assert unlabelled_rows_plan(daily, days, table, max_days=2, budget=6) is None
    note = unlabelled_rows_plan(daily, days, table, max_days=2, budget=5)
    assert note.startswith(
        "6 unlabelled rows exceed the budget of 5 (TrainingSetConfig.unlabelled_row_budget)"
    )
    assert window_unlabelled_rows(daily, days, table, max_days=2, budget=5) == (None, note)


def test_a_row_without_finite_model_inputs_is_left_out_and_counted():
    days, daily, table = window([[1, 2, 3, 4]], {1})
    daily[0].loc[daily[0]["asteroid_id"] == 3, "albedo"] = np.nan
    rows, note = window_unlabelled_rows(daily, days, table)
    assert list(rows["asteroid_id"]) == [2, 4]
    assert note == "2 unlabelled rows over 1 day(s) for self-training; 1 without finite model inputs left out"


def test_when_every_unlabelled_row_is_left_out_there_are_none():
    days, daily, table = window([[1, 2]], {1})
    daily[0].loc[daily[0]["asteroid_id"] == 2, "albedo"] = np.nan
    rows, note = window_unlabelled_rows(daily, days, table)
    assert rows is None
    assert note.endswith(
        "1 without finite model inputs left out: none left, the candidate trains on the labelled rows alone"
    )


@pytest.mark.fault("bad-config", "negative self-training settings, or frames and days that do not pair up")
def test_bad_settings_are_refused_by_name():
    days, daily, table = window([[1, 2]], {1})
    with pytest.raises(ValueError, match=r"self_training_max_days must be 0 .* not -1"):
        unlabelled_rows_plan(daily, days, table, max_days=-1)
    with pytest.raises(ValueError, match=r"unlabelled_row_budget must be 0 .* not -3"):
        unlabelled_rows_plan(daily, days, table, budget=-3)
    with pytest.raises(ValueError, match=r"2 feature table\(s\) for 1 day\(s\)"):
        unlabelled_rows_plan(daily * 2, days, table)


# --- stored beside the training set -----------------------------------------------------------------


def _unlabelled(n: int) -> pd.DataFrame:
    return pd.DataFrame({"asteroid_id": np.arange(100, 100 + n), "day": DAYS[0]})


def _looks(n: int) -> LookRows:
    frame = pd.DataFrame({"asteroid_id": np.arange(1, n + 1), "split": ["train"] * n, "day": DAYS[0]})
    return LookRows(frame, "observation")


def _stored(store, unlabelled, looks=None, reference_rows=1, now=None):
    table = pd.DataFrame({"asteroid_id": [1, 2], "split": ["train", "holdout"]})
    save_training_set(
        store,
        KEY,
        table,
        {"partitions": DAYS[:1]},
        ReferenceStatistics(reference_rows, {}),
        looks,
        now=now,
        unlabelled_rows=unlabelled,
    )
    return load_training_manifest(store, KEY)


def test_the_manifest_names_the_unlabelled_rows_and_they_load_back(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _unlabelled(5), _looks(3))
    entry = manifest["unlabelled_rows"]
    assert entry["key"].startswith(unlabelled_rows_prefix(KEY)) and entry["rows"] == 5
    pd.testing.assert_frame_equal(load_unlabelled_rows(store, manifest), _unlabelled(5))
    # The look rows are their own object.
    assert len(load_look_rows(store, manifest).rows) == 3
    assert manifest["look_rows"]["key"] != entry["key"]


def test_a_set_without_unlabelled_rows_loads_none(tmp_path):
    store = LocalBlobStore(tmp_path)
    assert _stored(store, None)["unlabelled_rows"] is None
    assert load_unlabelled_rows(store, load_training_manifest(store, KEY)) is None
    # A set written before they existed has no entry at all.
    assert load_unlabelled_rows(store, {"partitions": DAYS[:1]}) is None


def test_superseded_unlabelled_row_objects_go_once_past_the_grace_period(tmp_path):
    store = LocalBlobStore(tmp_path)
    first = _stored(store, _unlabelled(3))["unlabelled_rows"]["key"]
    written = store.modified_at(first)
    second = _stored(store, _unlabelled(4), now=written + LOOK_ROWS_GRACE_S - 1)["unlabelled_rows"]["key"]
    assert sorted(store.list_keys(unlabelled_rows_prefix(KEY))) == sorted([first, second])
    third = _stored(store, _unlabelled(6), now=written + LOOK_ROWS_GRACE_S + 5)["unlabelled_rows"]["key"]
    assert store.list_keys(unlabelled_rows_prefix(KEY)) == [third]
    # A set without them (a longer window) removes the last one too, once past the grace period.
    _stored(store, None, now=store.modified_at(third) + LOOK_ROWS_GRACE_S + 1)
    assert store.list_keys(unlabelled_rows_prefix(KEY)) == []


def test_missing_or_mismatched_unlabelled_rows_fail_naming_the_object_and_the_remedy(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _unlabelled(5))
    key = manifest["unlabelled_rows"]["key"]
    with pytest.raises(ValueError, match=r"holds 5 rows, the training set names 9: re-materialize"):
        load_unlabelled_rows(store, {"unlabelled_rows": {"key": key, "rows": 9}})
    store.delete(key)
    with pytest.raises(ValueError, match=rf"unlabelled rows at .*{key.split('/')[-1]}, which are gone"):
        load_unlabelled_rows(store, manifest)


@pytest.mark.fault(
    "kill",
    "writer killed at every write of a training set with look and unlabelled rows: the set finds its own",
)
@pytest.mark.parametrize("allowed", [0, 1, 2, 3])
def test_a_killed_write_never_leaves_a_set_naming_rows_it_does_not_have(tmp_path, allowed):
    store = LocalBlobStore(tmp_path)
    _stored(store, _unlabelled(4), _looks(3), reference_rows=3)
    with contextlib.suppress(KeyboardInterrupt):
        _stored(KilledAfterPuts(store, allowed), _unlabelled(9), _looks(8), reference_rows=8)
    manifest = load_training_manifest(store, KEY)
    # Whichever set is there (the old one, or the new one once all three writes happened), its rows are
    # its own.
    new = allowed >= 3
    assert len(load_unlabelled_rows(store, manifest)) == (9 if new else 4)
    assert len(load_look_rows(store, manifest).rows) == (8 if new else 3)
    assert len(read_parquet(store, KEY)) == 2
