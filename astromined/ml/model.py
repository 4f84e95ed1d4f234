"""The asteroid-composition network: taxonomic complex (classification) and metal richness (regression).

The network carries its own input normalization as buffers, so a saved state_dict is self-contained.

Wide & deep: with ``wide=True`` the class logits are the deep path's (two ReLU layers) plus a linear map of
the normalized inputs (``wide``, no bias: the class head has one). The linear part is exactly what the
logistic-regression baseline fits, so the network can represent the baseline and the deep path only has
to learn what a linear model cannot. The metal-richness head reads the deep path only.

An ensemble of K such networks whose class logits (and metal logits) are averaged is itself one
CompositionNet, ``hidden`` K times wider (``merge_ensemble``): the first layers stacked, the second
block-diagonal, the heads concatenated and divided by K. So the registry, the int8 package and the on-board
forward pass need nothing new to carry an ensemble.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class ArchitectureConfig:
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    hidden: int = 64
    dropout: float = 0.1
    # New models are wide & deep; manifests written before the field existed load as deep-only (False).
    wide: bool = True

    def to_dict(self) -> dict:
        return {
            "feature_names": list(self.feature_names),
            "classes": list(self.classes),
            "hidden": self.hidden,
            "dropout": self.dropout,
            "wide": self.wide,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ArchitectureConfig:
        return cls(
            feature_names=tuple(data["feature_names"]),
            classes=tuple(data["classes"]),
            hidden=int(data["hidden"]),
            dropout=float(data["dropout"]),
            wide=bool(data.get("wide", False)),  # absent in manifests older than the wide path
        )


class CompositionNet(nn.Module):
    def __init__(self, config: ArchitectureConfig):
        super().__init__()
        n_features = len(config.feature_names)
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.body = nn.Sequential(
            nn.Linear(n_features, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
        )
        self.class_head = nn.Linear(config.hidden, len(config.classes))
        self.metal_head = nn.Linear(config.hidden, 1)
        # Registered only when used, so a deep-only model's state_dict is what it always was.
        self.wide = nn.Linear(n_features, len(config.classes), bias=False) if config.wide else None

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(torch.clamp(std, min=1e-6))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The input normalization the network carries (the int8 package carries the same buffers)."""
        return (x - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (class logits, metal richness in [0, 1])."""
        z = self.normalize(x)
        hidden = self.body(z)
        logits = self.class_head(hidden)
        if self.wide is not None:
            logits = logits + self.wide(z)
        return logits, torch.sigmoid(self.metal_head(hidden)).squeeze(-1)


@torch.no_grad()
def merge_ensemble(members: Sequence[CompositionNet]) -> CompositionNet:
    """One CompositionNet computing the average of the members' class logits and metal logits, exactly.

    The members must share features, classes, wide-ness and input normalization (trained on the same rows).
    The result's ``hidden`` is the sum of theirs; it is in eval mode."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    first = members[0].config
    for member in members[1:]:
        if dataclasses.replace(member.config, hidden=first.hidden) != first:
            raise ValueError(f"ensemble members differ: {member.config} vs {first}")
        if not (
            torch.equal(member.feature_mean, members[0].feature_mean)
            and torch.equal(member.feature_std, members[0].feature_std)
        ):
            raise ValueError("ensemble members have different input normalizations")
    k = len(members)
    merged = CompositionNet(dataclasses.replace(first, hidden=sum(m.config.hidden for m in members)))
    merged.to(members[0].feature_mean.device)
    merged.set_normalization(members[0].feature_mean, members[0].feature_std)
    merged.body[0].weight.copy_(torch.cat([m.body[0].weight for m in members]))
    merged.body[0].bias.copy_(torch.cat([m.body[0].bias for m in members]))
    merged.body[3].weight.copy_(torch.block_diag(*[m.body[3].weight for m in members]))
    merged.body[3].bias.copy_(torch.cat([m.body[3].bias for m in members]))
    for head in ("class_head", "metal_head"):
        getattr(merged, head).weight.copy_(torch.cat([getattr(m, head).weight for m in members], dim=1) / k)
        getattr(merged, head).bias.copy_(torch.stack([getattr(m, head).bias for m in members]).mean(dim=0))
    if merged.wide is not None:
        merged.wide.weight.copy_(torch.stack([m.wide.weight for m in members]).mean(dim=0))
    return merged.eval()
