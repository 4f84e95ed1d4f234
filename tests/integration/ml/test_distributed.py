"""DDP training with two Gloo workers on CPU: learning, normalization, agreement, determinism, failures.

Integration, not unit: every test starts worker processes that rendezvous over loopback (5-20 s each)."""

from __future__ import annotations

import dataclasses
import multiprocessing

import numpy as np
import pytest
import torch
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.ml.distributed import DistributedTrainResult, shard_indices, train_distributed
from astromined.ml.model import ArchitectureConfig
from astromined.ml.train import TrainConfig, predict, train_model

CPU = torch.device("cpu")
SMALL = ArchitectureConfig(feature_names=("a", "b", "c", "d"), classes=("X", "Y", "Z"), hidden=16)
FAST = TrainConfig(max_epochs=25, patience=10, batch_size=64, learning_rate=1e-2, seed=3)


@pytest.fixture(autouse=True)
def no_worker_outlives_a_test():
    yield
    assert multiprocessing.active_children() == []


def blobs(n: int, n_features: int, n_classes: int, seed: int, spread: float = 0.3):
    """Well-separated Gaussian blobs on a non-trivial scale/offset (as in test_train.py)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    scale = np.linspace(0.5, 20.0, n_features)
    offset = np.linspace(-5.0, 100.0, n_features)
    x = (centres[y] + rng.normal(0, spread, size=(n, n_features))) * scale + offset
    metal = np.where(y == n_classes - 1, 0.8, 0.1) + rng.normal(0, 0.02, size=n)
    return x.astype(np.float32), y.astype(np.int64), np.clip(metal, 0, 1).astype(np.float32)


TRAIN = blobs(240, 4, 3, seed=0)
VALIDATION = blobs(60, 4, 3, seed=1)


def run(workers: int = 2, config: TrainConfig = FAST, train=TRAIN, **kw):
    return train_distributed(SMALL, *train, *VALIDATION, workers=workers, config=config, **kw)


@pytest.fixture(scope="module")
def two_workers():
    seen: list[dict[str, float]] = []
    result = run(on_epoch=seen.append)
    return result, seen


def test_two_workers_learn_well_separated_classes(two_workers):
    result, _ = two_workers
    assert isinstance(result, DistributedTrainResult)
    assert (result.workers, result.backend) == (2, "gloo")
    xv, yv, mv = VALIDATION
    probabilities, metal = predict(result.model, xv)
    assert np.mean(probabilities.argmax(axis=1) == yv) >= 0.9  # chance is 1/3
    assert np.mean(np.abs(metal - mv)) < 0.15
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert not result.model.training
    assert all(v.device.type == "cpu" for v in result.model.state_dict().values())


def test_normalization_is_the_full_training_sets(two_workers):
    result, _ = two_workers
    xt = TRAIN[0].astype(np.float64)
    np.testing.assert_allclose(result.model.feature_mean.numpy(), xt.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(result.model.feature_std.numpy(), xt.std(axis=0, ddof=1), rtol=1e-4)


def test_ranks_agree_on_epochs_and_weights(two_workers):
    result, _ = two_workers
    assert result.rank_epochs_run == (result.epochs_run, result.epochs_run)
    assert result.rank_best_epochs == (result.best_epoch, result.best_epoch)
    assert len(result.rank_weight_digests) == 2
    assert result.rank_weight_digests[0] == result.rank_weight_digests[1]  # replicas stayed identical
    assert len(result.history) == result.epochs_run


def test_on_epoch_is_called_in_the_caller_for_every_epoch(two_workers):
    result, seen = two_workers
    assert seen == result.history
    assert [r["epoch"] for r in seen] == [float(e) for e in range(result.epochs_run)]


def test_validation_loss_is_the_full_validation_sets(two_workers):
    result, _ = two_workers
    xv, yv, mv = (torch.as_tensor(a) for a in VALIDATION)
    with torch.no_grad():
        logits, metal = result.model(xv)
        # The returned model has the temperature folded into its class logits: undo it to get the best
        # epoch's criterion (validation cross-entropy + selection_metal_weight x metal MSE).
        loss = torch.nn.functional.cross_entropy(logits * result.temperature, yv) + (
            FAST.selection_metal_weight * torch.nn.functional.mse_loss(metal, mv)
        )
    assert float(loss) == pytest.approx(result.best_validation_loss, rel=1e-5)
    assert result.history[result.best_epoch]["validation_loss"] == result.best_validation_loss


def test_deterministic_for_a_seed(two_workers):
    first, _ = two_workers
    second = run()
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert first.history == second.history
    assert first.rank_weight_digests == second.rank_weight_digests


def test_all_ranks_stop_early_at_the_same_epoch():
    # learning rate 0: the validation loss never improves after epoch 0
    config = TrainConfig(max_epochs=30, patience=3, batch_size=64, learning_rate=0.0, seed=0)
    result = run(config=config)
    assert result.best_epoch == 0
    assert result.epochs_run == config.patience + 1
    assert result.rank_epochs_run == (config.patience + 1,) * 2


def test_one_worker_is_exactly_train_model():
    config = TrainConfig(max_epochs=5, patience=100, batch_size=64, learning_rate=1e-2, seed=3)
    distributed = run(workers=1, config=config)
    single = train_model(SMALL, *TRAIN, *VALIDATION, CPU, config)
    a, b = distributed.model.state_dict(), single.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert distributed.history == single.history
    assert distributed.best_epoch == single.best_epoch


def test_a_failing_worker_raises_naming_its_rank():
    x, y, m = (a.copy() for a in TRAIN)
    # a label outside the 3 classes, in rank 1's first batch of epoch 0 only
    y[shard_indices(len(x), rank=1, world_size=2, seed=FAST.seed, epoch=0)[0]] = 3
    with pytest.raises(RuntimeError, match=r"failed on rank 1: IndexError: Target 3 is out of bounds"):
        run(train=(x, y, m), shutdown_grace_s=5.0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"workers": 0}, "workers must be at least 1"),
        ({"workers": 2, "device_type": "tpu"}, "device_type"),
        ({"workers": 1 + torch.cuda.device_count(), "device_type": "cuda"}, "one per rank"),
        (
            {"config": dataclasses.replace(FAST, ensemble_members=3)},
            "trains one network, not an ensemble of 3",
        ),
    ],
)
def test_bad_arguments_raise_before_starting_anything(kw, message):
    with pytest.raises(ValueError, match=message):
        run(**kw)


def test_empty_split_raises():
    x, y, m = TRAIN
    with pytest.raises(ValueError, match="empty split"):
        run(train=(x[:0], y[:0], m[:0]))


@pytest.mark.parametrize(("n_rows", "world_size"), [(240, 2), (241, 2), (10, 3), (2, 4)])
def test_shards_are_equal_sized_and_cover_every_row(n_rows, world_size):
    shards = [shard_indices(n_rows, r, world_size, seed=5, epoch=2) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1
    assert len(shards[0]) == -(-n_rows // world_size)
    combined = np.concatenate(shards)
    assert set(combined.tolist()) == set(range(n_rows))
    assert len(combined) - n_rows < world_size  # only the wrap-around padding repeats rows
    if n_rows % world_size == 0:
        assert len(set(combined.tolist())) == len(combined)  # disjoint


def test_shards_are_deterministic_per_seed_and_epoch():
    same = shard_indices(100, 0, 2, seed=1, epoch=0)
    np.testing.assert_array_equal(same, shard_indices(100, 0, 2, seed=1, epoch=0))
    assert not np.array_equal(same, shard_indices(100, 0, 2, seed=1, epoch=1))
    assert not np.array_equal(same, shard_indices(100, 0, 2, seed=2, epoch=0))
    with pytest.raises(ValueError, match="outside"):
        shard_indices(100, 2, 2, seed=1, epoch=0)
