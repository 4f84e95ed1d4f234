"""The wide & deep composition network: a linear path from the normalized inputs to the class logits (so
the network can represent the logistic-regression baseline), its int8 export, the classification-first
early-stopping criterion, and manifests written before the wide path (deep-only) still loading as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.ml.distributed import train_distributed
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.quantize import int8_forward, layers_of, parity, quantize
from astromined.ml.registry import ModelRegistry
from astromined.ml.train import TrainConfig, predict, train_model
from astromined.storage import LocalBlobStore

CPU = torch.device("cpu")
FEATURES = ("a", "b", "c", "d", "e", "f")
CLASSES = ("S", "C", "X", "M")
# The state_dict of every model registered before the wide path existed: a deep-only model must keep it.
DEEP_ONLY_KEYS = {
    "feature_mean",
    "feature_std",
    "body.0.weight",
    "body.0.bias",
    "body.3.weight",
    "body.3.bias",
    "class_head.weight",
    "class_head.bias",
    "metal_head.weight",
    "metal_head.bias",
}


def linear_problem(n: int, seed: int):
    """Classes drawn from a softmax of LINEAR logits (overlapping: the Bayes classifier is linear and
    imperfect), features on odd scales and offsets; metal richness a smooth function of the class."""
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(5).normal(0, 1.5, size=(len(FEATURES), len(CLASSES)))
    z = rng.normal(size=(n, len(FEATURES)))
    logits = z @ weights
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(len(CLASSES), p=p) for p in probabilities])
    x = z * np.linspace(0.01, 50.0, len(FEATURES)) + np.linspace(-3.0, 400.0, len(FEATURES))
    metal = np.clip(0.2 + 0.2 * y + rng.normal(0, 0.05, size=n), 0, 1)
    return x.astype(np.float32), y.astype(np.int64), metal.astype(np.float32)


def test_old_manifests_architecture_loads_as_deep_only():
    old = {"feature_names": list(FEATURES), "classes": list(CLASSES), "hidden": 16, "dropout": 0.1}
    config = ArchitectureConfig.from_dict(old)
    assert config.wide is False
    assert set(CompositionNet(config).state_dict()) == DEEP_ONLY_KEYS
    # New models are wide & deep, and say so in their manifest.
    new = ArchitectureConfig(feature_names=FEATURES, classes=CLASSES)
    assert new.wide is True and new.to_dict()["wide"] is True
    assert ArchitectureConfig.from_dict(new.to_dict()) == new
    assert set(CompositionNet(new).state_dict()) == DEEP_ONLY_KEYS | {"wide.weight"}


def test_a_registered_deep_only_model_without_the_field_loads_with_the_old_behaviour(tmp_path):
    store = LocalBlobStore(tmp_path / "lake")
    registry = ModelRegistry(store)
    torch.manual_seed(0)
    model = CompositionNet(ArchitectureConfig(FEATURES, CLASSES, hidden=8, wide=False)).eval()
    version = registry.register(model, {"macro_f1": 0.5}, {"partitions": []})
    key = f"models/versions/{version}/manifest.json"
    manifest = json.loads(store.get_bytes(key))
    del manifest["architecture"]["wide"]  # as written before the wide path existed
    store.put_bytes(key, json.dumps(manifest).encode())
    loaded, _ = registry.load(version)
    assert loaded.wide is None
    x = torch.randn(20, len(FEATURES))
    with torch.no_grad():
        for expected, actual in zip(model(x), loaded(x), strict=True):
            assert torch.equal(expected, actual)


def test_the_wide_path_makes_a_linear_problem_as_good_as_logistic_regression():
    xt, yt, mt = linear_problem(1500, 1)
    xv, yv, mv = linear_problem(400, 2)
    xh, yh, _ = linear_problem(3000, 3)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xt, yt)
    baseline_accuracy = np.mean(baseline.predict(xh) == yh)
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=16)
    result = train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, TrainConfig(seed=3))
    accuracy = np.mean(predict(result.model, xh)[0].argmax(axis=1) == yh)
    assert 0.55 < baseline_accuracy < 0.95  # a real, overlapping linear problem
    # Within 1% of the linear model on its own ground (3000 holdout rows: ~30 asteroids).
    assert accuracy >= baseline_accuracy - 0.01, (accuracy, baseline_accuracy)


@pytest.mark.parametrize("wide", [True, False])
def test_int8_forward_is_exact_for_weights_on_the_int8_grid(wide):
    torch.manual_seed(0)
    model = CompositionNet(ArchitectureConfig(FEATURES, CLASSES, hidden=8, dropout=0.0, wide=wide)).eval()
    model.set_normalization(torch.linspace(-1, 5, len(FEATURES)), torch.linspace(0.5, 3, len(FEATURES)))
    with torch.no_grad():
        for layer in layers_of(model.state_dict()):
            weight = dict(model.named_parameters())[f"{layer}.weight"]
            weight.copy_(torch.randint(-127, 128, weight.shape).float() / 128.0)
            weight[:, 0] = 127 / 128.0  # per-channel max: scale exactly 1/128
    arrays = quantize(model)
    assert ("wide.weight_q" in arrays) is wide
    assert "wide.bias" not in arrays  # the class head carries the bias
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(200, len(FEATURES))).astype(np.float32)
    q_probabilities, q_metal = int8_forward(arrays, x)
    probabilities, metal = predict(model, x)
    np.testing.assert_allclose(q_probabilities, probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_metal, metal, rtol=1e-5, atol=1e-6)


def test_int8_forward_without_the_wide_layer_would_disagree():
    """The wide layer carries real weight in a trained model: dropping it from the int8 forward changes
    the predictions, so the parity checks do exercise it."""
    xt, yt, mt = linear_problem(1000, 4)
    xv, yv, mv = linear_problem(300, 5)
    result = train_model(ArchitectureConfig(FEATURES, CLASSES, hidden=16), xt, yt, mt, xv, yv, mv, CPU)
    arrays = quantize(result.model)
    assert parity(result.model, arrays, xv)["top1_agreement"] >= 0.99
    deep_only = {k: v for k, v in arrays.items() if not k.startswith("wide.")}
    dropped = int8_forward(deep_only, xv)[0].argmax(axis=1)
    assert np.mean(dropped == int8_forward(arrays, xv)[0].argmax(axis=1)) < 0.95


def test_early_stopping_selects_on_validation_classification_loss_by_default():
    xt, yt, mt = linear_problem(600, 6)
    xv, yv, mv = linear_problem(200, 7)
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=8)
    config = TrainConfig(max_epochs=12, patience=12, batch_size=64, seed=1)
    history = train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, config).history
    for record in history:
        assert record["validation_loss"] == record["validation_cross_entropy"]
    weighted = TrainConfig(max_epochs=12, patience=12, batch_size=64, seed=1, selection_metal_weight=2.0)
    for record in train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, weighted).history:
        expected = record["validation_cross_entropy"] + 2.0 * record["validation_metal_mse"]
        assert record["validation_loss"] == pytest.approx(expected, rel=1e-12)


# Starts two Gloo worker processes (~10 s idle, far more on a loaded machine); the other DDP tests are in
# tests/integration/ml/test_distributed.py.
@pytest.mark.slow
def test_distributed_training_trains_the_same_wide_architecture_and_criterion():
    xt, yt, mt = linear_problem(400, 8)
    xv, yv, mv = linear_problem(120, 9)
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=8)
    config = TrainConfig(max_epochs=6, patience=6, batch_size=64, seed=2)
    result = train_distributed(architecture, xt, yt, mt, xv, yv, mv, workers=2, config=config)
    assert "wide.weight" in result.model.state_dict()
    assert result.model.config == architecture
    for record in result.history:
        assert record["validation_loss"] == pytest.approx(record["validation_cross_entropy"], rel=1e-12)


def test_temperature_scaling_keeps_the_classes_and_lowers_validation_cross_entropy():
    xt, yt, mt = linear_problem(800, 10)
    xv, yv, mv = linear_problem(300, 11)
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=8)
    config = TrainConfig(max_epochs=30, batch_size=64, seed=4, label_smoothing=0.2, temperature_scaling=False)
    raw = train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, config).model
    scaled = train_model(
        architecture,
        xt,
        yt,
        mt,
        xv,
        yv,
        mv,
        CPU,
        TrainConfig(**{**config.__dict__, "temperature_scaling": True}),
    )
    raw_p, raw_metal = predict(raw, xv)
    scaled_p, scaled_metal = predict(scaled.model, xv)
    assert scaled.temperature != 1.0
    np.testing.assert_array_equal(raw_p.argmax(axis=1), scaled_p.argmax(axis=1))
    np.testing.assert_array_equal(raw_metal, scaled_metal)

    def cross_entropy(p):
        return -np.mean(np.log(p[np.arange(len(yv)), yv]))

    assert cross_entropy(scaled_p) < cross_entropy(raw_p)
    # The int8 export carries the scaled weights: its probabilities are the calibrated ones.
    assert parity(scaled.model, quantize(scaled.model), xv)["max_probability_error"] < 0.05
