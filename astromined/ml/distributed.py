"""Data-parallel training of `CompositionNet` with torch DistributedDataParallel (DDP) on one host.

Usage::

    result = train_distributed(architecture, x_train, y_class_train, y_metal_train,
                               x_val, y_class_val, y_metal_val, workers=4, device_type="cuda",
                               config=TrainConfig(...), on_epoch=log_epoch)

It returns what `train_model` returns (a `DistributedTrainResult`, a subclass of `TrainResult`), with the
model on the CPU and in eval mode. `workers == 1` simply calls `train_model` (no processes, no process
group), so its result equals `train_model`'s exactly.

How it works, for `workers > 1`:

- `workers` processes are started with torch.multiprocessing's *spawn* context. They rendezvous on
  127.0.0.1 at a free port (MASTER_ADDR / MASTER_PORT) and Gloo/NCCL are pinned to the loopback interface
  (GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME), so nothing listens on any other address. Each worker uses a
  single torch thread.
- `device_type="cpu"` uses the Gloo backend; `device_type="cuda"` uses NCCL with one GPU per rank (rank r
  on cuda:r), so `workers` must not exceed `torch.cuda.device_count()`, and mixed precision (fp16 autocast
  plus a gradient scaler) is used as in `train_model`. NCCL needs a distinct GPU per rank: two ranks on one
  GPU are refused. GPU runs are not bitwise reproducible (cuBLAS/NCCL reductions); CPU/Gloo runs are.
- Every rank builds the model from the same seed and computes the normalization buffers from the FULL
  training set; DDP's initial broadcast then makes rank 0's parameters and buffers authoritative, so all
  replicas start identical and stay identical (gradients are averaged by all-reduce).
- Each epoch the training rows are permuted with a generator seeded by (seed, epoch) and dealt out
  DistributedSampler-style (`shard_indices`): equal-sized shards, padded by wrapping around, so every rank
  runs the same number of steps. `config.batch_size` is the GLOBAL batch: each rank takes
  ceil(batch_size / workers) rows per step, so a TrainConfig means the same optimisation on any number of
  workers.
- The validation set is split across ranks; the loss sums are all-reduced, so every rank sees the same
  validation loss. Rank 0 takes the early-stopping decision and broadcasts it, so all ranks stop at the
  same epoch (`rank_epochs_run` records each rank's count).
- Rank 0 keeps the best state, and sends it (CPU tensors, unwrapped module) with the history to the
  parent through a pipe. Epoch records are forwarded as they happen, and `on_epoch` is called in the
  calling process. Every process group is destroyed in a `finally`.
- If a worker raises, the parent raises `RuntimeError("distributed training failed on rank R: ...")`
  with the worker's traceback; the remaining workers are given a short grace period and then terminated,
  so no process outlives the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import io
import logging
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import wait

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.train import (
    TrainConfig,
    TrainResult,
    _loss,
    calibrate_temperature,
    train_model,
    validation_criterion,
)

LOG = logging.getLogger(__name__)
LOOPBACK_ADDRESS = "127.0.0.1"
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}
DEFAULT_CONFIG = TrainConfig()


@dataclasses.dataclass(frozen=True)
class DistributedTrainResult(TrainResult):
    workers: int = 1
    backend: str = ""
    rank_epochs_run: tuple[int, ...] = ()  # epochs each rank ran: all equal by construction
    rank_best_epochs: tuple[int, ...] = ()  # best epoch as seen by each rank: all equal
    rank_weight_digests: tuple[str, ...] = ()  # sha256 of each rank's final weights: equal replicas
    wall_seconds: float = 0.0  # including process start-up and rendezvous


def shard_indices(n_rows: int, rank: int, world_size: int, seed: int, epoch: int) -> np.ndarray:
    """Rows of the training set that `rank` trains on in `epoch` (DistributedSampler semantics).

    A permutation seeded by (seed, epoch), padded by wrapping around to a multiple of `world_size`, then
    every world_size-th row from offset `rank`: the shards are disjoint up to the padding, cover every row,
    and have equal sizes.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    if n_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    order = np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(n_rows)
    padded = np.resize(order, math.ceil(n_rows / world_size) * world_size)
    return padded[rank::world_size].astype(np.int64)


