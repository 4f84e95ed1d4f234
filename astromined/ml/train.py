"""Single-device training with early stopping on a validation criterion. Deterministic for a given seed.

The training loss is multi-task: cross-entropy (classification) + ``metal_loss_weight`` x MSE (metal
richness). Early stopping and the choice of the best epoch use the validation *criterion*, cross-entropy +
``selection_metal_weight`` x MSE: classification quality is what promotion judges (holdout macro-F1 against
the logistic-regression baseline), so by default the metal term only shapes training, not which epoch is kept.

With ``ensemble_members`` K > 1, K networks are trained the same way from K member seeds and merged into one
CompositionNet averaging their logits (``model.merge_ensemble``), then temperature-scaled as one model. On
the benchmark days (BENCHMARKS.md, model quality) a single network's holdout errors swing by ±2 asteroids
with the seed, which is the whole margin over the logistic-regression baseline; the average of three does not
swing so, and beats the baseline on every seed tried, for K times the training time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from astromined.ml.model import ArchitectureConfig, CompositionNet, merge_ensemble


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 200
    patience: int = 15
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    metal_loss_weight: float = 2.0
    # Weight of the metal-richness MSE in the validation criterion (early stopping, best epoch); 0 selects
    # on validation classification cross-entropy alone.
    selection_metal_weight: float = 0.0
    # Label smoothing of the training cross-entropy (validation cross-entropy is plain). Less over-confident
    # fits near the class boundaries: a steadier margin over the baseline across seeds (BENCHMARKS.md).
    label_smoothing: float = 0.1
    # After training, fit one temperature on the validation cross-entropy and fold it into the class
    # logits (argmax unchanged): undoes the under-confidence label smoothing leaves, so ECE stays low.
    temperature_scaling: bool = True
    seed: int = 7
    # Networks trained and averaged into the returned model (1: a single network, seeded with ``seed``;
    # K > 1: members seeded ``member_seeds(seed, K)``). candidate_model's CandidateConfig sets 3.
    ensemble_members: int = 1


def member_seeds(seed: int, members: int) -> list[int]:
    """The seeds of an ensemble's members: ``seed`` itself for a single network, else seed·1000 + i."""
    return [seed] if members == 1 else [seed * 1000 + i for i in range(members)]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model: CompositionNet
    best_epoch: int
    epochs_run: int
    best_validation_loss: float
    train_seconds: float
    samples_per_second: float
    history: list[dict[str, float]]
    temperature: float = 1.0  # folded into the returned model's class logits (1.0: none)
    member_best_epochs: tuple[int, ...] = ()  # per ensemble member (best_epoch is their maximum)


def validation_criterion(cross_entropy: float, metal_mse: float, config: TrainConfig) -> float:
    """What early stopping minimises: mean validation cross-entropy (+ the weighted metal MSE)."""
    return cross_entropy + config.selection_metal_weight * metal_mse


TEMPERATURE_GRID = torch.exp(torch.linspace(np.log(0.05), np.log(20.0), 601, dtype=torch.float64))


@torch.no_grad()
def calibrate_temperature(model: CompositionNet, x_val: np.ndarray, y_class_val: np.ndarray) -> float:
    """Temperature scaling: the T minimising validation cross-entropy of logits / T (a fixed log grid, so
    deterministic), folded into the layers that sum to the class logits (class head and wide path). The
    predicted classes do not change; probabilities become calibrated. Returns T."""
    device = next(model.parameters()).device
    model.eval()
    logits, _ = model(torch.as_tensor(x_val, dtype=torch.float32, device=device))
    labels = torch.as_tensor(y_class_val, dtype=torch.long, device=logits.device)
    logits = logits.double()
    losses = torch.stack(
        [nn.functional.cross_entropy(logits / t, labels) for t in TEMPERATURE_GRID.to(logits.device)]
    )
    temperature = float(TEMPERATURE_GRID[int(torch.argmin(losses))])
    layers = [model.class_head] + ([model.wide] if model.wide is not None else [])
    for layer in layers:
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)
    return temperature


