"""Model quality against the logistic-regression baseline the promotion gate requires it to beat.

Usage:  .venv/bin/python benchmarks/model_quality.py [--populations 42,7,1234,...] [--days 2026-12-02,...]
                                                     [--seeds 7] [--window 1] [--networks candidate,single]
                                                     [--pooled] [--combined-rows] [--look-unit auto]
                                                     [--self-training-max-days 1] [--combined-holdout]
                                                     [--plain-mean] [--unseen]
        make bench-quality

For each simulated population (``--populations``: ASTROMINED_SEED, the simulator's seed: a fresh fleet,
asteroid belt and survey catalog each) and each day, the training set is built by the real assets
(raw_telemetry → asteroid_features → training_set, ASTROMINED_SCALE=default, the scale `make run` uses)
in a throw-away state directory, from the `--window`
days ending on that day (1: that day alone, as `make run`'s first day; 7: production's rolling window,
TrainingSetConfig.window_days). On it, side by side:
  baseline   astromined.ml.evaluate.baseline_metrics (StandardScaler + LogisticRegression, train split),
  candidate  the network as candidate_model trains it: default ArchitectureConfig over MODEL_FEATURES and
             the default CandidateConfig → TrainConfig (an ensemble of 3 merged into one network), on the
             rows it trains on (the training set's look rows, within TrainingSetConfig's row budget:
             one per observation of a train asteroid on windows of 1-3 days, one per asteroid and day
             on longer ones; ``--look-unit observation|day`` forces one), self-trained where the training
             set stores unlabelled rows (one-day windows), so the numbers are those of `make run` (one
             day) and of production's 7-day window,
  single     the same with ensemble_members=1 (one network, the candidate before the ensemble), to compare,
  ensemble5, ensemble7  the same with ensemble_members=5 and 7 (teacher and student alike where it
             self-trains; the members of 3 are the first of 5 and 7, member_seeds), not run by default,
each scored on the holdout split as model_evaluation scores it (macro-F1, as model_evaluation/champion_model
judge): where the training set stores the holdout asteroids' looks (beside its look rows: per
observation on windows of 1-3 days, per day on longer ones), an asteroid's class probabilities are the
mean of its looks' (``astromined.ml.looks``), sharpened by the looks' calibration exponent fitted on
the validation asteroids' looks as candidate_model fits it, else its combined row's; ``--plain-mean``
also scores the same networks from the looks without the exponent, as before the sixteenth session (as
"<network> plain mean": the same classes, only the probabilities, so the ECE, differ);
``--combined-holdout`` also scores the same networks on the combined rows, as before the fifteenth
session (as "<network> on combined rows": no extra training). Reported per day and
seed: macro-F1, the margin over the baseline, the holdout errors and the bootstrap win share (the share of
2,000 resampled holdouts on which the network beats the baseline, ``astromined.ml.margin``, as
model_evaluation records it: near 0.5, the holdout cannot tell the two apart); then, per network, the
margin's min / median / max, the number of (day, seed) pairs won (strictly above the baseline), the median
training time of one candidate and the median win share. Holdout is ~370 rows for one day: 0.0025 macro-F1
is about one asteroid.

``--unseen`` also scores each case on a test set large enough to tell a network and the baseline apart
where the holdout cannot (``unseen_asteroids.py``): every labelled asteroid the case did not train on (not
in its train or validation split), on each other ``--days`` day it was looked at, scored as a holdout of
that day's window ("<network> unseen", ~6,800 items on one-day windows with the seven default days), and
the other days' holdouts alone ("<network> other holdouts", ~2,200 items, drawn as the gate's holdout is;
the full set adds asteroids the case's day did not look at, fainter on average). Pooled networks are not
scored there (they trained on the other days' labels).

``--pooled`` measures the data headroom: each network (and the baseline) is also trained once per
population on the train and validation rows of ALL ``--days`` stacked (7 one-day sets: ~7x the labels; an
asteroid keeps its split on every day, so no holdout asteroid is trained on) and scored on each day's own
holdout, beside the one-day networks. It answers whether a network that loses on a day is short of labelled
data (the pooled network does better on the same holdout) or at the limit of the measurements.

Self-training, as candidate_model does it (``astromined.ml.self_training.self_train``), wherever the
training set stores the window's unlabelled rows (``features/unlabelled_rows.py``: windows of at most
``--self-training-max-days``, by default the product's 1): the network as it is (the teacher) labels the
unlabelled asteroids (each day's rows of them; none is in any split, so none is in the holdout), and a
second network of the same configuration (the student) trains on the train rows plus the unlabelled rows
the teacher gives a probability of at least SELF_TRAINING_CONFIDENCE, at most as many as the train rows
(drawn with the training seed), each with the teacher's class and metal richness; then both are refit on
the train and validation rows for their early-stopped epochs, the refit teacher labelling again
(``CandidateConfig.refit_with_validation``). The refit student is the network scored; the teacher is
scored too, as "<network> teacher": the network without self-training, from the same run.
``--self-training-max-days 0`` turns it off; a larger value measures it on longer windows (BENCHMARKS.md:
it gained nothing on 2- and 3-day windows). A refit trains on labels the gate's baseline (train split
only) does not see, so each case also scores "baseline train+validation", the same logistic regression
fit on the train and validation rows: the networks' margins over it are a like-for-like comparison.

``--combined-rows`` also trains each network on the window's combined rows, one per train asteroid with
its looks combined: the candidate before it trained on look rows, to compare. The baseline always trains
on the combined rows, as model_evaluation's does (on per-day rows it does worse: BENCHMARKS.md).
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
import numpy as np  # noqa: E402
import torch  # noqa: E402
from unseen_asteroids import SPLITS, labelled_day, unseen_items  # noqa: E402  (benchmarks/ is on sys.path)

import assets.features  # noqa: E402
import assets.telemetry  # noqa: E402
from assets.models import CandidateConfig  # noqa: E402
from astromined import lake_layout  # noqa: E402
from astromined.environment import load_settings  # noqa: E402
from astromined.features.engineering import MODEL_FEATURES, model_inputs  # noqa: E402
from astromined.features.training_set import (  # noqa: E402
    load_holdout_looks,
    load_look_rows,
    load_training_manifest,
    load_unlabelled_rows,
    load_validation_looks,
)
from astromined.features.unlabelled_rows import SELF_TRAINING_MAX_DAYS  # noqa: E402
from astromined.ml.dataset import SplitArrays, concatenated, split_arrays  # noqa: E402
from astromined.ml.evaluate import (  # noqa: E402
    baseline_metrics,
    classification_metrics,
    fit_baseline,
    model_metrics,
)
from astromined.ml.looks import AsteroidLooks, model_looks_exponent, predict_split, split_looks  # noqa: E402
from astromined.ml.margin import bootstrap_margin  # noqa: E402
from astromined.ml.model import ArchitectureConfig  # noqa: E402
from astromined.ml.self_training import refit_config, self_train  # noqa: E402
from astromined.ml.train import TrainConfig, train_model  # noqa: E402
from astromined.storage import read_parquet  # noqa: E402
from astromined.taxonomy import COMPLEXES  # noqa: E402
from resources import build_resources  # noqa: E402

DAYS = ("2026-12-02", "2026-12-01", "2026-06-01", "2026-11-15", "2026-01-10", "2026-03-15", "2026-09-01")
# Training seeds: candidate_model's default (CandidateConfig.seed) — what production trains with.
SEEDS = (7,)
# Simulated populations (ASTROMINED_SEED): the default one, the two the issue reported losses on, and more.
POPULATIONS = (42, 7, 1234, 1, 2, 3, 2024, 31337)
# --unseen's two sets (unseen_asteroids.py): every labelled asteroid a case did not train on, on the other
# days; and the other days' holdouts alone, drawn as the gate's holdout is.
UNSEEN_SETS = (("unseen", SPLITS), ("other holdouts", ("holdout",)))


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
    "ensemble5": lambda seed: dataclasses.replace(candidate_train_config(seed), ensemble_members=5),
    "ensemble7": lambda seed: dataclasses.replace(candidate_train_config(seed), ensemble_members=7),
}
DEFAULT_NETWORKS = ("candidate", "single")


def build_training_set(
    day: str,
    window: int,
    state_dir: Path,
    population: int,
    look_unit: str,
    self_training_max_days: int = SELF_TRAINING_MAX_DAYS,
):
    """The training set of the `window` days ending on `day` of the population simulated with seed
    ``population``, built by the assets (window_days=window, look_unit, self_training_max_days): (train,
    validation, holdout, combined train, unlabelled, holdout looks, validation looks). ``train`` is what
    candidate_model trains on: the look rows where the training set has them, else the combined train
    split (the fourth item, which the baseline trains on). ``unlabelled`` is the model-input matrix of the
    unlabelled rows the training set stores for self-training, or None where it stores none; ``holdout
    looks`` the holdout asteroids' looks model_evaluation scores the networks on (``AsteroidLooks``), or None;
    ``validation looks`` those candidate_model fits the looks' calibration exponent on, or None; the last
    item is every labelled asteroid of the set with its looks (``unseen_asteroids.LabelledDay``)."""
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
        (
            [assets.features.training_set],
            None,
            {
                "ops": {
                    "training_set": {
                        "config": {
                            "window_days": window,
                            "look_unit": look_unit,
                            "self_training_max_days": self_training_max_days,
                        }
                    }
                }
            },
        )
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
    store = resources["lake"].store()
    table = read_parquet(store, lake_layout.TRAINING_SET)
    manifest = load_training_manifest(store, lake_layout.TRAINING_SET)
    looks = load_look_rows(store, manifest)
    unlabelled_rows = load_unlabelled_rows(store, manifest)
    combined_train = split_arrays(table, "train")
    train = combined_train if looks is None else split_arrays(looks.rows, "train")
    unlabelled = None if unlabelled_rows is None else model_inputs(unlabelled_rows)
    validation, holdout = split_arrays(table, "validation"), split_arrays(table, "holdout")
    validation_frame = load_validation_looks(store, manifest)
    holdout_frame = load_holdout_looks(store, manifest)
    holdout_looks = split_looks(table, holdout_frame)
    validation_looks = split_looks(table, validation_frame, "validation")
    labelled = labelled_day(table, looks, validation_frame, holdout_frame)
    return train, validation, holdout, combined_train, unlabelled, holdout_looks, validation_looks, labelled


def train_network(train_config: TrainConfig, train: SplitArrays, validation: SplitArrays):
    """The network as candidate_model trains it (CPU); returns the result and the seconds it took."""
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
        train_config,
    )
    return result, time.perf_counter() - started


def train_candidate(
    train_config: TrainConfig, train: SplitArrays, validation: SplitArrays, unlabelled: np.ndarray | None
):
    """The network as candidate_model trains it: self-trained (``self_train``) where the training set
    stores ``unlabelled`` rows, else ``train_network``. Returns ((result, seconds), (teacher, seconds),
    validated): the network registered, the network without self-training (the same one where there was
    none), and the early-stopped network candidate_model fits the looks' calibration exponent with."""
    if unlabelled is None:
        trained = train_network(train_config, train, validation)
        return trained, trained, trained[0]
    seconds: list[float] = []

    def fit(rows: SplitArrays, _role: str, epochs: int | None):
        result, took = train_network(refit_config(train_config, epochs), rows, validation)
        seconds.append(took)
        return result

    outcome = self_train(fit, train, unlabelled, train_config.seed, validation=validation)
    return (outcome.registered, sum(seconds)), (outcome.teacher, seconds[0]), outcome.validated


