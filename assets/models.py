"""candidate_model → model_evaluation → champion_model, and sector_rankings from the champion."""

import datetime as dt
import json

import dagster as dg
import numpy as np

from astromined import lake_layout
from astromined.environment import code_version
from astromined.features.engineering import MODEL_FEATURES, model_inputs
from astromined.features.training_set import (
    combine_days,
    load_holdout_looks,
    load_look_rows,
    load_training_manifest,
    load_training_reference,
    load_unlabelled_rows,
    load_validation_looks,
)
from astromined.ml.champion import evaluate_champion
from astromined.ml.dataset import SplitArrays, split_arrays
from astromined.ml.distributed import train_distributed
from astromined.ml.evaluate import (
    baseline_predictions,
    classification_metrics,
    confusion,
    confusion_markdown,
    confusion_png,
    model_metrics,
)
from astromined.ml.looks import AsteroidLooks, model_looks_exponent, predict_split, split_looks
from astromined.ml.margin import MarginInterval, bootstrap_margin
from astromined.ml.model import ArchitectureConfig
from astromined.ml.promotion import (
    PromotionPolicy,
    champion_holdout_metrics,
    champion_metric_values,
    decide_promotion,
)
from astromined.ml.registry import CorruptRecordError, ModelRegistry, looks_exponent
from astromined.ml.scoring import mining_value, rank_sectors
from astromined.ml.self_training import refit_config, self_train
from astromined.ml.train import TrainConfig, TrainResult, predict, train_model
from astromined.placement.step_metadata import placement_metadata
from astromined.storage import read_parquet, write_parquet
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES, METAL_RICH_COMPLEX
from resources import ComputeResource, LakeResource

# What the Kubernetes executor reads to place the step: one GPU, the GPU pool for local concurrency.
GPU_STEP_TAGS = {
    "astromined/gpus": "1",
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "2", "memory": "4Gi"}}
        }
    },
}


REFERENCE_STATS = "reference_stats.json"


class CandidateConfig(dg.Config):
    max_epochs: int = 200
    patience: int = 15
    batch_size: int = 256
    learning_rate: float = 3e-3
    seed: int = 7
    # Networks averaged into the candidate (one CompositionNet, TrainConfig.ensemble_members): a single
    # network's margin over the baseline swings with its seed; three beat it on 51 of 56 (population, day)
    # cases tried, one network on 43 (BENCHMARKS.md, model quality). They train stacked (ml/stacked.py).
    # On the self-trained first day 5 and 7 cut holdout errors by ~1-2 % for ~1.3-1.5x and ~1.8x the
    # training, and won no more (case, seed) pairs (BENCHMARKS.md, thirteenth session): 3 stays.
    ensemble_members: int = 3
    # Data-parallel workers (torch DDP: gloo on CPU, NCCL on GPU with one GPU per worker). 1 trains in the
    # step's own process. Above 1 on GPU, raise the step's nvidia.com/gpu request to match. Data-parallel
    # training trains one network: set ensemble_members=1 with it (anything else fails, naming both).
    workers: int = 1
    # Train on the training set's look rows (one per look at a train asteroid: per observation, or per
    # day) when it has them, instead of one combined row per asteroid; validation stays on the combined
    # rows, as model_evaluation's holdout and baseline do (features/training_set.py, BENCHMARKS.md model
    # quality).
    look_rows: bool = True
    # Self-train when the training set stores unlabelled rows (one-day windows, within
    # TrainingSetConfig.unlabelled_row_budget): a first candidate (the teacher) labels them, and a second
    # (the student) trains on the train rows plus those the teacher is at least 0.8 sure of, at most as
    # many (ml/self_training.py, BENCHMARKS.md model quality).
    self_training: bool = True
    # When it self-trains, refit the teacher and the student on the train and validation rows for the
    # epochs early stopping chose, and register that student (the validation metrics stay the early-stopped
    # student's): validation holds ~15 % of a first day's labels. The four trainings take ~5x one.
    refit_with_validation: bool = True


