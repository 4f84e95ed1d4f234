"""Look rows: one train row per look at a train asteroid (per observation, or per day), stored beside the
training set for candidate_model; the holdout's and validation's looks likewise, for model_evaluation and
the looks' calibration exponent."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.feature_windows import DAYS, catalog, window
from support.killed_writer import KilledAfterPuts

from astromined import fleet, lake_layout
from astromined.calibration import FleetCalibration
from astromined.features.engineering import FEATURE_TABLE_COLUMNS, RAW_REFLECTANCE, features_per_look
from astromined.features.reference_stats import ReferenceStatistics
from astromined.features.training_set import (
    COMBINED_DAY,
    LOOK_ROWS_GRACE_S,
    LookRows,
    build_training_set,
    holdout_looks_prefix,
    load_holdout_looks,
    load_look_rows,
    load_training_manifest,
    load_validation_looks,
    look_rows_plan,
    look_rows_prefix,
    observation_looks,
    resolve_look_unit,
    save_training_set,
    split_of,
    train_look_rows,
    validation_looks_prefix,
)
from astromined.storage import LocalBlobStore, read_parquet, write_parquet

KEY = "training/set.parquet"


def train_ids(table: pd.DataFrame) -> set[int]:
    return set(table.loc[table["split"] == "train", "asteroid_id"])


_ids = st.lists(st.integers(min_value=1, max_value=60), unique=True, max_size=25)


# --- one row per asteroid and day ("day") ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(daily_ids=st.lists(_ids, min_size=2, max_size=4), labelled=st.sets(st.integers(1, 60)))
def test_day_rows_are_every_days_own_row_of_every_train_asteroid(daily_ids, labelled):
    days, daily, table = window([ids or [61] for ids in daily_ids], labelled)
    assert look_rows_plan(daily, days, table, "day", budget=10**6) is None
    looks, why = train_look_rows(daily, days, table, "day")

    rows, train = looks.rows, table.loc[table["split"] == "train"].set_index("asteroid_id")
    expected = [
        (day, asteroid)
        for day, frame in zip(days, daily, strict=True)
        for asteroid in frame["asteroid_id"]
        if asteroid in train.index
    ]
    assert (looks.unit, looks.kind) == ("day", "per asteroid and day")
    assert list(zip(rows["day"], rows["asteroid_id"], strict=True)) == expected
    # The holdout and validation asteroids' looks likewise: every day's own row of each (model_evaluation
    # scores the holdout's, candidate_model fits the looks' calibration exponent on the validation's).
    counted = {}
    for split, frame_of_split in (("holdout", looks.holdout), ("validation", looks.validation)):
        asteroids = set(table.loc[table["split"] == split, "asteroid_id"])
        seen = [
            (day, asteroid)
            for day, frame in zip(days, daily, strict=True)
            for asteroid in frame["asteroid_id"]
            if asteroid in asteroids
        ]
        assert list(zip(frame_of_split["day"], frame_of_split["asteroid_id"], strict=True)) == seen
        assert (frame_of_split["split"] == split).all()
        counted[split] = len(seen)
    assert why == (
        f"{len(expected)} train rows, one per day, over {len(days)} day(s); {counted['holdout']} holdout "
        f"looks; {counted['validation']} validation looks"
    )
    assert set(rows.columns) == set(table.columns) | {"day"}
    assert (rows["split"] == "train").all()
    for day, frame in zip(days, daily, strict=True):
        mine = rows.loc[rows["day"] == day].set_index("asteroid_id")
        source = frame.set_index("asteroid_id").loc[mine.index]
        # That day's own measurement, not the window's combined one.
        pd.testing.assert_frame_equal(mine[source.columns], source, check_names=False)
        assert mine["complex"].tolist() == train.loc[mine.index, "complex"].tolist()
        assert mine["metal_richness"].tolist() == train.loc[mine.index, "metal_richness"].tolist()


@pytest.mark.parametrize("days", [1, 2, 3, 4, 7, 30])
def test_auto_means_observation_rows_on_windows_of_up_to_three_days_and_day_rows_on_longer_ones(days):
    assert resolve_look_unit("auto", days) == ("observation" if days <= 3 else "day")
    assert resolve_look_unit("observation", days) == "observation"
    assert resolve_look_unit("day", days) == "day"


def test_a_one_day_window_has_no_day_rows_but_has_observation_rows():
    days, daily, table = window([[1, 2, 3, 4, 5]], {1, 2, 3, 4, 5}, looks=2)
    assert look_rows_plan(daily, days, table, "day").startswith("one-day window")
    assert look_rows_plan(daily, days, table, "observation") is None


# --- one row per observation ("observation") --------------------------------------------------------


def look_frame(looks: list[tuple[int, int]]) -> pd.DataFrame:
    """Per-look feature rows in the given order; (asteroid, look number) is readable from the values."""
    frame = pd.DataFrame({c: np.zeros(len(looks)) for c in FEATURE_TABLE_COLUMNS})
    frame["asteroid_id"] = np.array([a for a, _ in looks], dtype=np.int64)
    for column in ("sector", "n_observations", "n_satellites"):
        frame[column] = np.ones(len(looks), dtype=np.int64)
    frame["albedo"] = np.array([0.1 + a * 1e-3 + k * 1e-6 for a, k in looks])
    frame["radar_albedo"] = np.nan
    return frame


@settings(max_examples=60, deadline=None)
@given(
    per_day=st.lists(st.lists(st.integers(min_value=1, max_value=40), max_size=30), min_size=1, max_size=3),
    labelled=st.sets(st.integers(1, 40)),
)
def test_observation_rows_are_every_look_of_every_train_asteroid_by_day_then_id(per_day, labelled):
    """Each look once, oldest day first, by id within a day and in arrival order within an asteroid."""
    days = DAYS[: len(per_day)]
    arrivals = [[(a, k) for k, a in enumerate(ids)] for ids in per_day]
    looks = [look_frame(day_looks) for day_looks in arrivals]
    every = sorted({a for ids in per_day for a in ids} | {41})
    table = build_training_set(look_frame([(a, 0) for a in every]), catalog(labelled))

    rows, _ = train_look_rows(looks, days, table, "observation")

    train = train_ids(table)
    expected = [
        (day, a, k)
        for day, day_looks in zip(days, arrivals, strict=True)
        for a, k in sorted(day_looks, key=lambda look: look[0])  # stable: arrival order kept
        if a in train
    ]
    frame = rows.rows
    got = [
        (day, a, round((albedo - 0.1 - a * 1e-3) * 1e6))
        for day, a, albedo in zip(frame["day"], frame["asteroid_id"], frame["albedo"], strict=True)
    ]
    assert got == expected
    assert rows.kind == "per look"
    assert (frame["split"] == "train").all()
    labels = table.set_index("asteroid_id")
    assert frame["complex"].tolist() == labels.loc[frame["asteroid_id"], "complex"].tolist()


@settings(max_examples=60, deadline=None)
@given(
    per_day=st.lists(st.lists(st.integers(min_value=1, max_value=40), max_size=30), min_size=1, max_size=3),
    labelled=st.sets(st.integers(1, 40)),
)
def test_the_holdout_and_validation_asteroids_looks_are_kept_beside_the_train_rows_the_same_way(
    per_day, labelled
):
    """model_evaluation scores the networks on the holdout's (ml/looks.py), candidate_model fits the looks'
    calibration exponent on the validation's: every look of every such asteroid, oldest day first, by id
    within a day; an asteroid without a look has its combined row instead."""
    days = DAYS[: len(per_day)]
    arrivals = [[(a, k) for k, a in enumerate(ids)] for ids in per_day]
    looks = [look_frame(day_looks) for day_looks in arrivals]
    every = sorted({a for ids in per_day for a in ids} | set(labelled) | {41})
    table = build_training_set(look_frame([(a, 0) for a in every]), catalog(labelled))

    rows, note = train_look_rows(looks, days, table, "observation")

    for split, frame in (("holdout", rows.holdout), ("validation", rows.validation)):
        asteroids = set(table.loc[table["split"] == split, "asteroid_id"])
        seen = [
            (day, a, k)
            for day, day_looks in zip(days, arrivals, strict=True)
            for a, k in sorted(day_looks, key=lambda look: look[0])
            if a in asteroids
        ]
        lookless = sorted(asteroids - {a for _, a, _ in seen})
        assert list(zip(frame["day"], frame["asteroid_id"], strict=True)) == [(d, a) for d, a, _ in seen] + [
            (COMBINED_DAY, a) for a in lookless
        ]
        assert (frame["split"] == split).all()
        assert set(frame["asteroid_id"]) == asteroids, f"every {split} asteroid has at least one row"
        assert f"; {len(frame)} {split} looks" in note
    # The train rows are what they were.
    assert set(rows.rows["asteroid_id"]) <= train_ids(table)


def test_a_look_without_finite_inputs_is_left_out_and_a_lookless_asteroid_trains_on_its_combined_row():
    ids = [i for i in range(1, 400) if split_of(np.array([i]))[0] == "train"][:3]
    looks = look_frame([(ids[0], 0), (ids[0], 1), (ids[1], 0), (ids[2], 0)])
    looks.loc[[1, 3], "rotation_period_h"] = np.nan  # ids[0]'s second look and ids[2]'s only look
    combined = look_frame([(ids[0], 0), (ids[1], 0), (ids[2], 0)])
    table = build_training_set(combined, catalog(ids))

    rows, note = train_look_rows([looks], DAYS[:1], table, "observation")

    assert list(zip(rows.rows["asteroid_id"], rows.rows["day"], strict=True)) == [
        (ids[0], DAYS[0]),
        (ids[1], DAYS[0]),
        (ids[2], COMBINED_DAY),
    ]
    assert note == (
        "3 train rows, one per observation, over 1 day(s); 2 look(s) without finite model inputs left out, "
        "1 asteroid(s) with no other look train on their combined row; 0 holdout looks; 0 validation looks"
    )


def test_no_validation_or_holdout_asteroid_gets_a_look_row():
    ids = list(range(1, 400))
    days, daily, table = window([ids, ids[::2]], set(ids))
    rows, _ = train_look_rows(daily, days, table, "day")
    assert set(split_of(rows.rows["asteroid_id"].to_numpy())) == {"train"}
    assert set(rows.rows["asteroid_id"]) == train_ids(table)


def test_the_budget_is_inclusive_and_counts_looks_not_asteroids():
    ids = list(range(1, 200))
    days, daily, table = window([ids, ids, ids], set(ids), looks=2)
    n = len(train_ids(table))
    # Per observation: 2 looks a day, 3 days; per day: 3 rows.
    assert look_rows_plan(daily, days, table, "observation", budget=6 * n) is None
    over = look_rows_plan(daily, days, table, "observation", budget=6 * n - 1)
    assert f"{6 * n} train looks (observation) exceed the budget of {6 * n - 1}" in over
    assert "look_row_budget" in over
    assert look_rows_plan(daily, days, table, "day", budget=3 * n) is None
    assert look_rows_plan(daily, days, table, "day", budget=3 * n - 1) is not None
    assert look_rows_plan(daily, days, table, "observation", budget=0) is not None


@pytest.mark.fault(
    "bad-config", "a negative look-row budget or an unknown look unit fails naming the setting"
)
def test_a_negative_budget_or_an_unknown_unit_is_refused_by_name():
    days, daily, table = window([[1, 2], [2, 3]], {1, 2, 3})
    with pytest.raises(ValueError, match=r"look_row_budget must be 0 \(off\) or more, not -1"):
        look_rows_plan(daily, days, table, "day", budget=-1)
    with pytest.raises(
        ValueError, match=r"look_unit must be one of \['auto', 'observation', 'day'\], not 'week'"
    ):
        look_rows_plan(daily, days, table, "week")
    with pytest.raises(ValueError, match=r"the look rows' unit is 'observation' or 'day', not 'auto'"):
        train_look_rows(daily, days, table, "auto")


def test_frames_and_days_must_pair_up():
    _, daily, table = window([[1, 2], [2, 3]], {1, 2, 3})
    with pytest.raises(ValueError, match=r"2 feature table\(s\) for 1 day\(s\)"):
        look_rows_plan(daily, DAYS[:1], table)
    with pytest.raises(ValueError, match=r"2 look table\(s\) for 1 day\(s\)"):
        train_look_rows(daily, DAYS[:1], table, "day")


# --- read from the raw partitions ------------------------------------------------------------------


def raw_day(ids: list[int]) -> pd.DataFrame:
    """Raw observations (the columns features read), two satellites' looks at each id."""
    spectrum = {c: 1.0 + 0.01 * i for i, c in enumerate(RAW_REFLECTANCE)}
    rows = [
        {
            "asteroid_id": a,
            "satellite_id": s,
            **spectrum,
            "thermal_flux": 1e-9 * a,
            "apparent_magnitude": 15.0,
            "phase_angle_deg": 10.0,
            "radar_albedo": np.nan,
            "rotation_period_h": 5.0 + s,
            "lightcurve_amplitude_mag": 0.2,
        }
        for a in ids
        for s in (1, 2)
    ]
    return pd.DataFrame(rows)