def looks_exponent_of(
    early_stopped, validation: SplitArrays, validation_looks: AsteroidLooks | None, holdout_looks
) -> float:
    """The looks' calibration exponent candidate_model registers with a network (``model_looks_exponent``
    of the early-stopped network on the validation looks); 0 where the holdout is not scored from looks
    or the training set stores no validation looks."""
    if holdout_looks is None or validation_looks is None:
        return 0.0
    return model_looks_exponent(early_stopped, validation_looks, validation.y_class)


def holdout_scores(
    model,
    holdout: SplitArrays,
    baseline_predicted: np.ndarray,
    looks: AsteroidLooks | None,
    exponent: float = 0.0,
) -> dict[str, float]:
    """The model's holdout metrics, its holdout errors, and ``win_share``: the share of resampled holdouts
    on which it beats the baseline's ``baseline_predicted`` (``bootstrap_margin``, as model_evaluation).
    Scored as model_evaluation scores it: from the holdout asteroids' ``looks`` where the training set
    stores them (``predict_split``, with the looks' calibration ``exponent``), else from the combined
    rows."""
    probabilities, metal = predict_split(model, holdout.x, looks, exponent)
    metrics = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
    metrics["errors"] = round((1.0 - metrics["accuracy"]) * len(holdout))
    interval = bootstrap_margin(holdout.y_class, probabilities.argmax(axis=1), baseline_predicted)
    metrics["win_share"] = interval.win_share
    return metrics


