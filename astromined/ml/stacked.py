"""K CompositionNets trained as one module: every layer's weights stacked on a leading member axis.

Why: the networks are small (a few thousand weights), so on a CPU a training step costs the ~50 operator
calls of forward, backward and the optimizer more than the arithmetic. Training the K members of a seed
ensemble one after the other pays those calls K times per batch; stacked, one batched matrix multiply
(``torch.baddbmm``) does a layer for all members, and each member beyond the first adds about half of a
network's training time instead of a whole one (BENCHMARKS.md, "Training a seed ensemble"). Every epoch is
one pass for the members still training: a member that stops early leaves the stack (``narrowed``; its
best weights are kept), and the others carry on with their weights, optimizer moments and random streams
where they were (on the 7-day benchmark window: 13.9 s of training instead of 17.5 s, the same weights).

Nothing is shared between members but the input normalization (they train on the same rows): each has its
own initial weights, batch order and dropout masks (``MemberStreams``), its loss is its own mean over its own
batch, and AdamW's update is elementwise, so member k's weights follow exactly the path they would alone.
``member(k)`` gives member k back as a plain CompositionNet (what the registry and the int8 package carry).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from astromined.ml.model import ArchitectureConfig, CompositionNet

# (stacked parameter, member submodule, attribute): weights are stored transposed ([in, out]) for bmm.
_LAYERS = (
    ("w1", "body.0", "weight"),
    ("b1", "body.0", "bias"),
    ("w2", "body.3", "weight"),
    ("b2", "body.3", "bias"),
    ("wc", "class_head", "weight"),
    ("bc", "class_head", "bias"),
    ("wm", "metal_head", "weight"),
    ("bm", "metal_head", "bias"),
    ("ww", "wide", "weight"),
)


def _to_stacked(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A member's parameter in the stacked layout: weights [in, out], biases [1, out] (broadcast over B)."""
    return tensor.t() if name.startswith("w") else tensor.unsqueeze(0)


def _from_stacked(name: str, tensor: torch.Tensor) -> torch.Tensor:
    return tensor.t() if name.startswith("w") else tensor.squeeze(0)


class StackedCompositionNets(nn.Module):
    """``members`` CompositionNets (same architecture and normalization) as batched parameters [K, ...].

    ``forward`` takes one input batch per member, [K, B, features], and returns class logits [K, B, classes]
    and metal richness [K, B]: for every k what ``member(k)(x[k])`` returns."""

    def __init__(self, members: Sequence[CompositionNet]):
        super().__init__()
        if not members:
            raise ValueError("stacking needs at least one member")
        self.config: ArchitectureConfig = members[0].config
        for member in members[1:]:
            if member.config != self.config:
                raise ValueError(f"stacked members differ: {member.config} vs {self.config}")
        self.register_buffer("feature_mean", members[0].feature_mean.detach().clone())
        self.register_buffer("feature_std", members[0].feature_std.detach().clone())
        for name, module, attribute in self._layers():
            stacked = torch.stack(
                [_to_stacked(name, getattr(m.get_submodule(module), attribute).detach()) for m in members]
            )
            setattr(self, name, nn.Parameter(stacked.contiguous()))

    def _layers(self):
        return [layer for layer in _LAYERS if layer[0] != "ww" or self.config.wide]

    @property
    def members(self) -> int:
        return self.w1.shape[0]

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, keep_scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``keep``: the dropout keep-mask of the first hidden layer, bool [K, B, hidden] (kept units are
        scaled by ``keep_scale`` = 1/(1-p), as ``nn.Dropout`` does); None applies no dropout (evaluation)."""
        z = (x - self.feature_mean) / self.feature_std
        hidden = torch.relu(torch.baddbmm(self.b1, z, self.w1))
        if keep is not None:
            hidden = hidden * keep * keep_scale
        hidden = torch.relu(torch.baddbmm(self.b2, hidden, self.w2))
        logits = torch.baddbmm(self.bc, hidden, self.wc)
        if self.config.wide:
            logits = logits + torch.bmm(z, self.ww)
        metal = torch.sigmoid(torch.baddbmm(self.bm, hidden, self.wm)).squeeze(-1)
        return logits, metal

    @torch.no_grad()
    def narrowed(self, positions: Sequence[int]) -> StackedCompositionNets:
        """A stack of the members at ``positions`` only (copies of their weights, in that order)."""
        smaller = copy.deepcopy(self)
        index = torch.tensor(list(positions), device=self.w1.device)
        for name, _, _ in self._layers():
            setattr(smaller, name, nn.Parameter(getattr(self, name).index_select(0, index).contiguous()))
        return smaller

    @torch.no_grad()
    def member(self, k: int) -> CompositionNet:
        """Member k as a plain CompositionNet (a copy, in eval mode, on this module's device)."""
        net = CompositionNet(self.config).to(self.feature_mean.device)
        net.set_normalization(self.feature_mean, self.feature_std)
        for name, module, attribute in self._layers():
            getattr(net.get_submodule(module), attribute).copy_(_from_stacked(name, getattr(self, name)[k]))
        return net.eval()


class MemberStreams:
    """Each member's own random streams, drawn once per epoch: its row order (a CPU generator seeded with
    its seed, as single-network training always did) and its dropout keep-masks (a generator on the training
    device, seeded apart from the order so that the two streams are unrelated). A member draws the same
    numbers whether it is trained alone or stacked with others."""

    DROPOUT_STREAM = 0x5EED_D00D

    def __init__(self, seeds: Sequence[int], device: torch.device, dropout: float):
        self.order = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.dropout = [
            torch.Generator(device=device).manual_seed(seed ^ self.DROPOUT_STREAM) for seed in seeds
        ]
        self.device = device
        self.keep_probability = 1.0 - dropout

    def permutations(self, rows: int) -> torch.Tensor:
        """One epoch's row order per member, [K, rows], on the training device."""
        return torch.stack([torch.randperm(rows, generator=g) for g in self.order]).to(self.device)

    def keep_masks(self, rows: int, hidden: int) -> torch.Tensor | None:
        """One epoch's dropout keep-masks per member, bool [K, rows, hidden] (row i of the epoch's order);
        None without dropout."""
        if self.keep_probability >= 1.0:
            return None
        return torch.stack(
            [
                torch.rand((rows, hidden), generator=g, device=self.device) < self.keep_probability
                for g in self.dropout
            ]
        )

    def narrowed(self, positions: Sequence[int]) -> MemberStreams:
        """The streams of the members at ``positions``, carrying on where they are (the same generators)."""
        streams = copy.copy(self)
        streams.order = [self.order[p] for p in positions]
        streams.dropout = [self.dropout[p] for p in positions]
        return streams

    @property
    def keep_scale(self) -> float:
        return 1.0 / self.keep_probability if self.keep_probability > 0 else 0.0
