"""Single-device training with early stopping on a validation criterion. Deterministic for a given seed.

The training loss is multi-task: cross-entropy (classification) + ``metal_loss_weight`` x MSE (metal
richness). Early stopping and the choice of the best epoch use the validation *criterion*, cross-entropy +
``selection_metal_weight`` x MSE: classification quality is what promotion judges (holdout macro-F1 against
the logistic-regression baseline), so by default the metal term only shapes training, not which epoch is kept.

With ``ensemble_members`` K > 1, K networks are trained the same way from K member seeds and merged into one
CompositionNet averaging their logits (``model.merge_ensemble``), then temperature-scaled as one model. On
the benchmark days (BENCHMARKS.md, model quality) a single network's holdout errors swing by ±2 asteroids
with the seed, which is the whole margin over the logistic-regression baseline; the average of three does not
swing so much. The K members train stacked in one module (``stacked.py``): each follows the path it would
alone (own initialisation, batch order, dropout masks and early stop), and on a CPU each member beyond
the first adds about half of a network's training time, not a whole one (BENCHMARKS.md, "Training a seed
ensemble").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from astromined.ml.adamw import FusedAdamW
from astromined.ml.model import ArchitectureConfig, CompositionNet, merge_ensemble
from astromined.ml.stacked import MemberStreams, StackedCompositionNets


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
    # Epochs each member trained before its early stop (epochs_run, the passes over the data, is their
    # maximum: the members train stacked, together).
    member_epochs_run: tuple[int, ...] = ()


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
    temperature = float(TEMPERATURE_GRID[grid_argmin_temperature(logits.double(), labels)])
    fold_temperature(model, temperature)
    return temperature


@torch.no_grad()
def fold_temperature(model: CompositionNet, temperature: float) -> None:
    """Divide the class logits by ``temperature`` in place, in the layers that sum to them (class head and
    wide path): the predicted classes stay, the probabilities sharpen (T < 1) or soften (T > 1)."""
    layers = [model.class_head] + ([model.wide] if model.wide is not None else [])
    for layer in layers:
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)


def grid_argmin_temperature(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """The index in TEMPERATURE_GRID of the lowest cross-entropy of ``logits / T`` (the first, on a tie).

    Cross-entropy is convex in 1/T (a log-sum-exp of a linear function minus a linear function), and the
    grid is monotone in T, so the losses along it fall, (may) stay level at the bottom, then rise: a binary
    search on the sign of each step finds the lowest one in ~10 evaluations instead of 601 (each is a
    softmax over the whole validation set; 601 of them took 0.3-2 s per training)."""
    grid = TEMPERATURE_GRID.to(logits.device)
    cache: dict[int, float] = {}

    def loss(i: int) -> float:
        if i not in cache:
            cache[i] = float(nn.functional.cross_entropy(logits / grid[i], labels))
        return cache[i]

    low, high = 0, len(grid) - 1
    while low < high:
        middle = (low + high) // 2
        if loss(middle) <= loss(middle + 1):
            high = middle  # the bottom is at or before middle
        else:
            low = middle + 1
    return low


def _loss(
    model: CompositionNet, x, y_class, y_metal, metal_weight: float, label_smoothing: float = 0.0
) -> torch.Tensor:
    """One network's training loss on a batch (data-parallel training, ``distributed.py``)."""
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
    """Train ``config.ensemble_members`` network(s) and return one model (an ensemble merged into one).

    The members train together, stacked (``astromined.ml.stacked``): each as it would alone (up to float
    rounding), each member beyond the first costing about half a network's time on a CPU. ``on_epoch``
    gets each member's record of each epoch it trained (with ``member`` for an ensemble); a member stops at
    its own early-stopping point, the run with the last."""
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"empty split: {len(x_train)} training and {len(x_val)} validation rows")
    if config.ensemble_members < 1:
        raise ValueError(f"ensemble_members must be at least 1, not {config.ensemble_members}")
    seeds = member_seeds(config.seed, config.ensemble_members)
    trained = _train_stacked(
        architecture,
        (x_train, y_class_train, y_metal_train),
        (x_val, y_class_val, y_metal_val),
        device,
        config,
        seeds,
        on_epoch,
    )
    if len(seeds) == 1:
        model = trained.members[0]
        best_loss = trained.best_losses[0]
    else:
        model = merge_ensemble(trained.members)
        val_ce, val_mse = _validation_losses(model, x_val, y_class_val, y_metal_val, device)
        best_loss = validation_criterion(val_ce, val_mse, config)
    temperature = calibrate_temperature(model, x_val, y_class_val) if config.temperature_scaling else 1.0
    return TrainResult(
        model=model,
        best_epoch=max(trained.best_epochs),
        epochs_run=max(trained.epochs_run),
        best_validation_loss=best_loss,
        train_seconds=trained.seconds,
        samples_per_second=trained.samples / trained.seconds if trained.seconds > 0 else float("nan"),
        history=trained.history,
        temperature=temperature,
        member_best_epochs=tuple(trained.best_epochs),
        member_epochs_run=tuple(trained.epochs_run),
    )