IDEAL = FleetCalibration.identity(fleet.SATELLITE_IDS)


def test_observation_looks_are_the_train_asteroids_looks_of_each_raw_partition(tmp_path):
    store = LocalBlobStore(tmp_path)
    for day, ids in zip(DAYS[:2], ([1, 2, 3], [2, 3, 4]), strict=True):
        write_parquet(store, lake_layout.raw_observations(day), raw_day(ids))
    versions = dict.fromkeys(DAYS[:2], str(IDEAL.version))

    looks, why = observation_looks(store, DAYS[:2], versions, np.array([2, 4]), lambda day: IDEAL)

    assert why is None
    assert [frame["asteroid_id"].tolist() for frame in looks] == [[2, 2], [2, 2, 4, 4]]
    expected = features_per_look(raw_day([2]), IDEAL)
    pd.testing.assert_frame_equal(looks[0], expected)


def test_a_changed_calibration_or_a_missing_raw_partition_means_no_observation_looks(tmp_path):
    store = LocalBlobStore(tmp_path)
    write_parquet(store, lake_layout.raw_observations(DAYS[0]), raw_day([1]))
    stale = {DAYS[0]: "0-older"}
    looks, why = observation_looks(store, DAYS[:1], stale, np.array([1]), lambda day: IDEAL)
    assert looks is None
    assert f"asteroid_features[{DAYS[0]}] was computed with calibration 0-older" in why
    assert f"re-materialize asteroid_features[{DAYS[0]}]" in why

    versions = dict.fromkeys(DAYS[:2], str(IDEAL.version))
    looks, why = observation_looks(store, DAYS[:2], versions, np.array([1]), lambda day: IDEAL)
    assert looks is None
    assert why.startswith(f"raw_telemetry[{DAYS[1]}] cannot be read")


