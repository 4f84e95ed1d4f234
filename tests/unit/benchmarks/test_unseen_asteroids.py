"""The model-quality benchmark's unseen-asteroids test set (benchmarks/unseen_asteroids.py): a case is
scored only on labelled asteroids it never trained on, on days other than its own, each item with its own
looks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.benchmark_modules import load_benchmark_module

from astromined.features.engineering import FEATURE_TABLE_COLUMNS, MODEL_FEATURES
from astromined.features.training_set import LookRows
from astromined.ml.dataset import SplitArrays

unseen = load_benchmark_module("unseen_asteroids")


def labelled(day_code: int, splits: dict[int, str], looks: dict[int, int]) -> object:
    """A LabelledDay whose inputs say what they are: column 0 = asteroid id, column 1 = the day's code;
    a combined row has column 2 = 0, a look column 2 = 1 + its number."""
    ids = np.array(list(splits), dtype=np.int64)
    x = np.zeros((len(ids), 3), dtype=np.float32)
    x[:, 0], x[:, 1] = ids, day_code
    rows = SplitArrays(x, ids % 7, np.zeros(len(ids), dtype=np.float32))
    look_ids = np.array([a for a, n in looks.items() for _ in range(n)], dtype=np.int64)
    look_x = np.zeros((len(look_ids), 3), dtype=np.float32)
    look_x[:, 0], look_x[:, 1] = look_ids, day_code
    look_x[:, 2] = 1 + np.concatenate([np.arange(n) for n in looks.values()])
    return unseen.LabelledDay(ids, np.array(list(splits.values())), rows, look_ids, look_x)


DAYS = {
    # The case's day: it trains on 1 (train) and 2 (validation); 3 is its holdout.
    "d0": labelled(0, {1: "train", 2: "validation", 3: "holdout"}, {1: 2, 2: 1, 3: 1}),
    # 1 and 2 again (trained on: out), 3 again (its holdout, new looks: in), 4 and 5 never seen by d0.
    "d1": labelled(1, {1: "train", 3: "holdout", 4: "train", 5: "validation"}, {1: 1, 3: 2, 4: 3, 5: 1}),
    "d2": labelled(2, {2: "validation", 6: "holdout", 4: "train"}, {2: 1, 6: 1, 4: 1}),
}


def test_the_case_is_scored_only_on_asteroids_it_did_not_train_on_and_not_on_its_own_day():
    items, looks, asteroids = unseen.unseen_items(DAYS, "d0")
    assert items.x[:, :2].tolist() == [[3, 1], [4, 1], [5, 1], [6, 2], [4, 2]]
    assert items.y_class.tolist() == [3, 4, 5, 6, 4]
    assert asteroids == 4
    # Every look is one of its own item's: the same asteroid, from the same day.
    assert (looks.x[:, :2] == items.x[looks.row, :2]).all()
    assert looks.looks_per_row().tolist() == [2, 3, 1, 1, 1]


def test_the_other_days_holdouts_alone_keep_only_holdout_split_asteroids():
    items, looks, asteroids = unseen.unseen_items(DAYS, "d0", ("holdout",))
    assert items.x[:, :2].tolist() == [[3, 1], [6, 2]]
    assert looks.looks_per_row().tolist() == [2, 1]
    assert asteroids == 2


def test_another_case_day_leaves_out_its_own_trained_asteroids():
    items, _, _ = unseen.unseen_items(DAYS, "d2")
    # d2 trained on 2 and 4: d0's 1 and 3, d1's 1, 3 and 5 remain.
    assert items.x[:, :2].tolist() == [[1, 0], [3, 0], [1, 1], [3, 1], [5, 1]]


def test_a_day_whose_looks_miss_an_asteroid_is_named():
    days = dict(DAYS, d1=labelled(1, {4: "train", 5: "train"}, {4: 1}))
    with pytest.raises(ValueError, match=r"the looks of benchmark day d1: 1 asteroid\(s\) without a look"):
        unseen.unseen_items(days, "d0")


def test_one_day_alone_has_no_unseen_asteroids():
    with pytest.raises(ValueError, match="no benchmark day besides d0"):
        unseen.unseen_items({"d0": DAYS["d0"]}, "d0")


def feature_rows(ids: list[int], split: str) -> pd.DataFrame:
    frame = pd.DataFrame({column: 1.0 for column in FEATURE_TABLE_COLUMNS}, index=range(len(ids)))
    frame["asteroid_id"] = ids
    frame["albedo"] = np.asarray(ids, dtype=np.float64) / 100.0  # log_albedo tells the rows apart
    return frame.assign(split=split, complex="S", metal_richness=0.1)


def test_a_training_set_gives_its_asteroids_with_their_stored_looks():
    table = pd.concat(
        [feature_rows([1, 2], "train"), feature_rows([3], "validation"), feature_rows([4], "holdout")]
    )
    rows = LookRows(pd.concat([feature_rows([1, 1, 2], "train")]), "observation")
    day = unseen.labelled_day(table, rows, feature_rows([3, 3], "validation"), feature_rows([4], "holdout"))
    assert day.ids.tolist() == [1, 2, 3, 4]
    assert day.splits.tolist() == ["train", "train", "validation", "holdout"]
    assert day.trained_ids().tolist() == [1, 2, 3]
    assert day.look_ids.tolist() == [1, 1, 2, 3, 3, 4]
    assert day.look_x.shape == (6, len(MODEL_FEATURES))
    albedo = MODEL_FEATURES.index("log_albedo")
    np.testing.assert_allclose(day.look_x[:, albedo], np.log(day.look_ids / 100.0), rtol=1e-6)


def test_without_stored_looks_each_asteroids_one_look_is_its_combined_row():
    table = pd.concat(
        [feature_rows([1], "train"), feature_rows([2], "validation"), feature_rows([3], "holdout")]
    )
    day = unseen.labelled_day(table, None, None, None)
    assert day.look_ids.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(day.look_x, day.rows.x)
