"""K CompositionNets stacked for training: the same function per member, members independent, and the
temperature search that replaced the 601-point scan finds the scan's minimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.stacked import MemberStreams, StackedCompositionNets
from astromined.ml.train import TEMPERATURE_GRID, grid_argmin_temperature

FEATURES = ("a", "b", "c", "d", "e")
CLASSES = ("S", "C", "X", "M")


def nets(count: int, wide: bool = True, hidden: int = 8) -> list[CompositionNet]:
    architecture = ArchitectureConfig(FEATURES, CLASSES, hidden=hidden, wide=wide)
    members = []
    for seed in range(count):
        torch.manual_seed(seed)
        net = CompositionNet(architecture)
        net.set_normalization(torch.linspace(-1.0, 5.0, 5), torch.linspace(0.5, 3.0, 5))
        members.append(net.eval())
    return members


@pytest.mark.parametrize("wide", [True, False])
def test_stacked_forward_is_each_members_forward_on_its_own_batch(wide):
    members = nets(3, wide=wide)
    stacked = StackedCompositionNets(members).eval()
    x = torch.randn(3, 17, len(FEATURES), generator=torch.Generator().manual_seed(0)) * 4
    with torch.no_grad():
        logits, metal = stacked(x)
        for k, member in enumerate(members):
            member_logits, member_metal = member(x[k])
            torch.testing.assert_close(logits[k], member_logits, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(metal[k], member_metal, rtol=1e-5, atol=1e-6)


def test_members_come_back_as_the_networks_that_went_in():
    members = nets(3)
    stacked = StackedCompositionNets(members)
    for k, member in enumerate(members):
        back = stacked.member(k)
        assert not back.training
        assert back.config == member.config
        for key, value in member.state_dict().items():
            assert torch.equal(back.state_dict()[key], value), key


def test_a_gradient_on_one_members_loss_moves_only_that_member():
    stacked = StackedCompositionNets(nets(3))
    logits, metal = stacked(torch.randn(3, 9, len(FEATURES)))
    (logits[1].sum() + metal[1].sum()).backward()
    for name, parameter in stacked.named_parameters():
        assert parameter.grad[1].abs().sum() > 0, name
        assert torch.count_nonzero(parameter.grad[0]) == 0 and torch.count_nonzero(parameter.grad[2]) == 0


def test_dropout_keep_mask_zeroes_and_rescales_the_first_hidden_layer():
    stacked = StackedCompositionNets(nets(2)).train()
    x = torch.randn(2, 5, len(FEATURES))
    keep_all = torch.ones(2, 5, 8, dtype=torch.bool)
    keep_none = torch.zeros(2, 5, 8, dtype=torch.bool)
    with torch.no_grad():
        plain = stacked(x)
        kept = stacked(x, keep_all, 1.0)
        dropped = stacked(x, keep_none, 1.0)
        # Every unit dropped: the class logits come from the second layer's bias and the wide path alone.
        z = (x - stacked.feature_mean) / stacked.feature_std
        expected = torch.relu(stacked.b2) @ stacked.wc + stacked.bc + torch.bmm(z, stacked.ww)
    torch.testing.assert_close(kept[0], plain[0])
    torch.testing.assert_close(dropped[0], expected)


def test_members_must_share_the_architecture():
    with pytest.raises(ValueError, match="differ"):
        StackedCompositionNets([nets(1, hidden=8)[0], nets(1, hidden=16)[0]])
    with pytest.raises(ValueError, match="at least one"):
        StackedCompositionNets([])


def test_a_members_random_streams_do_not_depend_on_the_others():
    alone = MemberStreams([11], torch.device("cpu"), dropout=0.1)
    together = MemberStreams([5, 11, 17], torch.device("cpu"), dropout=0.1)
    for _ in range(2):  # two epochs
        assert torch.equal(alone.permutations(50)[0], together.permutations(50)[1])
        assert torch.equal(alone.keep_masks(50, 8)[0], together.keep_masks(50, 8)[1])
    assert MemberStreams([1], torch.device("cpu"), dropout=0.0).keep_masks(50, 8) is None


@pytest.mark.parametrize("torch_optim", [False, True], ids=["cpu-fused-adamw", "torch-adamw"])
def test_a_narrowed_stack_trains_on_as_its_members_would_in_the_full_stack(torch_optim):
    """Members that stopped early leave the stack (train._narrowed): the members kept, in the order asked,
    must take exactly the steps they take in the full stack (weights, AdamW moments and step count), and
    their random streams must carry on. Both optimizers training uses: FusedAdamW on the CPU, torch's
    AdamW under mixed precision on a GPU."""
    from astromined.ml.adamw import FusedAdamW
    from astromined.ml.train import _narrowed

    full = StackedCompositionNets(nets(3)).train()
    if torch_optim:
        optimizer = torch.optim.AdamW(full.parameters(), lr=1e-2, weight_decay=1e-4, fused=True)
    else:
        optimizer = FusedAdamW(full.parameters(), lr=1e-2, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)

    def step(model, opt, x, target):
        opt.zero_grad()
        logits, metal = model(x)
        ((logits - target).pow(2).mean(dim=(1, 2)) + metal.mean(dim=1)).sum().backward()
        opt.step()

    batches = [
        (
            torch.randn(3, 6, len(FEATURES), generator=generator),
            torch.randn(3, 6, len(CLASSES), generator=generator),
        )
        for _ in range(4)
    ]
    for x, target in batches[:2]:
        step(full, optimizer, x, target)
    kept = [2, 0]
    smaller, smaller_optimizer = _narrowed(full, optimizer, kept)
    assert smaller.members == 2 and full.members == 3
    for x, target in batches[2:]:
        step(full, optimizer, x, target)
        step(smaller, smaller_optimizer, x[kept], target[kept])
    for i, ((name, big), (_, small)) in enumerate(
        zip(full.named_parameters(), smaller.named_parameters(), strict=True)
    ):
        torch.testing.assert_close(small, big[kept], rtol=1e-6, atol=1e-7, msg=name)
        if torch_optim:
            state, small_state = optimizer.state[big], smaller_optimizer.state[small]
            moments, small_moments = state["exp_avg_sq"], small_state["exp_avg_sq"]
            steps = float(state["step"]), float(small_state["step"])
        else:
            moments, small_moments = optimizer.exp_avg_sqs[i], smaller_optimizer.exp_avg_sqs[i]
            steps = float(optimizer.steps[i]), float(smaller_optimizer.steps[i])
        torch.testing.assert_close(small_moments, moments[kept], msg=name)
        assert steps == (4.0, 4.0)

    streams = MemberStreams([5, 11, 17], torch.device("cpu"), dropout=0.1)
    reference = MemberStreams([5, 11, 17], torch.device("cpu"), dropout=0.1)
    streams.permutations(40), reference.permutations(40)
    narrowed = streams.narrowed(kept)
    assert torch.equal(narrowed.permutations(40), reference.permutations(40)[kept])
    assert torch.equal(narrowed.keep_masks(40, 8), reference.keep_masks(40, 8)[kept])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    rows=st.integers(1, 200),
    scale=st.floats(0.01, 200.0),
    separable=st.booleans(),
)
def test_temperature_search_finds_the_lowest_cross_entropy_on_the_grid(seed, rows, scale, separable):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(CLASSES), (rows,), generator=generator)
    logits = torch.randn(rows, len(CLASSES), generator=generator, dtype=torch.float64) * scale
    if separable:  # the right class far ahead: the loss keeps falling as T shrinks, down to underflow
        logits[torch.arange(rows), labels] += 10 * scale
    scan = torch.stack([nn.functional.cross_entropy(logits / t, labels) for t in TEMPERATURE_GRID])
    found = grid_argmin_temperature(logits, labels)
    assert float(scan[found]) <= float(scan.min()) + 1e-12 * max(1.0, abs(float(scan.min())))
    if int(torch.argmin(scan)) != found:  # only a tie (or rounding-level difference) may move the index
        assert np.isclose(float(scan[found]), float(scan.min()), rtol=1e-12, atol=1e-15)