# --- stored beside the training set -----------------------------------------------------------


def _stored(store, look_rows, reference_rows=1, now=None):
    table = pd.DataFrame({"asteroid_id": [1, 2], "split": ["train", "holdout"]})
    save_training_set(
        store,
        KEY,
        table,
        {"partitions": DAYS[:2]},
        ReferenceStatistics(reference_rows, {}),
        look_rows,
        now=now,
    )
    return load_training_manifest(store, KEY)


def _rows(n: int, unit: str = "observation", holdout: int | None = None, validation: int | None = None):
    """LookRows of ``n`` train rows, with ``holdout`` and ``validation`` looks (None: none stored)."""
    frame = pd.DataFrame({"asteroid_id": np.arange(1, n + 1), "split": ["train"] * n, "day": DAYS[0]})

    def looks(count: int | None, split: str) -> pd.DataFrame | None:
        if count is None:
            return None
        return pd.DataFrame({"asteroid_id": np.full(count, 2), "split": split, "day": DAYS[0]})

    return LookRows(frame, unit, looks(holdout, "holdout"), looks(validation, "validation"))


# Each split's looks: (its manifest entry, where its objects live, its loader).
SCORED_LOOKS = {
    "holdout": ("holdout_looks", holdout_looks_prefix(KEY), load_holdout_looks),
    "validation": ("validation_looks", validation_looks_prefix(KEY), load_validation_looks),
}