@torch.no_grad()
def _validation_losses(
    model: CompositionNet, x, y_class, y_metal, device: torch.device
) -> tuple[float, float]:
    model.eval()
    logits, metal = model(torch.as_tensor(x, dtype=torch.float32, device=device))
    cross_entropy = nn.functional.cross_entropy(logits.float(), torch.as_tensor(y_class, device=device))
    mse = nn.functional.mse_loss(metal.float(), torch.as_tensor(y_metal, dtype=torch.float32, device=device))
    return float(cross_entropy), float(mse)


@dataclasses.dataclass
class _Trained:
    """What the stacked training hands back: each member at its best epoch, and the run's bookkeeping."""

    members: list[CompositionNet]
    best_epochs: list[int]
    best_losses: list[float]
    epochs_run: list[int]
    history: list[dict[str, float]]
    seconds: float
    samples: int  # training rows passed through a network, summed over members


def _initial_members(
    architecture: ArchitectureConfig, seeds: list[int], xt: torch.Tensor
) -> list[CompositionNet]:
    """Each member initialised from its own seed, as a network trained alone always was."""
    # Sample std; a single training row has none (NaN), so fall back to 0 (clamped in set_normalization).
    mean, std = xt.mean(dim=0), xt.std(dim=0, correction=1 if len(xt) > 1 else 0)
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        member = CompositionNet(architecture)
        member.set_normalization(mean, std)
        members.append(member)
    return members


def _train_stacked(
    architecture: ArchitectureConfig,
    training: tuple[np.ndarray, np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    device: torch.device,
    config: TrainConfig,
    seeds: list[int],
    on_epoch: Callable[[dict[str, float]], None] | None,
) -> _Trained:
    xt = torch.as_tensor(training[0], dtype=torch.float32)
    every_member = StackedCompositionNets(_initial_members(architecture, seeds, xt)).to(device)
    model = every_member  # the members still training, in the order of ``running``
    xt = xt.to(device)
    yct = torch.tensor(training[1], dtype=torch.long, device=device)
    ymt = torch.tensor(training[2], dtype=torch.float32, device=device)
    k, rows = len(seeds), len(xt)
    xv = torch.as_tensor(validation[0], dtype=torch.float32, device=device).unsqueeze(0)
    ycv = torch.tensor(validation[1], dtype=torch.long, device=device)
    ymv = torch.tensor(validation[2], dtype=torch.float32, device=device)
    streams = MemberStreams(seeds, device, architecture.dropout)

    use_amp = device.type == "cuda"
    optimizer = _optimizer(model, config, use_amp)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    best_loss = [float("inf")] * k
    best_epoch = [-1] * k
    best_state = {name: value.detach().clone() for name, value in model.named_parameters()}
    epochs_run = [0] * k
    running = list(range(k))
    history: list[dict[str, float]] = []
    samples = 0
    started = time.perf_counter()
    for epoch in range(config.max_epochs):
        model.train()
        order = streams.permutations(rows)
        keep = streams.keep_masks(rows, architecture.hidden)
        # Summed on the device: a float() per batch would wait for the GPU after every step.
        train_loss = torch.zeros(len(running), dtype=torch.float64, device=device)
        for start in range(0, rows, config.batch_size):
            batch = order[:, start : start + config.batch_size]  # [K, B]: each member's own rows
            batch_keep = keep[:, start : start + config.batch_size] if keep is not None else None
            optimizer.zero_grad()  # set_to_none, torch.optim's default too
            inputs = (xt[batch], yct[batch], ymt[batch], batch_keep)
            if use_amp:
                with torch.autocast(device_type=device.type, dtype=torch.float16):
                    member_losses = _member_losses(model, *inputs, streams.keep_scale, config)
                # Each member's loss is its own mean: their sum gives every member exactly its own gradient.
                scaler.scale(member_losses.sum()).backward()
                scaler.step(optimizer)
                scaler.update()
            else:  # no autocast context or scaler calls per batch where they would do nothing
                member_losses = _member_losses(model, *inputs, streams.keep_scale, config)
                member_losses.sum().backward()
                optimizer.step()
            train_loss.add_(member_losses.detach(), alpha=batch.shape[1])
        samples += rows * len(running)
        model.eval()
        with torch.no_grad():
            logits, metal = model(xv.expand(len(running), -1, -1))
            val_ce = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), ycv.repeat(len(running)), reduction="none"
            ).reshape(len(running), -1)
            val_mse = (metal.float() - ymv).pow(2).mean(dim=1)
            val_ce, val_mse = val_ce.mean(dim=1).tolist(), val_mse.tolist()
        train_means = (train_loss / rows).tolist()
        still_running = []
        for position, member in enumerate(running):
            val_loss = validation_criterion(val_ce[position], val_mse[position], config)
            record = {
                "epoch": float(epoch),
                "train_loss": train_means[position],
                "validation_loss": val_loss,
                "validation_cross_entropy": val_ce[position],
                "validation_metal_mse": val_mse[position],
            }
            if k > 1:
                record["member"] = float(member)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            epochs_run[member] = epoch + 1
            if val_loss < best_loss[member] - 1e-5:
                best_loss[member], best_epoch[member] = val_loss, epoch
                with torch.no_grad():
                    for name, value in model.named_parameters():
                        best_state[name][member].copy_(value[position])
                still_running.append(position)
            elif epoch - best_epoch[member] < config.patience:
                still_running.append(position)
        if not still_running:
            break
        if len(still_running) < len(running):
            # Members that stopped leave the stack: the rest train on without computing them.
            model, optimizer = _narrowed(model, optimizer, still_running)
            streams = streams.narrowed(still_running)
            running = [running[position] for position in still_running]
    elapsed = time.perf_counter() - started
    for member in range(k):
        if best_epoch[member] < 0:
            last = [r for r in history if r.get("member", 0.0) == member][-1]
            raise RuntimeError(f"training diverged: validation loss was never finite ({last})")
    with torch.no_grad():
        for name, value in every_member.named_parameters():
            value.copy_(best_state[name])
    return _Trained(
        members=[every_member.member(member) for member in range(k)],
        best_epochs=best_epoch,
        best_losses=best_loss,
        epochs_run=epochs_run,
        history=history,
        seconds=elapsed,
        samples=samples,
    )


