"""The champion measured on the candidate's holdout (ml/champion.py) and the champion metrics recorded
after the gate (ml/promotion.py), over a real registry in a local blob store."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astromined.ml.champion import evaluate_champion
from astromined.ml.dataset import SplitArrays
from astromined.ml.evaluate import model_metrics
from astromined.ml.looks import asteroid_looks, predict_from_looks
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.promotion import CHAMPION_METRICS, champion_holdout_metrics, champion_metric_values
from astromined.ml.registry import CHAMPION_KEY, ModelRegistry
from astromined.ml.train import predict
from astromined.storage import LocalBlobStore
from astromined.taxonomy import COMPLEXES

ARCH = ArchitectureConfig(feature_names=("a", "b", "c"), classes=COMPLEXES, hidden=8, dropout=0.0)


def make_model(seed: int) -> CompositionNet:
    torch.manual_seed(seed)
    model = CompositionNet(ARCH)
    model.set_normalization(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.5, 2.5]))
    return model.eval()


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "lake")


@pytest.fixture
def registry(store) -> ModelRegistry:
    return ModelRegistry(store)


@pytest.fixture
def holdout() -> SplitArrays:
    rng = np.random.default_rng(0)
    return SplitArrays(
        x=rng.normal(size=(40, 3)).astype(np.float32),
        y_class=rng.integers(0, len(COMPLEXES), size=40),
        y_metal=rng.uniform(size=40).astype(np.float32),
    )


def champion_of(registry: ModelRegistry, seed: int) -> str:
    version = registry.register(make_model(seed), {"macro_f1": 0.5}, {"partitions": []})
    registry.promote(version, reason="test")
    return version


def test_no_champion_yet(registry, holdout):
    errors: list[str] = []
    assert evaluate_champion(registry, holdout, on_error=errors.append) is None
    assert errors == []


def test_the_champion_is_scored_on_the_holdout(registry, holdout):
    version = champion_of(registry, 1)
    probabilities, metal = predict(make_model(1), holdout.x)
    expected = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
    assert evaluate_champion(registry, holdout) == {"version": version, "metrics": expected}


def test_the_champion_is_scored_from_the_looks_with_its_own_looks_exponent(registry, holdout):
    """As the candidate is: the mean over each asteroid's looks, sharpened by the exponent the champion was
    registered with (not the candidate's)."""
    model = make_model(4)
    version = registry.register(model, {"macro_f1": 0.5}, {"partitions": []}, scoring={"looks_exponent": 1.3})
    registry.promote(version, reason="test")
    ids = np.arange(len(holdout.x))
    rng = np.random.default_rng(5)
    look_ids = np.concatenate([ids, ids[::3], ids[::5]])
    looks = asteroid_looks(ids, look_ids, rng.normal(size=(len(look_ids), 3)).astype(np.float32))

    probabilities, metal = predict_from_looks(lambda x: predict(model, x), looks, 1.3)
    expected = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
    assert evaluate_champion(registry, holdout, looks=looks) == {"version": version, "metrics": expected}
    plain, _ = predict_from_looks(lambda x: predict(model, x), looks)
    assert model_metrics(plain, metal, holdout.y_class, holdout.y_metal)["ece"] != expected["ece"]


def test_a_champion_whose_weights_fail_the_integrity_check_is_an_error_naming_it(registry, store, holdout):
    version = champion_of(registry, 2)
    weights = f"models/versions/{version}/model.pt"
    store.put_bytes(weights, store.get_bytes(weights)[:-10])
    errors: list[str] = []
    result = evaluate_champion(registry, holdout, on_error=errors.append)
    assert result["version"] == version and "metrics" not in result
    assert result["error"]
    assert errors == [f"champion {version} failed its integrity check: {result['error']}"]


def test_an_unreadable_champion_pointer_is_an_error_without_a_version(registry, store, holdout):
    champion_of(registry, 3)
    store.put_bytes(CHAMPION_KEY, b"{not json")
    errors: list[str] = []
    result = evaluate_champion(registry, holdout, on_error=errors.append)
    assert result == {"version": None, "error": errors[0]}
    assert "champion.json" in result["error"]


def test_champion_metric_values_are_nan_without_metrics():
    metrics = {"macro_f1": 0.8, "accuracy": 0.9, "m_type_recall": 0.7, "ece": 0.05, "recall_S": 0.6}
    assert champion_metric_values(metrics) == {
        "champion_macro_f1": 0.8,
        "champion_accuracy": 0.9,
        "champion_m_type_recall": 0.7,
        "champion_ece": 0.05,
    }
    empty = champion_metric_values(None)
    assert list(empty) == [f"champion_{m}" for m in CHAMPION_METRICS]
    assert all(math.isnan(v) for v in empty.values())


EVALUATION = {
    "candidate": {"version": "m-new", "metrics": {"macro_f1": 0.9}},
    "champion": {"version": "m-old", "metrics": {"macro_f1": 0.8}},
}


@pytest.mark.parametrize(
    ("evaluation", "champion_now", "expected"),
    [
        (EVALUATION, "m-new", {"macro_f1": 0.9}),  # promoted: the candidate's
        (EVALUATION, "m-old", {"macro_f1": 0.8}),  # kept: the champion's, as evaluated
        (EVALUATION, "m-other", None),  # changed after model_evaluation measured it
        ({**EVALUATION, "champion": None}, "m-new", {"macro_f1": 0.9}),  # the first promotion
    ],
)
def test_champion_holdout_metrics_are_the_champions_after_the_gate(evaluation, champion_now, expected):
    assert champion_holdout_metrics(evaluation, champion_now) == expected