@pytest.mark.parametrize("split", list(SCORED_LOOKS))
def test_the_manifest_names_each_splits_looks_and_they_load_back(tmp_path, split):
    entry, prefix, load = SCORED_LOOKS[split]
    store = LocalBlobStore(tmp_path)
    looks = _rows(5, holdout=3, validation=4)
    manifest = _stored(store, looks)
    assert manifest[entry]["rows"] == {"holdout": 3, "validation": 4}[split]
    assert manifest[entry]["key"].startswith(prefix)
    pd.testing.assert_frame_equal(load(store, manifest), getattr(looks, split))
    # None without them: no look rows, look rows without that split's looks, or a set written before them.
    assert load(store, _stored(store, None)) is None
    assert load(store, _stored(store, _rows(5, "day"))) is None
    assert load(store, {"partitions": DAYS, "look_rows": None}) is None


@pytest.mark.parametrize("split", list(SCORED_LOOKS))
def test_superseded_look_objects_of_each_split_go_once_past_the_grace_period(tmp_path, split):
    entry, prefix, _ = SCORED_LOOKS[split]
    store = LocalBlobStore(tmp_path)
    first = _stored(store, _rows(3, holdout=2, validation=2))[entry]["key"]
    written = store.modified_at(first)
    second = _stored(store, _rows(3, holdout=4, validation=4), now=written + LOOK_ROWS_GRACE_S - 1)[entry][
        "key"
    ]
    assert sorted(store.list_keys(prefix)) == sorted([first, second])
    third = _stored(store, _rows(3, holdout=1, validation=1), now=written + LOOK_ROWS_GRACE_S + 5)[entry][
        "key"
    ]
    assert store.list_keys(prefix) == [third]
    _stored(store, _rows(3, "day"), now=store.modified_at(third) + LOOK_ROWS_GRACE_S + 1)
    assert store.list_keys(prefix) == []