@dg.asset(
    group_name="models",
    deps=["training_set", "infrastructure_readiness"],
    pool="gpu",
    op_tags=GPU_STEP_TAGS,
    kinds={"pytorch"},
    description="A composition model trained on the current training set, registered in the registry.",
)
def candidate_model(
    context: dg.AssetExecutionContext, config: CandidateConfig, lake: LakeResource, compute: ComputeResource
) -> dg.MaterializeResult:
    store = lake.store()
    table = read_parquet(store, lake_layout.TRAINING_SET)
    training_manifest = load_training_manifest(store, lake_layout.TRAINING_SET)
    partitions = training_manifest["partitions"]
    # Computed by training_set from the window's daily partitions (drift is judged per day) and stored
    # with it: a retrain does not re-read the window. Read first: a set without one fails before training.
    reference = load_training_reference(store, lake_layout.TRAINING_SET)
    try:
        looks = load_look_rows(store, training_manifest) if config.look_rows else None
        unlabelled = load_unlabelled_rows(store, training_manifest) if config.self_training else None
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    validation_looks = _split_looks(store, table, training_manifest, "validation")
    train_rows_kind = looks.kind if looks is not None else "per asteroid"
    train = split_arrays(table if looks is None else looks.rows, "train")
    validation = split_arrays(table, "validation")
    device = compute.device()
    context.log.info(
        f"training on {device}: {len(train)} train rows ({train_rows_kind}) / "
        f"{len(validation)} validation rows"
    )

    architecture = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES)
    train_config = TrainConfig(
        max_epochs=config.max_epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        ensemble_members=config.ensemble_members,
    )

    def fit(rows: SplitArrays, role: str = "", epochs: int | None = None) -> TrainResult:
        def log_epoch(record: dict[str, float]) -> None:
            if int(record["epoch"]) % 10 == 0:
                who = [role] if role else []
                who += [f"member {int(record['member']) + 1}"] if "member" in record else []
                context.log.info(
                    f"epoch {int(record['epoch'])}{' (' + ', '.join(who) + ')' if who else ''}: "
                    f"train loss {record['train_loss']:.4f}, validation loss {record['validation_loss']:.4f}"
                )

        arrays = (rows.x, rows.y_class, rows.y_metal, validation.x, validation.y_class, validation.y_metal)
        run_config = refit_config(train_config, epochs)
        if config.workers > 1:
            return train_distributed(
                architecture,
                *arrays,
                workers=config.workers,
                device_type=device.type,
                config=run_config,
                on_epoch=log_epoch,
            )
        return train_model(architecture, *arrays, device=device, config=run_config, on_epoch=log_epoch)

    refit_validation_rows = 0  # validation rows the registered network trained on (a refit)
    if unlabelled is None:
        result, pseudo_labelled_rows = fit(train), 0
        validated = result
        self_training_note = (
            "off (CandidateConfig.self_training)"
            if not config.self_training
            else "none: the training set stores no unlabelled rows (see its unlabelled_rows_note)"
        )
    else:
        context.log.info(
            f"self-training: a teacher trains on the {len(train)} train rows and labels the training set's "
            f"{len(unlabelled)} unlabelled rows; the student trains on both"
        )
        trained = self_train(
            fit,
            train,
            model_inputs(unlabelled),
            config.seed,
            validation=validation if config.refit_with_validation else None,
        )
        result, pseudo_labelled_rows = trained.registered, trained.pseudo_labelled_rows
        self_training_note = trained.note
        validated = trained.validated
        if trained.refit_student is not None:
            refit_validation_rows = len(validation)
    context.log.info(f"self-training: {self_training_note}")
    probabilities, metal = predict(validated.model, validation.x)
    validation_metrics = model_metrics(probabilities, metal, validation.y_class, validation.y_metal)
    # How much an asteroid's looks sharpen the mean of their probabilities (ml/looks.py), fitted out of
    # sample like the temperature: by the early-stopped network, on the validation asteroids' looks.
    exponent, exponent_note = 0.0, "none: the training set stores no validation looks (0: the plain mean)"
    if validation_looks is not None:
        exponent = model_looks_exponent(validated.model, validation_looks, validation.y_class)
        several = int((validation_looks.looks_per_row() > 1).sum())
        exponent_note = (
            f"fitted on {len(validation_looks)} looks at the {validation_looks.rows} validation asteroids "
            f"({several} looked at more than once)"
        )
    context.log.info(f"looks' calibration exponent {exponent:.3f}: {exponent_note}")
    registry = ModelRegistry(store)
    version = registry.register(
        result.model.cpu(),
        metrics={f"validation_{k}": v for k, v in validation_metrics.items()},
        lineage={
            "training_partitions": partitions,
            "calibration_versions": training_manifest.get("calibration_versions", {}),
            "train_rows": len(train),
            "train_rows_kind": train_rows_kind,
            "pseudo_labelled_rows": pseudo_labelled_rows,
            "refit_validation_rows": refit_validation_rows,
            "validation_rows": len(validation),
            "seed": config.seed,
            "device": str(device),
            "code_version": code_version(),
            "dagster_run_id": context.run.run_id,
        },
        attachments={REFERENCE_STATS: reference.to_json().encode()},
        scoring={"looks_exponent": exponent},
    )
    store.put_bytes(lake_layout.CANDIDATE_POINTER, json.dumps({"version": version}).encode())
    for repair in registry.repairs:
        context.log.warning(f"registry repaired: {repair}")
    context.log.info(f"registered candidate {version} (best epoch {result.best_epoch})")
    return dg.MaterializeResult(
        metadata={
            "version": version,
            "device": str(device),
            "workers": config.workers,
            "train_rows": len(train),
            "train_rows_kind": train_rows_kind,
            "pseudo_labelled_rows": pseudo_labelled_rows,
            "refit_validation_rows": refit_validation_rows,
            "self_training": self_training_note,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_validation_loss": validated.best_validation_loss,
            "samples_per_second": round(result.samples_per_second, 1),
            "validation_accuracy": validation_metrics["accuracy"],
            "validation_macro_f1": validation_metrics["macro_f1"],
            "looks_exponent": exponent,
            "looks_exponent_fitted_on": exponent_note,
            "training_partitions": dg.MetadataValue.json(partitions),
            "registry_repairs": dg.MetadataValue.json(registry.repairs),
            # Where the multi-cluster executor ran this step (empty outside Kubernetes).
            **placement_metadata(),
        }
    )


