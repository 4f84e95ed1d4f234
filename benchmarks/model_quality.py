"""Model quality against the logistic-regression baseline the promotion gate requires it to beat.

Usage:  .venv/bin/python benchmarks/model_quality.py [--populations 42,7,1234,...] [--days 2026-12-02,...]
                                                     [--seeds 7] [--window 1] [--networks candidate,single]
        make bench-quality

For each simulated population (``--populations``: ASTROMINED_SEED, the simulator's seed: a fresh fleet,
asteroid belt and survey catalog each) and each day, the training set is built by the real assets
(raw_telemetry → asteroid_features → training_set, ASTROMINED_SCALE=default, the scale `make run` uses)
in a throw-away state directory, from the `--window`
days ending on that day (1: that day alone, as `make run`'s first day; 7: production's rolling window,
TrainingSetConfig.window_days). On it, side by side:
  baseline   astromined.ml.evaluate.baseline_metrics (StandardScaler + LogisticRegression, train split),
  candidate  the network as candidate_model trains it: default ArchitectureConfig over MODEL_FEATURES and
             the default CandidateConfig → TrainConfig (an ensemble of 3 merged into one network), so the
             numbers are those of `make run`,
  single     the same with ensemble_members=1 (one network, the candidate before the ensemble), to compare,
each scored on the holdout split (macro-F1, as model_evaluation/champion_model judge). Reported per day and
seed: macro-F1, the margin over the baseline and the holdout errors; then, per network, the margin's min /
median / max, the number of (day, seed) pairs won (strictly above the baseline) and the median training
time of one candidate. Holdout is ~370 rows for one day: 0.0025 macro-F1 is about one asteroid.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["ASTROMINED_SCALE"] = "default"

import dagster as dg  # noqa: E402
import torch  # noqa: E402

import assets.features  # noqa: E402
import assets.telemetry  # noqa: E402
from assets.models import CandidateConfig  # noqa: E402
from astromined import lake_layout  # noqa: E402
from astromined.environment import load_settings  # noqa: E402
from astromined.features.engineering import MODEL_FEATURES  # noqa: E402
from astromined.ml.dataset import split_arrays  # noqa: E402
from astromined.ml.evaluate import baseline_metrics, model_metrics  # noqa: E402
from astromined.ml.model import ArchitectureConfig  # noqa: E402
from astromined.ml.train import TrainConfig, predict, train_model  # noqa: E402
from astromined.storage import read_parquet  # noqa: E402
from astromined.taxonomy import COMPLEXES  # noqa: E402
from resources import build_resources  # noqa: E402

DAYS = ("2026-12-02", "2026-12-01", "2026-06-01", "2026-11-15", "2026-01-10", "2026-03-15", "2026-09-01")
# Training seeds: candidate_model's default (CandidateConfig.seed) — what production trains with.
SEEDS = (7,)
# Simulated populations (ASTROMINED_SEED): the default one, the two the issue reported losses on, and more.
POPULATIONS = (42, 7, 1234, 1, 2, 3, 2024, 31337)


def candidate_train_config(seed: int) -> TrainConfig:
    """What candidate_model passes to train_model for a default CandidateConfig with this seed."""
    config = CandidateConfig(seed=seed)
    return TrainConfig(
        max_epochs=config.max_epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        ensemble_members=config.ensemble_members,
    )


NETWORKS = {
    "candidate": candidate_train_config,
    "single": lambda seed: dataclasses.replace(candidate_train_config(seed), ensemble_members=1),
}


def build_training_set(day: str, window: int, state_dir: Path, population: int):
    """The training set of the `window` days ending on `day` of the population simulated with seed
    ``population``, built by the assets (window_days=window)."""
    settings = load_settings(
        {
            "ASTROMINED_STATE_DIR": str(state_dir),
            "ASTROMINED_SCALE": "default",
            "ASTROMINED_SEED": str(population),
        }
    )
    resources = build_resources(settings)
    end = dt.date.fromisoformat(day)
    steps = [
        (
            [assets.telemetry.raw_telemetry, assets.features.asteroid_features],
            (end - dt.timedelta(days=k)).isoformat(),
            None,
        )
        for k in range(window - 1, -1, -1)
    ]
    steps.append(
        ([assets.features.training_set], None, {"ops": {"training_set": {"config": {"window_days": window}}}})
    )
    with dg.instance_for_test() as instance:
        for selection, partition, run_config in steps:
            result = dg.materialize(
                selection,
                partition_key=partition,
                resources=resources,
                instance=instance,
                run_config=run_config,
                raise_on_error=True,
            )
            assert result.success, f"building the training set for {day} failed"
    table = read_parquet(resources["lake"].store(), lake_layout.TRAINING_SET)
    return tuple(split_arrays(table, split) for split in ("train", "validation", "holdout"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", default=",".join(str(p) for p in POPULATIONS))
    parser.add_argument("--days", default=",".join(DAYS))
    parser.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    parser.add_argument("--window", type=int, default=1, help="days in the training window (production: 7)")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    args = parser.parse_args()
    days = [d.strip() for d in args.days.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    populations = [int(p) for p in args.populations.split(",") if p.strip()]
    networks = {name: NETWORKS[name.strip()] for name in args.networks.split(",") if name.strip()}
    torch.set_num_threads(1)
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, torch {torch.__version__}; scale default; window {args.window} "
        f"day(s); populations {populations}; training seeds {seeds}"
    )
    margins: dict[str, list[float]] = {name: [] for name in networks}
    extra: dict[str, list[tuple[float, float, float]]] = {name: [] for name in networks}
    print(
        "| population | day | holdout rows | baseline macro-F1 (errors) | network | macro-F1 per seed "
        "| margin per seed | errors per seed | wins |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [(population, day) for population in populations for day in days]
    with tempfile.TemporaryDirectory(prefix="astromined-quality-") as tmp:
        for population, day in cases:
            state = Path(tmp) / f"{population}-{day}"
            train, validation, holdout = build_training_set(day, args.window, state, population)
            baseline_all = baseline_metrics(train.x, train.y_class, holdout.x, holdout.y_class)
            baseline = baseline_all["macro_f1"]
            baseline_errors = round((1.0 - baseline_all["accuracy"]) * len(holdout))
            for name, train_config in networks.items():
                scores, errors = [], []
                for seed in seeds:
                    started = time.perf_counter()
                    result = train_model(
                        ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES),
                        train.x,
                        train.y_class,
                        train.y_metal,
                        validation.x,
                        validation.y_class,
                        validation.y_metal,
                        torch.device("cpu"),
                        train_config(seed),
                    )
                    seconds = time.perf_counter() - started
                    probabilities, metal = predict(result.model, holdout.x)
                    metrics = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
                    scores.append(metrics["macro_f1"])
                    errors.append(round((1.0 - metrics["accuracy"]) * len(holdout)))
                    extra[name].append((metrics["ece"], metrics["metal_richness_mae"], seconds))
                day_margins = [s - baseline for s in scores]
                margins[name] += day_margins
                print(
                    f"| {population} | {day} | {len(holdout)} | {baseline:.4f} ({baseline_errors}) "
                    f"| {name} | "
                    + " ".join(f"{s:.4f}" for s in scores)
                    + " | "
                    + " ".join(f"{m:+.4f}" for m in day_margins)
                    + " | "
                    + " ".join(str(e) for e in errors)
                    + f" | {sum(m > 0 for m in day_margins)}/{len(scores)} |",
                    flush=True,
                )
            shutil.rmtree(state, ignore_errors=True)
    print()
    print(
        "| network | margin min | margin median | margin max | wins | median ECE | median metal MAE "
        "| median training s per candidate |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, values in margins.items():
        ece, mae, seconds = (statistics.median(v[i] for v in extra[name]) for i in range(3))
        print(
            f"| {name} | {min(values):+.4f} | {statistics.median(values):+.4f} | {max(values):+.4f} | "
            f"{sum(v > 0 for v in values)}/{len(values)} | {ece:.4f} | {mae:.4f} | {seconds:.1f} |"
        )
    first = next(iter(margins.values()))
    return 0 if all(v > 0 for v in first) else 1


if __name__ == "__main__":
    raise SystemExit(main())