@pytest.mark.parametrize("split", list(SCORED_LOOKS))
def test_missing_looks_of_a_split_fail_naming_the_object_and_the_remedy(tmp_path, split):
    entry, _, load = SCORED_LOOKS[split]
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _rows(5, holdout=3, validation=2))
    key = manifest[entry]["key"]
    store.delete(key)
    with pytest.raises(
        ValueError, match=rf"{split} looks at .*{key.split('/')[-1]}, which are gone .*re-materialize"
    ):
        load(store, manifest)


def test_the_manifest_names_the_look_rows_and_they_load_back(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _rows(5, "day"))
    assert (manifest["look_rows"]["rows"], manifest["look_rows"]["unit"]) == (5, "day")
    assert manifest["look_rows"]["key"].startswith(look_rows_prefix(KEY))
    loaded = load_look_rows(store, manifest)
    assert loaded.unit == "day"
    pd.testing.assert_frame_equal(loaded.rows, _rows(5).rows)


def test_a_set_without_look_rows_loads_none(tmp_path):
    store = LocalBlobStore(tmp_path)
    assert _stored(store, None)["look_rows"] is None
    assert load_look_rows(store, load_training_manifest(store, KEY)) is None
    # A training set written before look rows existed: no entry at all.
    assert load_look_rows(store, {"partitions": DAYS}) is None


