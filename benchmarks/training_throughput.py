"""Training throughput of astromined.ml.train.train_model against a bare torch loop doing the same training.

Usage:  .venv/bin/python benchmarks/training_throughput.py [--rows 20000] [--epochs 3] [--rounds 20]
                                                           [--profile]

Data: model inputs of a simulated training set. A simulated day (``--satellites`` × ``--observations``,
fleet simulator, CCSDS, ``ingest_day``) is calibrated and aggregated by ``aggregate_by_asteroid`` and
turned into ``model_inputs``; labels (complex, metal richness) come from the simulated population. ``--rows``
asteroids train, 15 % as many validate (the training_set split proportions).

Both sides train a fresh CompositionNet (default ArchitectureConfig over MODEL_FEATURES and COMPLEXES) on
the CPU with the same seed, batch size, AdamW settings, loss and number of epochs:
  train_model  astromined.ml.train.train_model with patience = max_epochs (no early stop), as the
               candidate_model asset calls it (per-epoch validation, best-state bookkeeping and all),
  bare         the textbook loop: randperm, index the batch, zero_grad, forward, loss, backward, step.
Before timing, one verification run of each checks that the two do the same optimisation (the bare loop
then also records its per-epoch training loss, which must equal train_model's history). The timed runs
alternate (``--rounds`` of each, the order swapped every round) with torch.set_num_threads(1) and with
torch's default thread count (one thread pinned to one core). Reported: samples/s (training rows × epochs /
wall time) of each side, best and median, and the ratio train_model / bare in samples/s (1.0 = as fast;
the bar is ≥ 0.90): of the best runs, of the medians, and the median over rounds of the ratio within a
back-to-back pair (the most robust of the three on a machine whose speed drifts), and that paired ratio
in process CPU time (blind to time spent descheduled). ``--profile`` adds a
torch.profiler table of one train_model run and of one bare run (one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from astromined.features.engineering import MODEL_FEATURES, aggregate_by_asteroid, model_inputs  # noqa: E402
from astromined.ml.model import ArchitectureConfig, CompositionNet  # noqa: E402
from astromined.ml.train import TrainConfig, train_model  # noqa: E402
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES  # noqa: E402

DAY = dt.date(2026, 6, 15)


@dataclasses.dataclass(frozen=True)
class Data:
    x_train: np.ndarray
    y_class_train: np.ndarray
    y_metal_train: np.ndarray
    x_val: np.ndarray
    y_class_val: np.ndarray
    y_metal_val: np.ndarray


def simulated_training_set(rows: int, satellites: int, observations: int, seed: int = 42) -> Data:
    from astromined.sim.downlink import simulate_satellite_day
    from astromined.sim.instrument import nominal_response
    from astromined.sim.population import generate_population
    from astromined.telemetry.ingest import ingest_day

    validation_rows = round(rows * 0.15)
    population = generate_population(int((rows + validation_rows) * 1.25), seed)
    downlinks = [
        simulate_satellite_day(population, DAY, satellite, observations, seed)
        for satellite in range(1, satellites + 1)
    ]
    day = ingest_day(DAY, [(d.file_name, lambda d=d: d.data) for d in downlinks])
    features = aggregate_by_asteroid(day.observations, nominal_response(seed))
    truth = population.table.set_index("asteroid_id").loc[features["asteroid_id"]]
    if len(features) < rows + validation_rows:
        raise SystemExit(
            f"the simulated day has {len(features)} asteroids, fewer than {rows + validation_rows}:"
            " raise --observations"
        )
    x = model_inputs(features)
    y_class = truth["complex"].map(COMPLEX_INDEX).to_numpy(np.int64)
    y_metal = truth["metal_richness"].to_numpy(np.float32)
    pick = np.random.default_rng(seed).permutation(len(x))
    train, val = pick[:rows], pick[rows : rows + validation_rows]
    return Data(x[train], y_class[train], y_metal[train], x[val], y_class[val], y_metal[val])


def architecture() -> ArchitectureConfig:
    return ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES)


def run_train_model(data: Data, config: TrainConfig) -> tuple[float, list[float]]:
    started = time.perf_counter()
    result = train_model(
        architecture(),
        data.x_train,
        data.y_class_train,
        data.y_metal_train,
        data.x_val,
        data.y_class_val,
        data.y_metal_val,
        device=torch.device("cpu"),
        config=config,
    )
    elapsed = time.perf_counter() - started
    assert result.epochs_run == config.max_epochs, "early stopping cut the run short"
    return elapsed, [record["train_loss"] for record in result.history]


def run_bare(data: Data, config: TrainConfig, record_loss: bool = False) -> tuple[float, list[float]]:
    """The same optimisation, written as the minimal loop (same seeds, model, optimizer, loss)."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = CompositionNet(architecture())
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    model.set_normalization(x.mean(dim=0), x.std(dim=0))
    y_class = torch.as_tensor(data.y_class_train, dtype=torch.long)
    y_metal = torch.as_tensor(data.y_metal_train, dtype=torch.float32)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model.train()
    losses = []
    for _ in range(config.max_epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            logits, metal = model(x[batch])
            loss = nn.functional.cross_entropy(
                logits, y_class[batch]
            ) + config.metal_loss_weight * nn.functional.mse_loss(metal, y_metal[batch])
            loss.backward()
            optimizer.step()
            if record_loss:
                total += float(loss.detach()) * len(batch)
        losses.append(total / len(x))
    return time.perf_counter() - started, losses


def verify(data: Data, config: TrainConfig) -> None:
    _, reference = run_train_model(data, config)
    _, bare = run_bare(data, config, record_loss=True)
    if not np.allclose(reference, bare, rtol=1e-5, atol=0.0):
        raise AssertionError(f"the loops do not train the same way: {reference} vs {bare}")


def measure(data: Data, config: TrainConfig, rounds: int) -> dict:
    samples = len(data.x_train) * config.max_epochs
    seconds: dict[str, list[float]] = {"train_model": [], "bare": []}
    cpu_seconds: dict[str, list[float]] = {"train_model": [], "bare": []}
    run_train_model(data, config)  # warm up allocator and kernels
    run_bare(data, config)
    for round_ in range(rounds):
        sides = ["train_model", "bare"] if round_ % 2 == 0 else ["bare", "train_model"]
        for side in sides:
            runner = run_train_model if side == "train_model" else run_bare
            cpu_started = time.process_time()
            seconds[side].append(runner(data, config)[0])
            cpu_seconds[side].append(time.process_time() - cpu_started)
    out = {"threads": torch.get_num_threads(), "samples_per_run": samples}
    for side, values in seconds.items():
        out[side] = {
            "best_samples_per_s": samples / min(values),
            "median_samples_per_s": samples / statistics.median(values),
            "seconds": values,
        }
    out["ratio_best"] = out["train_model"]["best_samples_per_s"] / out["bare"]["best_samples_per_s"]
    out["ratio_median"] = out["train_model"]["median_samples_per_s"] / out["bare"]["median_samples_per_s"]
    # The machine's speed drifts between runs; the ratio within each back-to-back pair cancels most of it.
    paired = [b / t for t, b in zip(seconds["train_model"], seconds["bare"], strict=True)]
    out["ratio_paired_median"] = statistics.median(paired)
    out["ratio_paired_quartiles"] = statistics.quantiles(paired, n=4)[::2] if len(paired) > 1 else paired * 2
    # CPU seconds (all threads) are blind to time spent descheduled, the main noise on a shared machine.
    out["cpu_ratio_paired_median"] = statistics.median(
        b / t for t, b in zip(cpu_seconds["train_model"], cpu_seconds["bare"], strict=True)
    )
    out["cpu_seconds"] = cpu_seconds
    return out


def profile(data: Data, config: TrainConfig) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name, runner in (("train_model", run_train_model), ("bare", run_bare)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            runner(data, config)
        print(f"\n--- profile of {name} (one thread) ---")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (validation: 15 %% as many)")
    parser.add_argument("--satellites", type=int, default=500)
    parser.add_argument("--observations", type=int, default=200, help="per satellite for the simulated day")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--rounds", type=int, default=20, help="timed runs of each side per thread setting")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        help="torch thread counts to measure (default: 1 and torch's default)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    data = simulated_training_set(args.rows, args.satellites, args.observations)
    config = TrainConfig(max_epochs=args.epochs, patience=args.epochs, batch_size=args.batch_size)
    print(
        f"{len(data.x_train):,} training and {len(data.x_val):,} validation rows × {data.x_train.shape[1]}"
        f" features; {args.epochs} epochs of batches of {config.batch_size}",
        flush=True,
    )
    torch.set_num_threads(1)
    verify(data, config)
    print("verified: the bare loop's per-epoch training loss equals train_model's history", flush=True)
    results = []
    all_cores = os.sched_getaffinity(0)
    for threads in args.threads or (1, default_threads):
        # One thread runs pinned to one core (no migrations); the default uses every core it may.
        os.sched_setaffinity(0, set(sorted(all_cores)[:1]) if threads == 1 else all_cores)
        torch.set_num_threads(threads)
        r = measure(data, config, args.rounds)
        results.append(r)
        print(
            f"  {threads} thread(s): train_model {r['train_model']['best_samples_per_s']:,.0f} samples/s"
            f" (median {r['train_model']['median_samples_per_s']:,.0f}),"
            f" bare {r['bare']['best_samples_per_s']:,.0f} samples/s"
            f" (median {r['bare']['median_samples_per_s']:,.0f})"
            f" → train_model / bare: best {r['ratio_best']:.3f}, median {r['ratio_median']:.3f},"
            f" paired median {r['ratio_paired_median']:.3f}"
            f" (quartiles {r['ratio_paired_quartiles'][0]:.3f}–{r['ratio_paired_quartiles'][1]:.3f});"
            f" in CPU time, paired median {r['cpu_ratio_paired_median']:.3f}",
            flush=True,
        )
    if args.profile:
        os.sched_setaffinity(0, set(sorted(all_cores)[:1]))
        torch.set_num_threads(1)
        profile(data, config)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