@dataclasses.dataclass(frozen=True)
class UnseenSet:
    """One of a case's unseen-asteroid test sets (``--unseen``) with both baselines scored on it."""

    suffix: str  # the networks' rows are "<network> <suffix>"
    items: SplitArrays
    looks: AsteroidLooks
    baseline_predicted: np.ndarray  # the gate's baseline (fit on the train split)
    baseline: float  # its macro-F1
    labelled_baseline: float  # macro-F1 of the same logistic regression fit on train + validation
    label: str  # "items | baseline macro-F1 (errors)" for the case's rows


def unseen_set(
    suffix: str, unseen: tuple[SplitArrays, AsteroidLooks, int], gate_baseline, labelled_baseline
) -> UnseenSet:
    """The baselines (``fit_baseline``) on ``unseen`` (``unseen_items``' result): the gate's, fit on the
    case's combined train rows, and the one fit on the train + validation rows a refit candidate trains
    on."""
    items, looks, asteroids = unseen
    predicted = gate_baseline.predict(items.x)
    gate = classification_metrics(items.y_class, predicted)
    labelled_f1 = classification_metrics(items.y_class, labelled_baseline.predict(items.x))["macro_f1"]
    label = (
        f"{len(items)} {suffix} ({asteroids} asteroids) | {gate['macro_f1']:.4f} "
        f"({round((1.0 - gate['accuracy']) * len(items))})"
    )
    return UnseenSet(suffix, items, looks, predicted, gate["macro_f1"], labelled_f1, label)