def _load_candidate(store) -> str:
    return json.loads(store.get_bytes(lake_layout.CANDIDATE_POINTER))["version"]


@dg.asset(
    group_name="models",
    deps=["candidate_model"],
    description="Holdout metrics of the candidate, the current champion and a logistic-regression baseline.",
)
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    registry = ModelRegistry(store)
    table = read_parquet(store, lake_layout.TRAINING_SET)
    train, holdout = split_arrays(table, "train"), split_arrays(table, "holdout")
    holdout_looks = _split_looks(
        store, table, load_training_manifest(store, lake_layout.TRAINING_SET), "holdout"
    )
    candidate_version = _load_candidate(store)
    candidate, manifest = registry.load(candidate_version)
    exponent = looks_exponent(manifest)
    scored_on = (
        f"{len(holdout_looks)} looks, each asteroid's probabilities averaged over its looks "
        f"(looks' calibration exponent {exponent:.2f})"
        if holdout_looks is not None
        else "one combined row per asteroid"
    )
    probabilities, metal = predict_split(candidate, holdout.x, holdout_looks, exponent)
    candidate_metrics = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion(holdout.y_class, predicted)

    champion = evaluate_champion(registry, holdout, on_error=context.log.error, looks=holdout_looks)
    baseline_predicted = baseline_predictions(train.x, train.y_class, holdout.x)
    baseline = classification_metrics(holdout.y_class, baseline_predicted)
    # How far the gate's verdict can be trusted on this holdout (docs/operations.md); informs, never decides.
    margin = bootstrap_margin(holdout.y_class, predicted, baseline_predicted)
    context.log.info(f"candidate {candidate_version}: {margin.describe()}")
    evaluation = {
        "candidate": {"version": candidate_version, "metrics": candidate_metrics},
        "champion": champion,
        "baseline": baseline,
        "baseline_margin": margin.to_dict(),
        "holdout_rows": len(holdout),
        "holdout_looks": None if holdout_looks is None else len(holdout_looks),
        "looks_exponent": exponent,
        "confusion_matrix": matrix.tolist(),
        "evaluated_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    store.put_bytes(lake_layout.evaluation(candidate_version), json.dumps(evaluation, indent=2).encode())
    png = confusion_png(matrix, f"candidate {candidate_version} on holdout")
    store.put_bytes(lake_layout.evaluation_confusion_png(candidate_version), png)
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate_version,
            "holdout_rows": len(holdout),
            "holdout_scored_on": scored_on,
            "looks_exponent": exponent,
            "accuracy": candidate_metrics["accuracy"],
            "macro_f1": candidate_metrics["macro_f1"],
            "m_type_recall": candidate_metrics["m_type_recall"],
            "ece": candidate_metrics["ece"],
            "baseline_accuracy": baseline["accuracy"],
            "baseline_macro_f1": baseline["macro_f1"],
            "baseline_m_type_recall": baseline["m_type_recall"],
            "baseline_margin": margin.margin,
            "baseline_margin_low": margin.low,
            "baseline_margin_high": margin.high,
            "baseline_margin_win_share": margin.win_share,
            "champion": (champion["version"] or "unreadable pointer") if champion else "none",
            **({"champion_error": champion["error"]} if champion and "error" in champion else {}),
            # The champion before this run's decision, on this holdout (NaN: none, or unusable).
            **champion_metric_values(champion["metrics"] if champion and "metrics" in champion else None),
            "confusion_matrix": dg.MetadataValue.md(confusion_markdown(matrix)),
            "confusion_matrix_png": dg.MetadataValue.md(_inline_png(png)),
        }
    )


