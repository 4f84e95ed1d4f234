"""Single-device training with early stopping on validation loss. Deterministic for a given seed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from astromined.ml.model import ArchitectureConfig, CompositionNet


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 200
    patience: int = 15
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    metal_loss_weight: float = 2.0
    seed: int = 7


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model: CompositionNet
    best_epoch: int
    epochs_run: int
    best_validation_loss: float
    train_seconds: float
    samples_per_second: float
    history: list[dict[str, float]]


def _loss(model: CompositionNet, x, y_class, y_metal, metal_weight: float) -> torch.Tensor:
    logits, metal = model(x)
    return nn.functional.cross_entropy(logits.float(), y_class) + metal_weight * nn.functional.mse_loss(
        metal.float(), y_metal
    )


def train_model(
    architecture: ArchitectureConfig,
    x_train: np.ndarray,
    y_class_train: np.ndarray,
    y_metal_train: np.ndarray,
    x_val: np.ndarray,
    y_class_val: np.ndarray,
    y_metal_val: np.ndarray,
    device: torch.device,
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"empty split: {len(x_train)} training and {len(x_val)} validation rows")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = CompositionNet(architecture)
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    # Sample std; a single training row has none (NaN), so fall back to 0 (clamped in set_normalization).
    model.set_normalization(xt.mean(dim=0), xt.std(dim=0, correction=1 if len(xt) > 1 else 0))
    model.to(device)

    xt = xt.to(device)
    yct = torch.tensor(y_class_train, dtype=torch.long, device=device)
    ymt = torch.tensor(y_metal_train, dtype=torch.float32, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    ycv = torch.tensor(y_class_val, dtype=torch.long, device=device)
    ymv = torch.tensor(y_metal_val, dtype=torch.float32, device=device)

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    best_loss, best_epoch, best_state = float("inf"), -1, None
    history: list[dict[str, float]] = []
    samples = 0
    started = time.perf_counter()
    epoch = 0
    for epoch in range(config.max_epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator).to(device)
        # Summed on the device: a float() per batch would wait for the GPU after every step.
        train_loss = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, len(xt), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            if use_amp:
                with torch.autocast(device_type=device.type, dtype=torch.float16):
                    loss = _loss(model, xt[batch], yct[batch], ymt[batch], config.metal_loss_weight)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:  # no autocast context or scaler calls per batch where they would do nothing
                loss = _loss(model, xt[batch], yct[batch], ymt[batch], config.metal_loss_weight)
                loss.backward()
                optimizer.step()
            train_loss.add_(loss.detach(), alpha=len(batch))
            samples += len(batch)
        model.eval()
        with torch.no_grad():
            val_loss = float(_loss(model, xv, ycv, ymv, config.metal_loss_weight))
        record = {
            "epoch": float(epoch),
            "train_loss": float(train_loss) / len(xt),
            "validation_loss": val_loss,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    elapsed = time.perf_counter() - started
    if best_state is None:
        raise RuntimeError(f"training diverged: validation loss was never finite ({history[-1]})")
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        best_epoch=best_epoch,
        epochs_run=epoch + 1,
        best_validation_loss=best_loss,
        train_seconds=elapsed,
        samples_per_second=samples / elapsed if elapsed > 0 else float("nan"),
        history=history,
    )


@torch.no_grad()
def predict(
    model: CompositionNet, x: np.ndarray, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness for a feature matrix."""
    device = device or next(model.parameters()).device
    model.eval()
    logits, metal = model(torch.as_tensor(x, dtype=torch.float32, device=device))
    return torch.softmax(logits.float(), dim=-1).cpu().numpy(), metal.float().cpu().numpy()