def print_case(
    population: int, day: str, scored_on: str, name: str, scores: list[dict], baseline: float
) -> None:
    """One network's row of a case: ``scored_on`` is "rows | baseline macro-F1 (errors)" of the set."""
    margins = [s["macro_f1"] - baseline for s in scores]
    print(
        f"| {population} | {day} | {scored_on} | {name} | "
        + " ".join(f"{s['macro_f1']:.4f}" for s in scores)
        + " | "
        + " ".join(f"{m:+.4f}" for m in margins)
        + " | "
        + " ".join(str(s["errors"]) for s in scores)
        + " | "
        + " ".join(f"{s['win_share']:.2f}" for s in scores)
        + f" | {sum(m > 0 for m in margins)}/{len(scores)} |",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", default=",".join(str(p) for p in POPULATIONS))
    parser.add_argument("--days", default=",".join(DAYS))
    parser.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    parser.add_argument("--window", type=int, default=1, help="days in the training window (production: 7)")
    parser.add_argument("--networks", default=",".join(DEFAULT_NETWORKS), help=f"of {', '.join(NETWORKS)}")
    parser.add_argument(
        "--combined-rows",
        action="store_true",
        help="also train on one combined row per asteroid (see the docstring)",
    )
    parser.add_argument(
        "--look-unit",
        default="auto",
        choices=["auto", "observation", "day"],
        help="TrainingSetConfig.look_unit: what one train row of the candidate is (default: production's)",
    )
    parser.add_argument(
        "--self-training-max-days",
        type=int,
        default=SELF_TRAINING_MAX_DAYS,
        help="TrainingSetConfig.self_training_max_days: windows up to this long self-train (0: never; "
        "default: production's)",
    )
    parser.add_argument(
        "--combined-holdout",
        action="store_true",
        help="also score each network on the holdout's combined rows (see the docstring)",
    )
    parser.add_argument(
        "--plain-mean",
        action="store_true",
        help="also score each network from the looks' plain mean, without the exponent (see the docstring)",
    )
    parser.add_argument(
        "--unseen",
        action="store_true",
        help="also score each case on the labelled asteroids it did not train on, on the other --days "
        "(benchmarks/unseen_asteroids.py; see the docstring)",
    )
    parser.add_argument(
        "--pooled",
        action="store_true",
        help="also train on all --days' labels of the population (the data headroom; see the docstring)",
    )
    args = parser.parse_args()
    days = [d.strip() for d in args.days.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    populations = [int(p) for p in args.populations.split(",") if p.strip()]
    networks = {name: NETWORKS[name.strip()] for name in args.networks.split(",") if name.strip()}
    torch.set_num_threads(1)
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, torch {torch.__version__}; scale default; window {args.window} "
        f"day(s), look unit {args.look_unit}; self-training on windows of up to "
        f"{args.self_training_max_days} day(s); populations {populations}; training seeds {seeds}"
        + (f"; pooled over {len(days)} days" if args.pooled else "")
    )
    rows = list(networks)
    rows += [f"{name} pooled" for name in networks] if args.pooled else []
    rows += [f"{name} combined rows" for name in networks] if args.combined_rows else []
    self_training = args.window <= args.self_training_max_days
    rows += [f"{name} teacher" for name in networks] if self_training else []
    rows += [f"{name} on combined rows" for name in networks] if args.combined_holdout else []
    rows += [f"{name} plain mean" for name in networks] if args.plain_mean else []
    margins: dict[str, list[float]] = {name: [] for name in rows}
    # Over the baseline fit on train + validation (the labels a refit candidate trains on).
    margins_labelled: dict[str, list[float]] = {name: [] for name in rows}
    labelled_baseline_margins: list[float] = []
    # Per candidate: ECE, metal-richness MAE, training seconds, bootstrap win share.
    extra: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in rows}
    # Per candidate: the looks' calibration exponent it was scored with (0: the plain mean, or no looks).
    fitted_exponents: dict[str, list[float]] = {name: [] for name in rows}
    # Per network scored on the unseen asteroids (--unseen): its margins and bootstrap win shares there.
    unseen_margins: dict[str, list[float]] = {}
    unseen_shares: dict[str, list[float]] = {}
    unseen_margins_labelled: dict[str, list[float]] = {}  # over the baseline fit on train + validation
    print(
        "| population | day | holdout rows | baseline macro-F1 (errors) | network | macro-F1 per seed "
        "| margin per seed | errors per seed | bootstrap win share per seed | wins |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    pooled_baseline_margins: list[float] = []
    with tempfile.TemporaryDirectory(prefix="astromined-quality-") as tmp:
        for population in populations:
            sets, combined_train, unlabelled, holdout_looks, validation_looks = {}, {}, {}, {}, {}
            labelled_days = {}
            for day in days:
                state = Path(tmp) / f"{population}-{day}"
                built = build_training_set(
                    day, args.window, state, population, args.look_unit, args.self_training_max_days
                )
                shutil.rmtree(state, ignore_errors=True)
                sets[day], combined_train[day], unlabelled[day] = built[:3], built[3], built[4]
                holdout_looks[day], validation_looks[day], labelled_days[day] = built[5], built[6], built[7]
            pooled: dict[str, list] = {}
            if args.pooled:
                pooled_train = concatenated([combined_train[d] for d in days])
                pooled_validation = concatenated([sets[d][1] for d in days])
                for name, train_config in networks.items():
                    pooled[f"{name} pooled"] = [
                        train_network(train_config(seed), pooled_train, pooled_validation) for seed in seeds
                    ]
            for day in days:
                train, validation, holdout = sets[day]
                # Each baseline is fit once and scored on the holdout and on every unseen set.
                gate_baseline = fit_baseline(combined_train[day].x, combined_train[day].y_class)
                labelled = concatenated([combined_train[day], validation])
                labelled_baseline = fit_baseline(labelled.x, labelled.y_class)
                baseline_predicted = gate_baseline.predict(holdout.x)
                baseline_all = classification_metrics(holdout.y_class, baseline_predicted)
                baseline = baseline_all["macro_f1"]
                baseline_errors = round((1.0 - baseline_all["accuracy"]) * len(holdout))
                baseline_labelled = classification_metrics(
                    holdout.y_class, labelled_baseline.predict(holdout.x)
                )
                labelled_baseline_margins.append(baseline_labelled["macro_f1"] - baseline)
                unseen_sets = [
                    unseen_set(
                        suffix, unseen_items(labelled_days, day, kept), gate_baseline, labelled_baseline
                    )
                    for suffix, kept in (UNSEEN_SETS if args.unseen else ())
                ]
                print(
                    f"| {population} | {day} | {len(holdout)} | {baseline:.4f} ({baseline_errors}) "
                    f"| baseline train+validation | {baseline_labelled['macro_f1']:.4f} "
                    f"| {baseline_labelled['macro_f1'] - baseline:+.4f} "
                    f"| {round((1.0 - baseline_labelled['accuracy']) * len(holdout))} | - | - |",
                    flush=True,
                )
                trained: dict[str, list] = {}
                # The early-stopped networks the looks' calibration exponent is fitted with, where they
                # are not the networks scored (a self-trained candidate's: the student before its refit).
                validated: dict[str, list] = {}
                for name, train_config in networks.items():
                    candidates = [
                        train_candidate(train_config(seed), train, validation, unlabelled[day])
                        for seed in seeds
                    ]
                    trained[name] = [registered for registered, _, _ in candidates]
                    validated[name] = [early_stopped for _, _, early_stopped in candidates]
                    if self_training:
                        trained[f"{name} teacher"] = [teacher for _, teacher, _ in candidates]
                trained.update(pooled)
                if args.combined_rows:
                    trained.update(
                        {
                            f"{name} combined rows": [
                                train_network(train_config(seed), combined_train[day], validation)
                                for seed in seeds
                            ]
                            for name, train_config in networks.items()
                        }
                    )
                # (row, networks, the holdout looks they are scored from, whether with the exponent)
                scored = [(name, results, holdout_looks[day], True) for name, results in trained.items()]
                if args.combined_holdout:
                    scored += [(f"{name} on combined rows", trained[name], None, False) for name in networks]
                if args.plain_mean:
                    scored += [
                        (f"{name} plain mean", trained[name], holdout_looks[day], False) for name in networks
                    ]
                for name, results, looks, sharpened in scored:
                    early = validated.get(name.removesuffix(" plain mean")) or [
                        result for result, _ in results
                    ]
                    exponents = [
                        looks_exponent_of(model.model, validation, validation_looks[day], looks)
                        if sharpened
                        else 0.0
                        for model in early
                    ]
                    fitted_exponents[name] += exponents
                    scores = [
                        holdout_scores(result.model, holdout, baseline_predicted, looks, exponent)
                        for (result, _), exponent in zip(results, exponents, strict=True)
                    ]
                    day_margins = [s["macro_f1"] - baseline for s in scores]
                    margins[name] += day_margins
                    margins_labelled[name] += [s["macro_f1"] - baseline_labelled["macro_f1"] for s in scores]
                    extra[name] += [
                        (s["ece"], s["metal_richness_mae"], seconds, s["win_share"])
                        for s, (_, seconds) in zip(scores, results, strict=True)
                    ]
                    print_case(
                        population,
                        day,
                        f"{len(holdout)} | {baseline:.4f} ({baseline_errors})",
                        name,
                        scores,
                        baseline,
                    )
                    # A pooled network trained on the other days' labels: nothing of theirs is unseen.
                    for test in unseen_sets:
                        if not sharpened or name.endswith(" pooled"):
                            continue
                        scores = [
                            holdout_scores(
                                result.model, test.items, test.baseline_predicted, test.looks, exponent
                            )
                            for (result, _), exponent in zip(results, exponents, strict=True)
                        ]
                        row = f"{name} {test.suffix}"
                        unseen_margins.setdefault(row, []).extend(
                            s["macro_f1"] - test.baseline for s in scores
                        )
                        unseen_margins_labelled.setdefault(row, []).extend(
                            s["macro_f1"] - test.labelled_baseline for s in scores
                        )
                        unseen_shares.setdefault(row, []).extend(s["win_share"] for s in scores)
                        print_case(population, day, test.label, row, scores, test.baseline)
                if args.pooled:
                    lr = baseline_metrics(pooled_train.x, pooled_train.y_class, holdout.x, holdout.y_class)
                    pooled_baseline_margins.append(lr["macro_f1"] - baseline)
                    print(
                        f"| {population} | {day} | {len(holdout)} | {baseline:.4f} ({baseline_errors}) "
                        f"| baseline pooled | {lr['macro_f1']:.4f} | {lr['macro_f1'] - baseline:+.4f} "
                        f"| {round((1.0 - lr['accuracy']) * len(holdout))} | - | - |",
                        flush=True,
                    )
    print()
    print(
        "| network | margin min | margin median | margin max | wins | median ECE | median metal MAE "
        "| median training s per candidate | wins over the baseline fit on train+validation (min margin) "
        "| median bootstrap win share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, values in margins.items():
        ece, mae, seconds, share = (statistics.median(v[i] for v in extra[name]) for i in range(4))
        like_for_like = margins_labelled[name]
        print(
            f"| {name} | {min(values):+.4f} | {statistics.median(values):+.4f} | {max(values):+.4f} | "
            f"{sum(v > 0 for v in values)}/{len(values)} | {ece:.4f} | {mae:.4f} | {seconds:.1f} | "
            f"{sum(v > 0 for v in like_for_like)}/{len(like_for_like)} ({min(like_for_like):+.4f}) | "
            f"{share:.2f} |"
        )
    for name, exponents in fitted_exponents.items():
        if any(exponents):
            print(
                f"{name}: looks' calibration exponent median {statistics.median(exponents):.3f} "
                f"(min {min(exponents):.3f}, max {max(exponents):.3f}) over {len(exponents)} candidates"
            )
    if unseen_margins:
        print()
        print(
            "| network, on unseen asteroids | margin min | margin median | margin max | wins "
            "| median bootstrap win share | wins over the baseline fit on train+validation (min margin) |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, values in unseen_margins.items():
            like_for_like = unseen_margins_labelled[name]
            print(
                f"| {name} | {min(values):+.4f} | {statistics.median(values):+.4f} | {max(values):+.4f} | "
                f"{sum(v > 0 for v in values)}/{len(values)} | {statistics.median(unseen_shares[name]):.2f} "
                f"| {sum(v > 0 for v in like_for_like)}/{len(like_for_like)} ({min(like_for_like):+.4f}) |"
            )
    values = labelled_baseline_margins
    print(
        f"| baseline train+validation (vs the gate's baseline) | {min(values):+.4f} | "
        f"{statistics.median(values):+.4f} | {max(values):+.4f} | "
        f"{sum(v > 0 for v in values)}/{len(values)} | - | - | - | - | - |"
    )
    if pooled_baseline_margins:
        values = pooled_baseline_margins
        print(
            f"| baseline pooled (vs the one-day baseline) | {min(values):+.4f} | "
            f"{statistics.median(values):+.4f} | {max(values):+.4f} | "
            f"{sum(v > 0 for v in values)}/{len(values)} | - | - | - | - | - |"
        )
    first = next(iter(margins.values()))
    return 0 if all(v > 0 for v in first) else 1


if __name__ == "__main__":
    raise SystemExit(main())