def _loss(
    model: CompositionNet, x, y_class, y_metal, metal_weight: float, label_smoothing: float = 0.0
) -> torch.Tensor:
    logits, metal = model(x)
    return nn.functional.cross_entropy(
        logits.float(), y_class, label_smoothing=label_smoothing
    ) + metal_weight * nn.functional.mse_loss(metal.float(), y_metal)


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
    """Train ``config.ensemble_members`` network(s) and return one model (an ensemble merged into one)."""
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"empty split: {len(x_train)} training and {len(x_val)} validation rows")
    if config.ensemble_members < 1:
        raise ValueError(f"ensemble_members must be at least 1, not {config.ensemble_members}")
    arrays = (x_train, y_class_train, y_metal_train, x_val, y_class_val, y_metal_val)
    if config.ensemble_members == 1:
        return _train_single(architecture, *arrays, device, config, on_epoch)
    members: list[TrainResult] = []
    for member, seed in enumerate(member_seeds(config.seed, config.ensemble_members)):
        member_config = dataclasses.replace(config, seed=seed, ensemble_members=1, temperature_scaling=False)

        def tagged(record: dict[str, float], member: int = member) -> None:
            record["member"] = float(member)
            if on_epoch is not None:
                on_epoch(record)

        members.append(_train_single(architecture, *arrays, device, member_config, tagged))
    model = merge_ensemble([m.model for m in members])
    with torch.no_grad():
        logits, metal = model(torch.as_tensor(x_val, dtype=torch.float32, device=device))
        val_ce = float(
            nn.functional.cross_entropy(logits.float(), torch.as_tensor(y_class_val, device=device))
        )
        val_mse = float(
            nn.functional.mse_loss(
                metal.float(), torch.as_tensor(y_metal_val, dtype=torch.float32, device=device)
            )
        )
    temperature = calibrate_temperature(model, x_val, y_class_val) if config.temperature_scaling else 1.0
    elapsed = sum(m.train_seconds for m in members)
    samples = sum(m.samples_per_second * m.train_seconds for m in members)
    return TrainResult(
        model=model,
        best_epoch=max(m.best_epoch for m in members),
        epochs_run=sum(m.epochs_run for m in members),
        best_validation_loss=validation_criterion(val_ce, val_mse, config),
        train_seconds=elapsed,
        samples_per_second=samples / elapsed if elapsed > 0 else float("nan"),
        history=[record for m in members for record in m.history],
        temperature=temperature,
        member_best_epochs=tuple(m.best_epoch for m in members),
    )


def _train_single(
    architecture: ArchitectureConfig,
    x_train: np.ndarray,
    y_class_train: np.ndarray,
    y_metal_train: np.ndarray,
    x_val: np.ndarray,
    y_class_val: np.ndarray,
    y_metal_val: np.ndarray,
    device: torch.device,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None,
) -> TrainResult:
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
                    loss = _loss(
                        model,
                        xt[batch],
                        yct[batch],
                        ymt[batch],
                        config.metal_loss_weight,
                        config.label_smoothing,
                    )
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:  # no autocast context or scaler calls per batch where they would do nothing
                loss = _loss(
                    model, xt[batch], yct[batch], ymt[batch], config.metal_loss_weight, config.label_smoothing
                )
                loss.backward()
                optimizer.step()
            train_loss.add_(loss.detach(), alpha=len(batch))
            samples += len(batch)
        model.eval()
        with torch.no_grad():
            logits, metal = model(xv)
            val_ce = float(nn.functional.cross_entropy(logits.float(), ycv))
            val_mse = float(nn.functional.mse_loss(metal.float(), ymv))
        val_loss = validation_criterion(val_ce, val_mse, config)
        record = {
            "epoch": float(epoch),
            "train_loss": float(train_loss) / len(xt),
            "validation_loss": val_loss,
            "validation_cross_entropy": val_ce,
            "validation_metal_mse": val_mse,
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
    temperature = calibrate_temperature(model, x_val, y_class_val) if config.temperature_scaling else 1.0
    return TrainResult(
        model=model,
        best_epoch=best_epoch,
        epochs_run=epoch + 1,
        best_validation_loss=best_loss,
        train_seconds=elapsed,
        samples_per_second=samples / elapsed if elapsed > 0 else float("nan"),
        history=history,
        temperature=temperature,
        member_best_epochs=(best_epoch,),
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