def _split_looks(store, table, manifest, split: str) -> AsteroidLooks | None:
    """The ``split`` asteroids' looks the training set stores beside its look rows (``ml/looks.py``): the
    holdout's, which the networks are scored on, or the validation's, which the looks' calibration
    exponent is fitted on. None where it stores none (no look rows: over the budget, or a set written
    before them): the holdout is scored on its combined rows then, and the exponent is 0. The baseline
    always scores the combined rows it is defined on."""
    load = {"holdout": load_holdout_looks, "validation": load_validation_looks}[split]
    try:
        frame = load(store, manifest)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    try:
        return split_looks(table, frame, split)
    except ValueError as exc:
        raise dg.Failure(
            description=f"the {split} looks of {store.describe(lake_layout.TRAINING_SET)} do not match its "
            f"{split}: {exc}; re-materialize training_set"
        ) from exc


def _inline_png(png: bytes) -> str:
    import base64

    return f"![confusion matrix](data:image/png;base64,{base64.b64encode(png).decode()})"


def _baseline_margin(evaluation: dict) -> MarginInterval | None:
    """The evaluation's bootstrap of the margin over the baseline; None in one written before it existed."""
    recorded = evaluation.get("baseline_margin")
    return MarginInterval(**recorded) if recorded else None


class PromotionConfig(dg.Config):
    min_macro_f1_gain: float = 0.0
    max_class_recall_drop: float = 0.05


