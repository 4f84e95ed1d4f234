"""Training throughput of astromined.ml.train.train_model: against a bare torch loop doing the same training
(``loop``), and a seed ensemble trained stacked against its members trained one after another (``ensemble``).

Usage:  .venv/bin/python benchmarks/training_throughput.py [--sections loop ensemble] [--rows 20000]
            [--epochs 3] [--rounds 20] [--threads 1 ...] [--profile]
            [--members 3 5] [--ensemble-rounds 20] [--before 1aae9d4]

Data: model inputs of a simulated training set. A simulated day (``--satellites`` × ``--observations``,
fleet simulator, CCSDS, ``ingest_day``) is calibrated and aggregated by ``aggregate_by_asteroid`` and
turned into ``model_inputs``; labels (complex, metal richness) come from the simulated population. ``--rows``
asteroids train, 15 % as many validate (the training_set split proportions).

Section ``loop``. Both sides train one fresh CompositionNet (default ArchitectureConfig over MODEL_FEATURES
and COMPLEXES) on the CPU with the same seed, batch size, AdamW settings, loss and number of epochs:
  train_model  astromined.ml.train.train_model with ensemble_members = 1 and patience = max_epochs (no
               early stop): per-epoch validation, best-state bookkeeping, temperature scaling and all; the
               one network goes through the stacked module, ``astromined.ml.stacked``, with K = 1,
  bare         the textbook loop for one network: each epoch a randperm from a CPU generator seeded with the
               seed and the dropout keep-masks from a generator seeded ``seed ^ MemberStreams.DROPOUT_STREAM``
               (drawn as MemberStreams draws them), then per batch: index, zero_grad, a forward through the
               CompositionNet's own layers (normalize, body[0], relu, × keep-mask × 1/(1-p), body[3], relu,
               class_head + wide, sigmoid(metal_head)), cross-entropy with label smoothing + metal weight ×
               MSE, backward, AdamW(fused=True) step.
Before timing, one verification run of each checks that the two do the same optimisation: the bare loop
then also records its per-epoch training loss, which must equal train_model's history to a relative 1e-5
(not exactly: the same arithmetic in another order. train_model's layers are batched matmuls over a member
axis, ``baddbmm`` on transposed weights, the bare loop's ``nn.Linear``, so float32 rounding differs in the
last bits; over 3 epochs that measured 1e-8 relative here, and up to 3e-6 between a member stacked with two
others and alone. The smallest change of the optimisation tried, weight decay 0 instead of 1e-4, moved the
losses by 5e-5; another seed by 8e-3). The timed runs alternate (``--rounds`` of each, the order swapped
every round) with torch.set_num_threads(1) and with torch's default thread count (one thread pinned to one
core). Reported: samples/s (training rows × epochs / wall time) of each side, best and median, and the
ratio train_model / bare in samples/s (1.0 = as fast; the bar is ≥ 0.90): of the best runs, of the medians,
and the median over rounds of the ratio within a back-to-back pair (the most robust of the three on a
machine whose speed drifts), and that paired ratio in process CPU time (blind to time spent descheduled).
``--profile`` adds a torch.profiler table of one train_model run and of one bare run (one thread).

Section ``ensemble``. A seed ensemble of K (``--members``) networks, the same data and epochs (patience =
max_epochs: every member runs every epoch), one torch thread pinned to one core, three sides:
  stacked     train_model with ensemble_members = K: the K members in one module, one pass per batch,
  sequential  today's code one network after another: K calls of train_model with ensemble_members = 1 and
              the member seeds (``member_seeds``), merged by ``merge_ensemble``; each call is the same code
              path with K = 1, so this isolates stacking (same optimizer, same random streams),
  before      train_model of the commit before stacking (``--before``, read with ``git show`` into a temporary
              module): its members one after another, nn.Dropout, unfused AdamW; the honest "before".
Temperature scaling is off on all three sides (it is not training, and its own change, a binary search
instead of a 601-point scan, would otherwise count as stacking's). A verification run first checks that
stacked member k records the same per-epoch training loss as sequential call k (relative 1e-5, as above): the
members follow the paths they would alone. The timed runs rotate the three sides' order every round
(``--ensemble-rounds``); reported: network-rows/s (training rows × epochs × K / wall time) of each side, best
and median, and the paired ratios stacked / sequential and stacked / before (median over rounds of the
ratio within a round, quartiles), in wall time and in process CPU time.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from astromined.features.engineering import MODEL_FEATURES, aggregate_by_asteroid, model_inputs  # noqa: E402
from astromined.ml.model import ArchitectureConfig, CompositionNet, merge_ensemble  # noqa: E402
from astromined.ml.stacked import MemberStreams  # noqa: E402
from astromined.ml.train import TrainConfig, member_seeds, train_model  # noqa: E402
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES  # noqa: E402

DAY = dt.date(2026, 6, 15)
# The last commit whose train_model trained an ensemble's members one after another.
BEFORE_STACKING = "1aae9d4"
# Per-epoch training losses that differ only by float32 rounding order (see the docstring).
LOSS_RTOL = 1e-5


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


def call_train_model(train: Callable, data: Data, config) -> tuple[float, object]:
    """Wall seconds of one call of a train_model (today's, or the one before stacking) and its result."""
    started = time.perf_counter()
    result = train(
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
    return time.perf_counter() - started, result


def run_train_model(data: Data, config: TrainConfig) -> tuple[float, list[float]]:
    elapsed, result = call_train_model(train_model, data, config)
    assert result.epochs_run == config.max_epochs, "early stopping cut the run short"
    return elapsed, [record["train_loss"] for record in result.history]


def run_bare(data: Data, config: TrainConfig, record_loss: bool = False) -> tuple[float, list[float]]:
    """The same optimisation of one network, written as the minimal loop (same seeds, random streams,
    layers, loss and optimizer as train_model)."""
    started = time.perf_counter()
    net = architecture()
    torch.manual_seed(config.seed)
    model = CompositionNet(net)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    model.set_normalization(x.mean(dim=0), x.std(dim=0))
    y_class = torch.as_tensor(data.y_class_train, dtype=torch.long)
    y_metal = torch.as_tensor(data.y_metal_train, dtype=torch.float32)
    order_generator = torch.Generator().manual_seed(config.seed)
    dropout_generator = torch.Generator().manual_seed(config.seed ^ MemberStreams.DROPOUT_STREAM)
    keep_probability = 1.0 - net.dropout
    keep_scale = 1.0 / keep_probability
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    first, second = model.body[0], model.body[3]
    losses = []
    for _ in range(config.max_epochs):
        order = torch.randperm(len(x), generator=order_generator)
        # Row i of the epoch's order gets keep-mask row i.
        keep = torch.rand((len(x), net.hidden), generator=dropout_generator) < keep_probability
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            z = model.normalize(x[batch])
            hidden = torch.relu(first(z)) * keep[start : start + config.batch_size] * keep_scale
            hidden = torch.relu(second(hidden))
            logits = model.class_head(hidden) + model.wide(z)
            metal = torch.sigmoid(model.metal_head(hidden)).squeeze(-1)
            loss = nn.functional.cross_entropy(
                logits, y_class[batch], label_smoothing=config.label_smoothing
            ) + config.metal_loss_weight * nn.functional.mse_loss(metal, y_metal[batch])
            loss.backward()
            optimizer.step()
            if record_loss:
                total.add_(loss.detach(), alpha=len(batch))
        losses.append(float(total) / len(x))
    return time.perf_counter() - started, losses


def relative_difference(reference: list[float], other: list[float]) -> float:
    if len(reference) != len(other):
        return float("inf")
    return max(abs(a - b) / abs(a) for a, b in zip(reference, other, strict=True))


def verify(data: Data, config: TrainConfig) -> float:
    """Raises unless the bare loop's per-epoch training loss is train_model's; returns the largest relative
    difference."""
    _, reference = run_train_model(data, config)
    _, bare = run_bare(data, config, record_loss=True)
    difference = relative_difference(reference, bare)
    if not difference <= LOSS_RTOL:
        raise AssertionError(f"the loops do not train the same way: {reference} vs {bare}")
    return difference


def alternate(runners: dict[str, Callable[[], float]], rounds: int) -> tuple[dict, dict]:
    """Wall and process-CPU seconds of ``rounds`` runs of each side, the sides' order rotated every round
    (two sides: swapped), after one warm-up run of each (allocator, kernels)."""
    for runner in runners.values():
        runner()
    names = list(runners)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            cpu_started = time.process_time()
            seconds[name].append(runners[name]())
            cpu_seconds[name].append(time.process_time() - cpu_started)
    return seconds, cpu_seconds


def paired(numerator: list[float], denominator: list[float]) -> tuple[float, list[float]]:
    """Median and quartiles over rounds of numerator / denominator within each round."""
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else ratios * 2
    return statistics.median(ratios), quartiles


def measure(data: Data, config: TrainConfig, rounds: int) -> dict:
    samples = len(data.x_train) * config.max_epochs
    seconds, cpu_seconds = alternate(
        {
            "train_model": lambda: run_train_model(data, config)[0],
            "bare": lambda: run_bare(data, config)[0],
        },
        rounds,
    )
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
    ratio, quartiles = paired(seconds["bare"], seconds["train_model"])
    out["ratio_paired_median"], out["ratio_paired_quartiles"] = ratio, quartiles
    # CPU seconds (all threads) are blind to time spent descheduled, the main noise on a shared machine.
    out["cpu_ratio_paired_median"], _ = paired(cpu_seconds["bare"], cpu_seconds["train_model"])
    out["cpu_seconds"] = cpu_seconds
    return out


def load_before(commit: str) -> ModuleType:
    """astromined/ml/train.py as of ``commit`` (git show), imported under its own module name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:astromined/ml/train.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = "astromined_train_before_stacking"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module


def ensemble_sides(data: Data, config: TrainConfig, members: int, before: ModuleType | None) -> dict:
    """The sides of the ensemble section: each trains ``members`` networks, returns its wall seconds."""
    stacked_config = dataclasses.replace(config, ensemble_members=members, temperature_scaling=False)

    def stacked() -> float:
        elapsed, result = call_train_model(train_model, data, stacked_config)
        assert result.member_epochs_run == (config.max_epochs,) * members, "a member stopped early"
        return elapsed

    def sequential() -> float:
        started = time.perf_counter()
        nets = []
        for seed in member_seeds(config.seed, members):
            member_config = dataclasses.replace(
                config, seed=seed, ensemble_members=1, temperature_scaling=False
            )
            _, result = call_train_model(train_model, data, member_config)
            assert result.epochs_run == config.max_epochs, "a member stopped early"
            nets.append(result.model)
        merge_ensemble(nets)
        return time.perf_counter() - started

    sides = {"stacked": stacked, "sequential": sequential}
    if before is not None:
        fields = {f.name for f in dataclasses.fields(before.TrainConfig)}
        before_config = before.TrainConfig(
            **{name: value for name, value in dataclasses.asdict(stacked_config).items() if name in fields}
        )

        def previous() -> float:
            elapsed, result = call_train_model(before.train_model, data, before_config)
            assert result.epochs_run == config.max_epochs * members, "a member stopped early"
            return elapsed

        sides["before"] = previous
    return sides


def verify_ensemble(data: Data, config: TrainConfig, members: int) -> float:
    """Raises unless stacked member k's per-epoch training loss is that of network k trained alone; returns
    the largest relative difference."""
    stacked_config = dataclasses.replace(config, ensemble_members=members, temperature_scaling=False)
    _, result = call_train_model(train_model, data, stacked_config)
    difference = 0.0
    for member, seed in enumerate(member_seeds(config.seed, members)):
        stacked = [r["train_loss"] for r in result.history if r["member"] == member]
        alone_config = dataclasses.replace(config, seed=seed, ensemble_members=1, temperature_scaling=False)
        _, alone = call_train_model(train_model, data, alone_config)
        alone_losses = [r["train_loss"] for r in alone.history]
        difference = max(difference, relative_difference(alone_losses, stacked))
        if not difference <= LOSS_RTOL:
            raise AssertionError(f"member {member} trains differently stacked: {stacked} vs {alone_losses}")
    return difference


def measure_ensemble(data: Data, config: TrainConfig, members: int, rounds: int, before) -> dict:
    samples = len(data.x_train) * config.max_epochs * members  # network-rows
    seconds, cpu_seconds = alternate(ensemble_sides(data, config, members, before), rounds)
    out: dict = {"members": members, "threads": torch.get_num_threads(), "network_rows_per_run": samples}
    for side, values in seconds.items():
        out[side] = {
            "best_rows_per_s": samples / min(values),
            "median_rows_per_s": samples / statistics.median(values),
            "median_seconds": statistics.median(values),
            "median_cpu_seconds": statistics.median(cpu_seconds[side]),
            "seconds": values,
            "cpu_seconds": cpu_seconds[side],
        }
    for other in [side for side in seconds if side != "stacked"]:
        # stacked rows/s ÷ other's = other's seconds ÷ stacked's, within each round.
        median, quartiles = paired(seconds[other], seconds["stacked"])
        cpu_median, cpu_quartiles = paired(cpu_seconds[other], cpu_seconds["stacked"])
        out[f"stacked_over_{other}"] = {
            "paired_median": median,
            "paired_quartiles": quartiles,
            "cpu_paired_median": cpu_median,
            "cpu_paired_quartiles": cpu_quartiles,
        }
    return out


def profile(data: Data, config: TrainConfig) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name, runner in (("train_model", run_train_model), ("bare", run_bare)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            runner(data, config)
        print(f"\n--- profile of {name} (one thread) ---")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def pin(threads: int, all_cores: set[int]) -> None:
    """One thread runs pinned to one core (no migrations); more use every core the process may."""
    os.sched_setaffinity(0, set(sorted(all_cores)[:1]) if threads == 1 else all_cores)
    torch.set_num_threads(threads)


def loop_section(data: Data, config: TrainConfig, args, default_threads: int, all_cores: set[int]) -> list:
    pin(1, all_cores)
    difference = verify(data, config)
    print(
        "verified: the bare loop's per-epoch training loss equals train_model's history"
        f" (largest relative difference {difference:.1e})",
        flush=True,
    )
    results = []
    for threads in args.threads or (1, default_threads):
        pin(threads, all_cores)
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
        pin(1, all_cores)
        profile(data, config)
    return results


def ensemble_section(data: Data, config: TrainConfig, args, all_cores: set[int]) -> list:
    pin(1, all_cores)
    before = None if args.before == "none" else load_before(args.before)
    results = []
    for members in args.members:
        difference = verify_ensemble(data, config, members)
        print(
            f"K = {members}: verified: each stacked member's per-epoch training loss is that of the network"
            f" trained alone (largest relative difference {difference:.1e})",
            flush=True,
        )
        r = measure_ensemble(data, config, members, args.ensemble_rounds, before)
        results.append(r)
        sides = [side for side in ("stacked", "sequential", "before") if side in r]
        print(
            "  "
            + "; ".join(
                f"{side} {r[side]['best_rows_per_s']:,.0f} network-rows/s"
                f" (median {r[side]['median_rows_per_s']:,.0f}, {r[side]['median_seconds']:.2f} s wall,"
                f" {r[side]['median_cpu_seconds']:.2f} s CPU)"
                for side in sides
            ),
            flush=True,
        )
        for other in sides[1:]:
            ratio = r[f"stacked_over_{other}"]
            print(
                f"  stacked / {other}: paired median {ratio['paired_median']:.2f}"
                f" (quartiles {ratio['paired_quartiles'][0]:.2f}–{ratio['paired_quartiles'][1]:.2f});"
                f" in CPU time {ratio['cpu_paired_median']:.2f}"
                f" ({ratio['cpu_paired_quartiles'][0]:.2f}–{ratio['cpu_paired_quartiles'][1]:.2f})",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", nargs="+", choices=("loop", "ensemble"), default=["loop", "ensemble"])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (validation: 15 %% as many)")
    parser.add_argument("--satellites", type=int, default=500)
    parser.add_argument("--observations", type=int, default=200, help="per satellite for the simulated day")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument(
        "--rounds", type=int, default=20, help="loop: timed runs of each side per thread count"
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        help="loop: torch thread counts to measure (default: 1 and torch's default)",
    )
    parser.add_argument("--profile", action="store_true", help="loop: torch.profiler tables")
    parser.add_argument("--members", type=int, nargs="+", default=[3, 5], help="ensemble: sizes K")
    parser.add_argument("--ensemble-rounds", type=int, default=20, help="ensemble: timed runs of each side")
    parser.add_argument(
        "--before",
        default=BEFORE_STACKING,
        help="ensemble: the commit whose train_model is the 'before' side ('none': leave it out)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    all_cores = os.sched_getaffinity(0)
    data = simulated_training_set(args.rows, args.satellites, args.observations)
    config = TrainConfig(max_epochs=args.epochs, patience=args.epochs, batch_size=args.batch_size)
    print(
        f"{len(data.x_train):,} training and {len(data.x_val):,} validation rows × {data.x_train.shape[1]}"
        f" features; {args.epochs} epochs of batches of {config.batch_size}",
        flush=True,
    )
    results: dict[str, list] = {}
    if "loop" in args.sections:
        results["loop"] = loop_section(data, config, args, default_threads, all_cores)
    if "ensemble" in args.sections:
        results["ensemble"] = ensemble_section(data, config, args, all_cores)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
