"""Model quality against the logistic-regression baseline the promotion gate requires it to beat.

Usage:  .venv/bin/python benchmarks/model_quality.py [--days 2026-12-02,2026-12-01,...] [--seeds 7,8,9]
        make bench-quality

For each day, the training set is built by the real assets (raw_telemetry → asteroid_features → training_set,
ASTROMINED_SCALE=default, the scale `make run` uses) in a throw-away state directory. On it, side by side:
  baseline   astromined.ml.evaluate.baseline_metrics (StandardScaler + LogisticRegression, train split),
  candidate  the network as candidate_model trains it: default ArchitectureConfig over MODEL_FEATURES and
             the default CandidateConfig → TrainConfig (so the numbers are those of `make run`),
  previous   the network before the wide path: deep-only, early stopping on CE + 2 × metal MSE, no label
             smoothing, no temperature scaling (everything else equal), for comparison,
each scored on the holdout split (macro-F1, as model_evaluation/champion_model judge). Reported per day and
seed: macro-F1 and the margin over the baseline; then, per network, the margin's min / median / max and the
number of (day, seed) pairs won (strictly above the baseline). Holdout is ~370 rows: 0.0025 macro-F1 is
about one asteroid.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
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

DAYS = ("2026-12-02", "2026-12-01", "2026-06-01", "2026-11-15", "2026-01-10")
SEEDS = (7, 8, 9)


def candidate_train_config(seed: int) -> TrainConfig:
    """What candidate_model passes to train_model for a default CandidateConfig with this seed."""
    config = CandidateConfig(seed=seed)
    return TrainConfig(
        max_epochs=config.max_epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
    )


NETWORKS = {
    "candidate": (
        lambda: ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES),
        candidate_train_config,
    ),
    "previous": (
        lambda: ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES, wide=False),
        lambda seed: TrainConfig(
            **{
                **candidate_train_config(seed).__dict__,
                "selection_metal_weight": 2.0,
                "label_smoothing": 0.0,
                "temperature_scaling": False,
            }
        ),
    ),
}


def build_training_set(day: str, state_dir: Path):
    settings = load_settings({"ASTROMINED_STATE_DIR": str(state_dir), "ASTROMINED_SCALE": "default"})
    resources = build_resources(settings)
    with dg.instance_for_test() as instance:
        for selection, partition in (
            ([assets.telemetry.raw_telemetry, assets.features.asteroid_features], day),
            ([assets.features.training_set], None),
        ):
            result = dg.materialize(
                selection,
                partition_key=partition,
                resources=resources,
                instance=instance,
                raise_on_error=True,
            )
            assert result.success, f"building the training set for {day} failed"
    table = read_parquet(resources["lake"].store(), lake_layout.TRAINING_SET)
    return tuple(split_arrays(table, split) for split in ("train", "validation", "holdout"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default=",".join(DAYS))
    parser.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    args = parser.parse_args()
    days = [d.strip() for d in args.days.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(1)
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, torch {torch.__version__}; scale default; seeds {seeds}"
    )
    margins: dict[str, list[float]] = {name: [] for name in NETWORKS}
    extra: dict[str, list[tuple[float, float]]] = {name: [] for name in NETWORKS}
    print("| day | holdout rows | baseline macro-F1 | network | macro-F1 per seed | margin per seed | wins |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="astromined-quality-") as tmp:
        for day in days:
            train, validation, holdout = build_training_set(day, Path(tmp) / day)
            baseline = baseline_metrics(train.x, train.y_class, holdout.x, holdout.y_class)["macro_f1"]
            for name, (architecture, train_config) in NETWORKS.items():
                scores = []
                for seed in seeds:
                    result = train_model(
                        architecture(),
                        train.x,
                        train.y_class,
                        train.y_metal,
                        validation.x,
                        validation.y_class,
                        validation.y_metal,
                        torch.device("cpu"),
                        train_config(seed),
                    )
                    probabilities, metal = predict(result.model, holdout.x)
                    metrics = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
                    scores.append(metrics["macro_f1"])
                    extra[name].append((metrics["ece"], metrics["metal_richness_mae"]))
                day_margins = [s - baseline for s in scores]
                margins[name] += day_margins
                print(
                    f"| {day} | {len(holdout)} | {baseline:.4f} | {name} | "
                    + " ".join(f"{s:.4f}" for s in scores)
                    + " | "
                    + " ".join(f"{m:+.4f}" for m in day_margins)
                    + f" | {sum(m > 0 for m in day_margins)}/{len(scores)} |",
                    flush=True,
                )
    print()
    print("| network | margin min | margin median | margin max | wins | median ECE | median metal MAE |")
    print("|---|---|---|---|---|---|---|")
    for name, values in margins.items():
        ece = statistics.median(e for e, _ in extra[name])
        mae = statistics.median(m for _, m in extra[name])
        print(
            f"| {name} | {min(values):+.4f} | {statistics.median(values):+.4f} | {max(values):+.4f} | "
            f"{sum(v > 0 for v in values)}/{len(values)} | {ece:.4f} | {mae:.4f} |"
        )
    return 0 if all(v > 0 for v in margins["candidate"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
