"""FusedAdamW: the kernel torch.optim.AdamW(fused=True) runs, without torch.optim around it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from astromined.ml.adamw import FusedAdamW


def _parameters(seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 5, 8), (3, 1, 8), (3, 8, 4), (3, 1, 4)]
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]


def _run(optimizer, params: list[torch.nn.Parameter], steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad()
        x = torch.randn(3, 6, 5, generator=generator)
        hidden = torch.relu(torch.baddbmm(params[1], x, params[0]))
        loss = torch.baddbmm(params[3], hidden, params[2]).pow(2).mean()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize(("lr", "weight_decay"), [(3e-3, 1e-4), (1e-2, 0.0), (1e-3, 0.5)])
def test_the_weights_are_bit_identical_to_torch_adamw_fused(lr, weight_decay):
    ours, theirs = _parameters(0), _parameters(0)
    _run(FusedAdamW(ours, lr=lr, weight_decay=weight_decay), ours, steps=25, seed=1)
    _run(torch.optim.AdamW(theirs, lr=lr, weight_decay=weight_decay, fused=True), theirs, steps=25, seed=1)
    for mine, reference in zip(ours, theirs, strict=True):
        assert torch.equal(mine, reference)


def test_a_parameter_without_a_gradient_is_left_alone_as_torch_does():
    params = _parameters(2)
    spare = torch.nn.Parameter(torch.ones(4))
    optimizer = FusedAdamW([*params, spare], lr=1e-2, weight_decay=0.1)
    _run(optimizer, params, steps=3, seed=3)
    assert torch.equal(spare, torch.ones(4)) and float(optimizer.steps[-1]) == 0.0
    assert [float(step) for step in optimizer.steps[:-1]] == [3.0] * len(params)


def test_a_narrowed_optimizer_carries_on_as_the_full_one_would():
    full = _parameters(4)
    optimizer = FusedAdamW(full, lr=1e-2, weight_decay=1e-4)
    _run(optimizer, full, steps=4, seed=5)
    kept = [2, 0]
    smaller = [torch.nn.Parameter(p.detach()[kept].clone()) for p in full]
    narrowed = optimizer.narrowed(smaller, kept)
    for moment, small in zip(optimizer.exp_avg_sqs, narrowed.exp_avg_sqs, strict=True):
        assert torch.equal(small, moment[kept])
    assert [float(s) for s in narrowed.steps] == [4.0] * len(full)
    with pytest.raises(ValueError, match="parameters"):
        optimizer.narrowed(smaller[:2], kept)


def test_training_on_the_cpu_does_not_import_torch_dynamo():
    """The point of the class: torch.optim imports torch._dynamo (1.2-1.9 s) in every training process."""
    code = (
        "import sys, numpy as np, torch\n"
        "from astromined.ml.model import ArchitectureConfig\n"
        "from astromined.ml.train import TrainConfig, train_model\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(64, 4)).astype(np.float32); y = rng.integers(0, 3, 64); m = rng.random(64)\n"
        "config = TrainConfig(max_epochs=2, batch_size=16, ensemble_members=2)\n"
        "train_model(ArchitectureConfig(('a', 'b', 'c', 'd'), ('S', 'C', 'X'), hidden=8), x, y, m, x, y, m,\n"
        "            torch.device('cpu'), config)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
