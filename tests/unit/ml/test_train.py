"""Training on tiny synthetic tensors: learning, determinism, early stopping, normalization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)
from torch import nn

from astromined.features.engineering import FEATURE_TABLE_COLUMNS, MODEL_FEATURES
from astromined.ml.dataset import split_arrays
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.train import TrainConfig, predict, train_model
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES

CPU = torch.device("cpu")
SMALL = ArchitectureConfig(feature_names=("a", "b", "c", "d"), classes=("X", "Y", "Z"), hidden=16)
FAST = TrainConfig(max_epochs=40, patience=10, batch_size=64, learning_rate=1e-2, seed=3)


def blobs(n: int, n_features: int, n_classes: int, seed: int, spread: float = 0.3):
    """Well-separated Gaussian blobs on a non-trivial scale/offset (so normalization matters)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    scale = np.linspace(0.5, 20.0, n_features)
    offset = np.linspace(-5.0, 100.0, n_features)
    x = (centres[y] + rng.normal(0, spread, size=(n, n_features))) * scale + offset
    metal = np.where(y == n_classes - 1, 0.8, 0.1) + rng.normal(0, 0.02, size=n)
    return x.astype(np.float32), y.astype(np.int64), np.clip(metal, 0, 1).astype(np.float32)


def train_small(config: TrainConfig = FAST, architecture: ArchitectureConfig = SMALL, seed: int = 0, **kw):
    n_features, n_classes = len(architecture.feature_names), len(architecture.classes)
    xt, yt, mt = blobs(240, n_features, n_classes, seed)
    xv, yv, mv = blobs(60, n_features, n_classes, seed + 1)
    result = train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, config, **kw)
    return result, (xt, yt, mt), (xv, yv, mv)


def test_learns_well_separated_classes():
    result, _, (xv, yv, mv) = train_small()
    probabilities, metal = predict(result.model, xv)
    accuracy = np.mean(probabilities.argmax(axis=1) == yv)
    assert accuracy >= 0.9  # chance is 1/3
    assert np.mean(np.abs(metal - mv)) < 0.15
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_learns_at_the_real_feature_width_and_complexes():
    architecture = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES, hidden=32)
    xt, yt, mt = blobs(300, len(MODEL_FEATURES), 3, seed=5)
    xv, yv, mv = blobs(100, len(MODEL_FEATURES), 3, seed=6)
    # labels 0, 1, 2 → S, C, D; the other four complexes never appear
    result = train_model(architecture, xt, yt, mt, xv, yv, mv, CPU, FAST)
    probabilities, _ = predict(result.model, xv)
    assert probabilities.shape == (100, len(COMPLEXES))
    assert np.mean(probabilities.argmax(axis=1) == yv) >= 0.9


def test_training_is_deterministic_for_a_seed():
    first, _, _ = train_small()
    second, _, _ = train_small()
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert first.best_epoch == second.best_epoch
    assert [h["validation_loss"] for h in first.history] == [h["validation_loss"] for h in second.history]


def test_a_different_seed_gives_different_weights():
    first, _, _ = train_small(TrainConfig(max_epochs=3, seed=1))
    second, _, _ = train_small(TrainConfig(max_epochs=3, seed=2))
    assert not torch.equal(
        first.model.state_dict()["body.0.weight"], second.model.state_dict()["body.0.weight"]
    )


def test_normalization_buffers_equal_training_mean_and_std():
    result, (xt, _, _), _ = train_small(TrainConfig(max_epochs=2))
    model = result.model
    np.testing.assert_allclose(model.feature_mean.numpy(), xt.astype(np.float64).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        model.feature_std.numpy(), xt.astype(np.float64).std(axis=0, ddof=1), rtol=1e-4
    )
    # ...and they survive in the state_dict, so a saved model is self-contained
    state = model.state_dict()
    assert torch.equal(state["feature_mean"], model.feature_mean)
    assert torch.equal(state["feature_std"], model.feature_std)


def test_constant_feature_gets_a_clamped_std_not_a_division_by_zero():
    xt, yt, mt = blobs(120, 4, 3, seed=0)
    xt[:, 2] = 7.0
    xv, yv, mv = blobs(30, 4, 3, seed=1)
    result = train_model(SMALL, xt, yt, mt, xv, yv, mv, CPU, TrainConfig(max_epochs=3))
    assert result.model.feature_std[2].item() == pytest.approx(1e-6)
    assert result.model.feature_mean[2].item() == pytest.approx(7.0)
    probabilities, metal = predict(result.model, xv)
    assert np.isfinite(probabilities).all()
    assert np.isfinite(metal).all()


def test_single_training_row_gives_finite_normalization():
    """One row has no sample std (NaN); it must not poison the buffers and make training 'diverge'."""
    x, y, m = blobs(5, 4, 3, seed=0)
    result = train_model(SMALL, x[:1], y[:1], m[:1], x[1:], y[1:], m[1:], CPU, TrainConfig(max_epochs=3))
    assert torch.isfinite(result.model.feature_std).all()
    np.testing.assert_allclose(result.model.feature_mean.numpy(), x[0], rtol=1e-6)
    assert np.isfinite(result.best_validation_loss)


def test_early_stopping_on_a_flat_validation_loss():
    # learning rate 0: the weights (hence the validation loss) never change after epoch 0
    config = TrainConfig(max_epochs=50, patience=4, learning_rate=0.0, seed=0)
    result, _, _ = train_small(config)
    assert result.best_epoch == 0
    assert result.epochs_run == config.patience + 1
    assert len(result.history) == result.epochs_run < config.max_epochs


