"""Seed ensembles merged into one CompositionNet: exactly the average of the members' logits, carried by the
registry and the int8 package as any other model, and what train_model returns for ensemble_members > 1."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.ml.model import ArchitectureConfig, CompositionNet, merge_ensemble
from astromined.ml.quantize import int8_forward, layers_of, parity, quantize
from astromined.ml.registry import ModelRegistry
from astromined.ml.train import TrainConfig, calibrate_temperature, member_seeds, predict, train_model
from astromined.storage import LocalBlobStore

CPU = torch.device("cpu")
FEATURES = ("a", "b", "c", "d", "e")
CLASSES = ("S", "C", "X", "M")
FAST = TrainConfig(max_epochs=15, patience=5, batch_size=64, learning_rate=1e-2, seed=3)


def problem(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(11).normal(0, 1.5, size=(len(CLASSES), len(FEATURES)))
    y = rng.integers(0, len(CLASSES), size=n)
    x = (centres[y] + rng.normal(0, 1.0, size=(n, len(FEATURES)))) * np.linspace(0.1, 30.0, len(FEATURES))
    metal = np.clip(0.2 + 0.15 * y + rng.normal(0, 0.05, size=n), 0, 1)
    return x.astype(np.float32), y.astype(np.int64), metal.astype(np.float32)


def members(count: int, wide: bool = True, hidden: int = 8) -> list[CompositionNet]:
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=hidden, wide=wide)
    mean, std = torch.linspace(-1.0, 5.0, len(FEATURES)), torch.linspace(0.5, 3.0, len(FEATURES))
    nets = []
    for seed in range(count):
        torch.manual_seed(seed)
        net = CompositionNet(architecture)
        net.set_normalization(mean, std)
        nets.append(net.eval())
    return nets


@pytest.mark.parametrize("wide", [True, False])
def test_merged_model_averages_the_members_class_and_metal_logits_exactly(wide):
    nets = members(3, wide=wide)
    merged = merge_ensemble(nets)
    x = torch.as_tensor(problem(50, 0)[0])
    with torch.no_grad():
        logits, metal = merged(x)
        member_logits = torch.stack([net(x)[0] for net in nets]).mean(dim=0)
        member_metal_logits = torch.stack([torch.logit(net(x)[1].double()) for net in nets]).mean(dim=0)
    torch.testing.assert_close(logits, member_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.logit(metal.double()), member_metal_logits, rtol=1e-4, atol=1e-4)
    assert merged.config == dataclasses.replace(nets[0].config, hidden=24)
    assert not merged.training


def test_merged_model_has_a_single_networks_layers_so_registry_and_int8_package_carry_it(tmp_path):
    nets = members(3)
    merged = merge_ensemble(nets)
    assert set(merged.state_dict()) == set(nets[0].state_dict())
    arrays = quantize(merged)
    assert layers_of(arrays) == layers_of(nets[0].state_dict())
    x = problem(200, 1)[0]
    assert parity(merged, arrays, x)["top1_agreement"] >= 0.99
    probabilities, _ = int8_forward(arrays, x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    registry = ModelRegistry(LocalBlobStore(tmp_path))
    version = registry.register(merged, metrics={}, lineage={})
    loaded, _ = registry.load(version)
    np.testing.assert_array_equal(predict(loaded, x)[0], predict(merged, x)[0])


def test_merge_refuses_members_that_are_not_one_model():
    with pytest.raises(ValueError, match="at least one member"):
        merge_ensemble([])
    nets = members(2)
    nets[1].set_normalization(torch.zeros(len(FEATURES)), torch.ones(len(FEATURES)))
    with pytest.raises(ValueError, match="normalization"):
        merge_ensemble(nets)
    with pytest.raises(ValueError, match="differ"):
        merge_ensemble([members(1, wide=True)[0], members(1, wide=False)[0]])


def test_train_model_with_ensemble_members_is_the_merge_of_its_members_trained_alone():
    """Also when members stop early at different epochs and leave the stack: here the middle member stops
    first, then the first, and the last trains on alone (each narrowing keeps the others' weights,
    optimizer moments and random streams where they were)."""
    xt, yt, mt = problem(300, 2)
    xv, yv, mv = problem(90, 3)
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=8)
    config = dataclasses.replace(FAST, max_epochs=60, patience=3)
    seen: list[dict[str, float]] = []
    result = train_model(
        architecture,
        xt,
        yt,
        mt,
        xv,
        yv,
        mv,
        CPU,
        dataclasses.replace(config, ensemble_members=3),
        on_epoch=seen.append,
    )
    alone = [
        train_model(
            architecture,
            xt,
            yt,
            mt,
            xv,
            yv,
            mv,
            CPU,
            dataclasses.replace(config, seed=seed, temperature_scaling=False),
        )
        for seed in member_seeds(config.seed, 3)
    ]
    expected = merge_ensemble([r.model for r in alone])
    calibrate_temperature(expected, xv, yv)
    # Trained stacked, each member follows its path alone: the same weights up to float rounding (a
    # batched matmul of 3 members may round differently from one of 1).
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert result.model.config.hidden == 24
    assert result.member_best_epochs == tuple(r.best_epoch for r in alone)
    assert result.member_epochs_run == tuple(r.epochs_run for r in alone)
    stops = result.member_epochs_run
    assert stops[1] < stops[0] < stops[2] < config.max_epochs, f"the stack must narrow twice: {stops}"
    assert result.best_epoch == max(result.member_best_epochs)
    assert result.epochs_run == max(r.epochs_run for r in alone)  # passes over the data, run together
    assert len(seen) == sum(r.epochs_run for r in alone)
    assert seen == result.history
    assert sorted({r["member"] for r in seen}) == [0.0, 1.0, 2.0]


def test_a_single_member_is_the_network_of_the_seed_itself():
    assert member_seeds(7, 1) == [7]
    assert len(set(member_seeds(7, 3)) | set(member_seeds(8, 3))) == 6
    with pytest.raises(ValueError, match="ensemble_members"):
        train_model(
            ArchitectureConfig(FEATURES, CLASSES, hidden=8),
            *problem(20, 0),
            *problem(10, 1),
            CPU,
            dataclasses.replace(FAST, ensemble_members=0),
        )
