"""The asteroid-composition network: taxonomic complex (classification) and metal richness (regression).

The network carries its own input normalization as buffers, so a saved state_dict is self-contained.

Wide & deep: with ``wide=True`` the class logits are the deep path's (two ReLU layers) plus a linear map of
the normalized inputs (``wide``, no bias: the class head has one). The linear part is exactly what the
logistic-regression baseline fits, so the network can represent the baseline and the deep path only has
to learn what a linear model cannot. The metal-richness head reads the deep path only.
"""

from __future__ import annotations

import dataclasses

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