@dg.asset(
    group_name="models",
    deps=["model_evaluation"],
    description="The model the fleet should fly: the candidate if it passes the promotion gate.",
)
def champion_model(context: dg.AssetExecutionContext, config: PromotionConfig, lake: LakeResource):
    """Promote the candidate if it beats the baseline and the champion (docs/operations.md).

    Fails, changing nothing, when the champion is unusable (the message names the version, the file at
    fault and the rollback that recovers) or when the candidate is not promoted and there is no champion
    at all (nothing to rank sectors with or to uplink).
    """
    store = lake.store()
    registry = ModelRegistry(store)
    candidate_version = _load_candidate(store)
    evaluation = json.loads(store.get_bytes(lake_layout.evaluation(candidate_version)))
    decision = decide_promotion(
        evaluation["candidate"],
        evaluation["champion"],
        PromotionPolicy(config.min_macro_f1_gain, config.max_class_recall_drop),
        baseline=evaluation["baseline"],
        margin=_baseline_margin(evaluation),
    )
    if decision.halt:
        raise dg.Failure(
            description=f"candidate {candidate_version} not promoted: {decision.reason}",
            metadata={"candidate": candidate_version, "decision": decision.reason},
        )
    if decision.promote:
        registry.promote(candidate_version, reason=decision.reason)
        context.log.info(f"promoted {candidate_version}: {decision.reason}")
    else:
        context.log.warning(f"candidate {candidate_version} not promoted: {decision.reason}")
    try:
        champion = registry.champion()
    except CorruptRecordError as exc:
        raise dg.Failure(description=str(exc)) from exc
    if champion is None:
        raise dg.Failure(
            description=(
                f"no champion model: candidate {candidate_version} was not promoted ({decision.reason}) and "
                "no earlier version is the champion, so sector_rankings and uplink_package cannot proceed. "
                "Train a better candidate (more days in training_set.window_days, more epochs) and re-run."
            ),
            metadata={"candidate": candidate_version, "decision": decision.reason, "promoted": False},
        )
    # The holdout metrics of whichever model is champion now, for the exporter and dashboards.
    champion_metrics = champion_holdout_metrics(evaluation, champion["version"])
    if champion_metrics is None:
        measured = (evaluation["champion"] or {}).get("version")
        context.log.warning(
            f"the champion is now {champion['version']}, not the {measured} "
            "model_evaluation measured (changed meanwhile?): no champion metrics this time"
        )
    return dg.MaterializeResult(
        metadata={
            "champion": champion["version"],
            "candidate": candidate_version,
            "promoted": decision.promote,
            "decision": decision.reason,
            "promoted_at": champion["promoted_at"],
            **champion_metric_values(champion_metrics),
        }
    )


@dg.asset(
    group_name="models",
    deps=["champion_model", "asteroid_features"],
    kinds={"parquet"},
    description="Expected mining value per belt sector under the champion, over the feature window.",
)
def sector_rankings(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    registry = ModelRegistry(store)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure("no champion model to rank sectors with")
    model, _ = registry.load(champion["version"])
    manifest = load_training_manifest(store, lake_layout.TRAINING_SET)
    features = combine_days(
        [read_parquet(store, lake_layout.asteroid_features(d)) for d in manifest["partitions"]]
    )
    probabilities, metal = predict(model, model_inputs(features))
    value = mining_value(probabilities, metal)
    ranked = rank_sectors(
        features["sector"].to_numpy(), value, probabilities[:, COMPLEX_INDEX[METAL_RICH_COMPLEX]]
    )
    write_parquet(store, lake_layout.SECTOR_RANKINGS, ranked)
    return dg.MaterializeResult(
        metadata={
            "champion": champion["version"],
            "asteroids_scored": len(features),
            "top_sectors": dg.MetadataValue.md(ranked.head(10).to_markdown(index=False, floatfmt=".3f")),
            "dagster/row_count": len(ranked),
            "mean_mining_value": float(np.mean(value)) if len(features) else 0.0,
        }
    )


defs = dg.Definitions(assets=[candidate_model, model_evaluation, champion_model, sector_rankings])