def test_a_set_written_with_per_day_rows_loads_them_as_day_rows(tmp_path):
    store = LocalBlobStore(tmp_path)
    key = "training/training_set_per_day_train/old.parquet"
    write_parquet(store, key, _rows(4).rows)
    loaded = load_look_rows(store, {"partitions": DAYS, "per_day_train": {"key": key, "rows": 4}})
    assert (len(loaded.rows), loaded.unit, loaded.kind) == (4, "day", "per asteroid and day")
    assert load_look_rows(store, {"partitions": DAYS, "per_day_train": None}) is None


def test_the_previous_versions_per_day_objects_go_once_past_the_grace_period(tmp_path):
    store = LocalBlobStore(tmp_path)
    old = "training/set_per_day_train/old.parquet"
    write_parquet(store, old, _rows(4).rows)
    written = store.modified_at(old)
    # A reader that loaded the old manifest a moment ago still finds them.
    _stored(store, _rows(3), now=written + LOOK_ROWS_GRACE_S - 1)
    assert store.list_keys("training/set_per_day_train/") == [old]
    _stored(store, _rows(3), now=written + LOOK_ROWS_GRACE_S + 1)
    assert store.list_keys("training/set_per_day_train/") == []


def test_superseded_look_row_objects_go_once_past_the_grace_period(tmp_path):
    store = LocalBlobStore(tmp_path)
    first = _stored(store, _rows(3))["look_rows"]["key"]
    first_written = store.modified_at(first)
    # Within the grace period a reader that loaded the first manifest still finds its rows.
    second = _stored(store, _rows(4), now=first_written + LOOK_ROWS_GRACE_S - 1)["look_rows"]["key"]
    assert sorted(store.list_keys(look_rows_prefix(KEY))) == sorted([first, second])
    # Past it (both were written within a second), only the current one stays, also when the new set
    # has none.
    third = _stored(store, _rows(6), now=first_written + LOOK_ROWS_GRACE_S + 5)["look_rows"]["key"]
    assert store.list_keys(look_rows_prefix(KEY)) == [third]
    _stored(store, None, now=store.modified_at(third) + LOOK_ROWS_GRACE_S + 1)
    assert store.list_keys(look_rows_prefix(KEY)) == []


def test_missing_or_mismatched_look_rows_fail_naming_the_object_and_the_remedy(tmp_path):
    store = LocalBlobStore(tmp_path)
    manifest = _stored(store, _rows(5))
    key = manifest["look_rows"]["key"]
    with pytest.raises(ValueError, match=r"holds 5 rows, the training set names 7: re-materialize"):
        load_look_rows(store, {"look_rows": {"key": key, "rows": 7, "unit": "observation"}})
    store.delete(key)
    with pytest.raises(ValueError, match=rf"{key.split('/')[-1]}, which are gone .*re-materialize"):
        load_look_rows(store, manifest)


@pytest.mark.fault(
    "kill",
    "writer killed at every write of a training set with look rows, holdout and validation looks: the set "
    "finds its own",
)
@pytest.mark.parametrize("allowed", [0, 1, 2, 3, 4])
def test_a_killed_write_never_leaves_a_set_naming_rows_it_does_not_have(tmp_path, allowed):
    store = LocalBlobStore(tmp_path)
    _stored(store, _rows(3, holdout=1, validation=2), reference_rows=3)
    with contextlib.suppress(KeyboardInterrupt):
        _stored(KilledAfterPuts(store, allowed), _rows(8, holdout=5, validation=6), reference_rows=8)
    manifest = load_training_manifest(store, KEY)
    rows = load_look_rows(store, manifest)
    holdout, validation = load_holdout_looks(store, manifest), load_validation_looks(store, manifest)
    # Whichever set is there (the old one, or the new one if all four writes happened), its train rows,
    # holdout and validation looks are its own.
    new = allowed >= 4
    assert (len(rows.rows), len(holdout), len(validation)) == ((8, 5, 6) if new else (3, 1, 2))
    assert len(read_parquet(store, KEY)) == 2