def train_distributed(
    architecture: ArchitectureConfig,
    x_train: np.ndarray,
    y_class_train: np.ndarray,
    y_metal_train: np.ndarray,
    x_val: np.ndarray,
    y_class_val: np.ndarray,
    y_metal_val: np.ndarray,
    workers: int,
    device_type: str = "cpu",
    config: TrainConfig = DEFAULT_CONFIG,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    *,
    collective_timeout_s: float = 600.0,
    shutdown_grace_s: float = 10.0,
) -> TrainResult:
    """Train on `workers` data-parallel processes; see the module docstring."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if device_type not in BACKENDS:
        raise ValueError(f"device_type must be one of {sorted(BACKENDS)}, not {device_type!r}")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"empty split: {len(x_train)} training and {len(x_val)} validation rows")
    if workers > 1 and config.ensemble_members > 1:
        raise ValueError(
            f"data-parallel training (workers={workers}) trains one network, not an ensemble of "
            f"{config.ensemble_members}: set ensemble_members=1 to train data-parallel, or workers=1"
        )
    if device_type == "cuda" and workers > torch.cuda.device_count():
        raise ValueError(
            f"{workers} NCCL workers need {workers} GPUs (one per rank); {torch.cuda.device_count()} visible"
        )
    if workers == 1:
        device = torch.device("cuda") if device_type == "cuda" else torch.device("cpu")
        return train_model(
            architecture,
            x_train,
            y_class_train,
            y_metal_train,
            x_val,
            y_class_val,
            y_metal_val,
            device,
            config,
            on_epoch,
        )
    arrays = tuple(
        np.ascontiguousarray(a)
        for a in (x_train, y_class_train, y_metal_train, x_val, y_class_val, y_metal_val)
    )
    result = _launch(
        architecture, arrays, workers, device_type, config, on_epoch, collective_timeout_s, shutdown_grace_s
    )
    if config.temperature_scaling:  # as train_model does, on the full validation set, in this process
        result = dataclasses.replace(
            result, temperature=calibrate_temperature(result.model, x_val, y_class_val)
        )
    return result


# ---------------------------------------------------------------------------------------------- parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_ADDRESS, 0))
        return probe.getsockname()[1]


def _launch(
    architecture: ArchitectureConfig,
    arrays: tuple[np.ndarray, ...],
    workers: int,
    device_type: str,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None,
    collective_timeout_s: float,
    shutdown_grace_s: float,
) -> DistributedTrainResult:
    started = time.perf_counter()
    ctx = torch_mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    lock = ctx.Lock()  # one shared pipe: messages arrive in the order the workers finished sending them
    port = _free_port()
    processes = []
    done: dict[int, dict] = {}
    errors: list[tuple[int, str, str]] = []  # (rank, summary, traceback), in order of arrival
    try:
        for rank in range(workers):
            process = ctx.Process(
                target=_worker,
                args=(
                    rank,
                    workers,
                    port,
                    device_type,
                    architecture,
                    arrays,
                    config,
                    writer,
                    lock,
                    collective_timeout_s,
                ),
                name=f"astromined-ddp-rank{rank}",
                daemon=True,
            )
            process.start()
            processes.append(process)
        writer.close()

        open_pipe = [reader]

        def drain() -> None:
            while open_pipe and reader.poll():
                try:
                    kind, rank, payload = reader.recv()
                except EOFError:  # every worker has closed its end
                    open_pipe.clear()
                    return
                if kind == "epoch":
                    if on_epoch is not None:
                        on_epoch(payload)
                elif kind == "done":
                    done[rank] = payload
                else:
                    errors.append((rank, payload[0], payload[1]))

        while len(done) < workers and not errors:
            wait([*open_pipe, *(p.sentinel for p in processes if p.exitcode is None)], timeout=1.0)
            drain()
            for rank, process in enumerate(processes):
                if process.exitcode is not None and rank not in done and not errors:
                    drain()  # whatever it sent before exiting is already in the pipe
                    if rank not in done and not any(r == rank for r, _, _ in errors):
                        errors.append((rank, f"worker exited with code {process.exitcode} and no result", ""))
        if errors:
            deadline = time.monotonic() + shutdown_grace_s
            for process in processes:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
            drain()
            rank, summary, trace = errors[0]
            others = "".join(f"\n(then rank {r}: {s})" for r, s, _ in errors[1:] if r != rank)
            raise RuntimeError(
                f"distributed training failed on rank {rank}: {summary}{others}"
                + (f"\nworker traceback:\n{trace}" if trace else "")
            )
        for process in processes:
            process.join(timeout=shutdown_grace_s)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=5.0)
        reader.close()
        writer.close()
    return _assemble(architecture, done, workers, device_type, time.perf_counter() - started)


def _assemble(
    architecture: ArchitectureConfig, done: dict[int, dict], workers: int, device_type: str, wall: float
) -> DistributedTrainResult:
    lead = done[0]
    if lead["state"] is None:
        raise RuntimeError(f"training diverged: validation loss was never finite ({lead['history'][-1]})")
    model = CompositionNet(architecture)
    model.load_state_dict(torch.load(io.BytesIO(lead["state"]), map_location="cpu", weights_only=True))
    model.eval()
    ranks = range(workers)
    digests = tuple(done[r]["digest"] for r in ranks)
    if len(set(digests)) != 1:
        LOG.warning("data-parallel replicas ended with different weights: %s", digests)
    elapsed = lead["train_seconds"]
    return DistributedTrainResult(
        model=model,
        best_epoch=lead["best_epoch"],
        epochs_run=lead["epochs_run"],
        best_validation_loss=lead["best_loss"],
        train_seconds=elapsed,
        samples_per_second=lead["samples"] / elapsed if elapsed > 0 else float("nan"),
        history=lead["history"],
        workers=workers,
        backend=BACKENDS[device_type],
        rank_epochs_run=tuple(done[r]["epochs_run"] for r in ranks),
        rank_best_epochs=tuple(done[r]["best_epoch"] for r in ranks),
        rank_weight_digests=digests,
        wall_seconds=wall,
    )


# ---------------------------------------------------------------------------------------------- worker


def _loopback_interface() -> str | None:
    names = [name for _, name in socket.if_nameindex()]
    for candidate in ("lo", "lo0"):
        if candidate in names:
            return candidate
    return next((name for name in names if name.startswith("lo")), None)


def _send(writer, lock, message: tuple) -> None:
    with lock:
        writer.send(message)


def _worker(
    rank: int,
    world_size: int,
    port: int,
    device_type: str,
    architecture: ArchitectureConfig,
    arrays: tuple[np.ndarray, ...],
    config: TrainConfig,
    writer,
    lock,
    collective_timeout_s: float,
) -> None:
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # settable only before any inter-op work (none yet here)
        torch.set_num_interop_threads(1)
    os.environ.update(
        MASTER_ADDR=LOOPBACK_ADDRESS, MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size)
    )
    interface = _loopback_interface()
    if interface is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = interface
        os.environ["NCCL_SOCKET_IFNAME"] = f"={interface}"
    initialised = False
    try:
        if device_type == "cuda":
            torch.cuda.set_device(rank)
            device = torch.device("cuda", rank)
        else:
            device = torch.device("cpu")
        dist.init_process_group(
            BACKENDS[device_type],
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=collective_timeout_s),
            device_id=device if device_type == "cuda" else None,
        )
        initialised = True
        result = _train_rank(rank, world_size, device, architecture, arrays, config, writer, lock)
        _send(writer, lock, ("done", rank, result))
    except BaseException as exc:
        # Sent before the process group goes away, so the root cause reaches the parent before the
        # other ranks' "peer closed the connection" errors.
        try:
            _send(writer, lock, ("error", rank, (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
        finally:
            sys.exit(1)
    finally:
        if initialised:
            dist.destroy_process_group()
        writer.close()


def _weights_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _train_rank(
    rank: int,
    world_size: int,
    device: torch.device,
    architecture: ArchitectureConfig,
    arrays: tuple[np.ndarray, ...],
    config: TrainConfig,
    writer,
    lock,
) -> dict:
    x_train, y_class_train, y_metal_train, x_val, y_class_val, y_metal_val = arrays
    # Same seed on every rank: identical initial weights (and DDP broadcasts rank 0's anyway).
    torch.manual_seed(config.seed)
    model = CompositionNet(architecture)
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    # Normalization from the FULL training set, exactly as train_model computes it.
    model.set_normalization(xt.mean(dim=0), xt.std(dim=0, correction=1 if len(xt) > 1 else 0))
    model.to(device)
    # Independent dropout masks per rank from here on.
    torch.manual_seed(int(np.random.SeedSequence([config.seed, rank]).generate_state(1)[0]))
    # Buffers (the normalization) are constant: synced from rank 0 once at construction, not every step.
    ddp = DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False
    )

    xt = xt.to(device)
    yct = torch.tensor(y_class_train, dtype=torch.long, device=device)
    ymt = torch.tensor(y_metal_train, dtype=torch.float32, device=device)
    val_rows = np.array_split(np.arange(len(x_val)), world_size)[rank]
    xv = torch.as_tensor(x_val[val_rows], dtype=torch.float32, device=device)
    ycv = torch.tensor(y_class_val[val_rows], dtype=torch.long, device=device)
    ymv = torch.tensor(y_metal_val[val_rows], dtype=torch.float32, device=device)
    n_val = len(x_val)

    optimizer = torch.optim.AdamW(ddp.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    batch_size = max(1, math.ceil(config.batch_size / world_size))  # config.batch_size is the global batch
    best_loss, best_epoch, best_state = float("inf"), -1, None
    history: list[dict[str, float]] = []
    samples = 0
    started = time.perf_counter()
    epoch = 0
    for epoch in range(config.max_epochs):
        ddp.train()
        shard = torch.as_tensor(shard_indices(len(xt), rank, world_size, config.seed, epoch), device=device)
        # Summed on the device: a float() per batch would wait for the GPU after every step.
        train_loss = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, len(shard), batch_size):
            batch = shard[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = _loss(
                    ddp, xt[batch], yct[batch], ymt[batch], config.metal_loss_weight, config.label_smoothing
                )
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            train_loss.add_(loss.detach(), alpha=len(batch))
        ddp.eval()
        with torch.no_grad():
            if len(xv):
                logits, metal = model(xv)
                ce = nn.functional.cross_entropy(logits.float(), ycv, reduction="sum")
                se = nn.functional.mse_loss(metal.float(), ymv, reduction="sum")
            else:
                ce = se = torch.zeros((), device=device)
        sums = torch.stack([ce.double(), se.double(), train_loss])
        dist.all_reduce(sums)  # identical on every rank
        ce_sum, se_sum, train_sum = sums.tolist()
        samples += len(shard) * world_size
        val_loss = validation_criterion(ce_sum / n_val, se_sum / n_val, config)  # as train_model selects
        record = {
            "epoch": float(epoch),
            "train_loss": train_sum / (len(shard) * world_size),
            "validation_loss": val_loss,
            "validation_cross_entropy": ce_sum / n_val,
            "validation_metal_mse": se_sum / n_val,
        }
        history.append(record)
        if rank == 0:
            _send(writer, lock, ("epoch", rank, record))
        stop = False
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch = val_loss, epoch
            if rank == 0:
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            stop = True
        decision = torch.tensor([int(stop)], dtype=torch.int64, device=device)
        dist.broadcast(decision, src=0)  # rank 0 decides, so every rank stops at the same epoch
        if int(decision.item()):
            break
    elapsed = time.perf_counter() - started
    result = {
        "epochs_run": epoch + 1,
        "best_epoch": best_epoch,
        "digest": _weights_digest(model),
    }
    if rank == 0:
        state = None
        if best_state is not None:
            buffer = io.BytesIO()
            torch.save(best_state, buffer)
            state = buffer.getvalue()
        result |= {
            "state": state,
            "best_loss": best_loss,
            "history": history,
            "samples": samples,
            "train_seconds": elapsed,
        }
    return result