def _optimizer(
    model: StackedCompositionNets, config: TrainConfig, use_amp: bool
) -> FusedAdamW | torch.optim.AdamW:
    """AdamW. On the CPU ``FusedAdamW`` (the same kernel without torch.optim's import and per-step cost,
    ``adamw.py``); with mixed precision torch's, which ``torch.amp.GradScaler`` knows how to drive."""
    if use_amp:
        return torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
    return FusedAdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)


def _narrowed(
    model: StackedCompositionNets, optimizer: FusedAdamW | torch.optim.Optimizer, positions: list[int]
) -> tuple[StackedCompositionNets, FusedAdamW | torch.optim.Optimizer]:
    """The stack of the members at ``positions`` and an optimizer carrying on exactly where theirs was:
    AdamW's moments are per weight, so each kept member's slice of them is its whole state (its step
    count is that of every member: all stepped together)."""
    smaller = model.narrowed(positions)
    if isinstance(optimizer, FusedAdamW):
        return smaller, optimizer.narrowed(smaller.parameters(), positions)
    group = optimizer.param_groups[0]
    replacement = torch.optim.AdamW(
        smaller.parameters(),
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        betas=group["betas"],
        eps=group["eps"],
        fused=group["fused"],
    )
    index = torch.tensor(positions, device=model.w1.device)
    for old, new in zip(model.parameters(), smaller.parameters(), strict=True):
        replacement.state[new] = {
            key: value.index_select(0, index) if key in ("exp_avg", "exp_avg_sq") else value.clone()
            for key, value in optimizer.state[old].items()
        }
    return smaller, replacement


def _member_losses(
    model: StackedCompositionNets,
    x: torch.Tensor,
    y_class: torch.Tensor,
    y_metal: torch.Tensor,
    keep: torch.Tensor | None,
    keep_scale: float,
    config: TrainConfig,
) -> torch.Tensor:
    """Each member's training loss on its own batch, [K]: cross-entropy + metal_loss_weight x MSE."""
    logits, metal = model(x, keep, keep_scale)
    members, batch, classes = logits.shape
    cross_entropy = nn.functional.cross_entropy(
        logits.float().reshape(members * batch, classes),
        y_class.reshape(-1),
        label_smoothing=config.label_smoothing,
        reduction="none",
    ).reshape(members, batch)
    mse = (metal.float() - y_metal).pow(2)
    return cross_entropy.mean(dim=1) + config.metal_loss_weight * mse.mean(dim=1)


@torch.no_grad()
def predict(
    model: CompositionNet, x: np.ndarray, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness for a feature matrix."""
    device = device or next(model.parameters()).device
    model.eval()
    logits, metal = model(torch.as_tensor(x, dtype=torch.float32, device=device))
    return torch.softmax(logits.float(), dim=-1).cpu().numpy(), metal.float().cpu().numpy()