def test_early_stopping_when_validation_loss_stops_improving():
    # Random labels: nothing generalizes, the validation loss bottoms out early and then rises.
    rng = np.random.default_rng(0)
    xt, xv = rng.normal(size=(200, 4)).astype(np.float32), rng.normal(size=(60, 4)).astype(np.float32)
    yt, yv = rng.integers(0, 3, 200), rng.integers(0, 3, 60)
    mt, mv = rng.uniform(size=200).astype(np.float32), rng.uniform(size=60).astype(np.float32)
    config = TrainConfig(max_epochs=60, patience=5, batch_size=32, learning_rate=2e-2, seed=0)
    result = train_model(SMALL, xt, yt, mt, xv, yv, mv, CPU, config)
    assert result.epochs_run < config.max_epochs
    assert result.epochs_run == result.best_epoch + config.patience + 1
    losses = [h["validation_loss"] for h in result.history]
    assert min(losses) == pytest.approx(result.best_validation_loss)
    assert int(np.argmin(losses)) == result.best_epoch


def test_returned_model_is_the_best_epoch_not_the_last():
    rng = np.random.default_rng(0)
    xt, xv = rng.normal(size=(200, 4)).astype(np.float32), rng.normal(size=(60, 4)).astype(np.float32)
    yt, yv = rng.integers(0, 3, 200), rng.integers(0, 3, 60)
    mt, mv = rng.uniform(size=200).astype(np.float32), rng.uniform(size=60).astype(np.float32)
    # No temperature folded in afterwards: the returned weights are exactly the best epoch's.
    config = TrainConfig(
        max_epochs=60, patience=5, batch_size=32, learning_rate=2e-2, seed=0, temperature_scaling=False
    )
    result = train_model(SMALL, xt, yt, mt, xv, yv, mv, CPU, config)
    assert result.best_epoch < result.epochs_run - 1
    with torch.no_grad():
        logits, metal = result.model(torch.as_tensor(xv))
        # The early-stopping criterion: validation cross-entropy + selection_metal_weight x metal MSE.
        loss = nn.functional.cross_entropy(logits, torch.as_tensor(yv)) + config.selection_metal_weight * (
            nn.functional.mse_loss(metal, torch.as_tensor(mv))
        )
    assert float(loss) == pytest.approx(result.best_validation_loss, rel=1e-5)
    assert not result.model.training


def test_on_epoch_callback_sees_every_epoch():
    seen: list[dict[str, float]] = []
    result, _, _ = train_small(TrainConfig(max_epochs=5, patience=100), on_epoch=seen.append)
    assert seen == result.history
    assert [r["epoch"] for r in seen] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert result.epochs_run == 5
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["validation_loss"]) for r in seen)


@pytest.mark.parametrize(("n_train", "n_val"), [(0, 10), (10, 0), (0, 0)])
def test_empty_splits_raise(n_train, n_val):
    x, y, m = blobs(10, 4, 3, seed=0)
    with pytest.raises(ValueError, match="empty split"):
        train_model(SMALL, x[:n_train], y[:n_train], m[:n_train], x[:n_val], y[:n_val], m[:n_val], CPU, FAST)


def test_predict_outputs_probabilities_and_metal_in_range():
    torch.manual_seed(0)
    model = CompositionNet(SMALL)
    x = np.random.default_rng(0).normal(size=(17, 4)).astype(np.float32)
    probabilities, metal = predict(model, x)
    assert probabilities.shape == (17, 3)
    assert metal.shape == (17,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert ((metal >= 0) & (metal <= 1)).all()
    assert not model.training


def test_model_forward_applies_normalization():
    torch.manual_seed(0)
    model = CompositionNet(SMALL).eval()
    x = torch.randn(5, 4)
    mean, std = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([2.0, 0.5, 4.0, 1.0])
    reference = model(x)[0]
    model.set_normalization(mean, std)
    shifted = model(x * std + mean)[0]
    torch.testing.assert_close(shifted, reference, rtol=1e-5, atol=1e-5)


def test_architecture_config_round_trip():
    config = ArchitectureConfig(feature_names=("x", "y"), classes=("S", "M"), hidden=8, dropout=0.2)
    assert ArchitectureConfig.from_dict(config.to_dict()) == config


# --- dataset.split_arrays -----------------------------------------------------------------------


def training_table(complexes: list[str], splits: list[str]) -> pd.DataFrame:
    rows = []
    for i, (name, split) in enumerate(zip(complexes, splits, strict=True)):
        row = {c: 1.0 for c in FEATURE_TABLE_COLUMNS}
        row.update(asteroid_id=i + 1, radar_albedo=np.nan, albedo=0.2, rotation_period_h=5.0)
        row.update(complex=name, metal_richness=0.1 * i, split=split)
        rows.append(row)
    return pd.DataFrame(rows)


def test_split_arrays_selects_rows_and_maps_labels():
    table = training_table(["S", "M", "C", "V"], ["train", "train", "validation", "train"])
    train = split_arrays(table, "train")
    assert len(train) == 3
    assert train.x.shape == (3, len(MODEL_FEATURES))
    assert train.y_class.tolist() == [COMPLEX_INDEX["S"], COMPLEX_INDEX["M"], COMPLEX_INDEX["V"]]
    np.testing.assert_allclose(train.y_metal, [0.0, 0.1, 0.3], rtol=1e-6)
    assert train.y_metal.dtype == np.float32
    assert len(split_arrays(table, "holdout")) == 0


def test_split_arrays_rejects_unknown_complex():
    table = training_table(["S", "Q"], ["train", "train"])
    with pytest.raises(ValueError, match="Q"):
        split_arrays(table, "train")
