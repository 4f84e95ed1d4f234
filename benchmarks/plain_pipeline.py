"""The downlink-to-uplink pipeline as one plain Python process: the baseline of `data_to_model.py`.

The same domain functions the assets call (astromined.telemetry, features, ml, storage), in the order the
main job runs them, on the same local lake and landing-zone layout, with the same checks (schema
validation, blocking package checks) — but no Dagster: no instance, no event log, no run storage, no
step boundaries, no asset checks recorded. What a careful engineer's script would do. It never imports
dagster, ``assets`` or ``resources`` (``data_to_model.py`` asserts that after a run).

Usage:  .venv/bin/python benchmarks/plain_pipeline.py --state DIR --day YYYY-MM-DD --timings OUT.json
        [--scale benchmark] [--window-days 7]

``--state`` is laid out as ``astromined run`` lays out ASTROMINED_STATE_DIR (``landing_zone/``, ``lake/``,
``secrets/``). OUT.json gets each stage's wall-clock start and end (``time.time()``) and the outcome.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import json
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# In the order the main job runs them; data_to_model.py reports by these names.
STAGES = (
    "readiness",
    "ingest",
    "features",
    "training_set",
    "train",
    "evaluate",
    "promote",
    "rank",
    "package",
)


class StageClock:
    """Wall-clock start/end of each stage, as ``time.time()`` (comparable with Dagster's step stats)."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.time()
        try:
            yield
        finally:
            self.stages[name] = {"start": started, "end": time.time()}
            print(f"plain: {name} {self.stages[name]['end'] - started:.2f} s", file=sys.stderr, flush=True)


def run(state: Path, day: dt.date, clock: StageClock, window_days: int = 7) -> dict:
    import numpy as np
    import torch

    from astromined import lake_layout
    from astromined.calibration import FleetCalibration, is_calibration_key, select_for_day
    from astromined.features.engineering import (
        INPUT_COLUMNS,
        MODEL_FEATURES,
        aggregate_by_asteroid,
        model_inputs,
    )
    from astromined.features.reference_stats import ReferenceStatistics
    from astromined.features.training_set import (
        build_training_set,
        combine_days,
        load_holdout_looks,
        load_look_rows,
        load_training_manifest,
        load_training_reference,
        load_unlabelled_rows,
        load_validation_looks,
        save_training_set,
        window_look_rows,
    )
    from astromined.features.unlabelled_rows import window_unlabelled_rows
    from astromined.features.validation import validate_features, validate_training_set
    from astromined.ml.champion import evaluate_champion
    from astromined.ml.dataset import split_arrays
    from astromined.ml.device import select_device
    from astromined.ml.evaluate import (
        baseline_predictions,
        classification_metrics,
        confusion,
        confusion_png,
        model_metrics,
    )
    from astromined.ml.looks import model_looks_exponent, predict_split, split_looks
    from astromined.ml.margin import bootstrap_margin
    from astromined.ml.model import ArchitectureConfig
    from astromined.ml.promotion import PromotionPolicy, decide_promotion
    from astromined.ml.quantize import parity, quantize, to_npz_bytes
    from astromined.ml.registry import ModelRegistry
    from astromined.ml.scoring import mining_value, rank_sectors
    from astromined.ml.self_training import refit_config, self_train
    from astromined.ml.train import TrainConfig, predict, train_model
    from astromined.ml.uplink import (
        build_model_package,
        check_package,
        generate_private_key_pem,
        latest_record,
        load_private_key,
        public_key_fingerprint,
        public_key_pem,
    )
    from astromined.storage import (
        LocalBlobStore,
        read_arrow_columns,
        read_parquet,
        read_parquet_metadata,
        write_parquet,
    )
    from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES, METAL_RICH_COMPLEX
    from astromined.telemetry.ingest import stream_day
    from astromined.telemetry.parquet_sink import ParquetDaySink

    partition = day.isoformat()
    lake = LocalBlobStore(state / "lake")
    landing = LocalBlobStore(state / "landing_zone")
    device = select_device()  # what ComputeResource does (CUDA when present; one CPU thread)

    with clock.stage("readiness"):
        # What the local readiness probes do: a lake round trip, free disk, a matmul on the device.
        probe_key = f"_readiness/probe-{uuid.uuid4().hex}"
        lake.put_bytes(probe_key, b"probe")
        assert lake.get_bytes(probe_key) == b"probe"
        lake.delete(probe_key)
        if shutil.disk_usage(state).free < 2 * 2**30:
            raise RuntimeError(f"less than 2 GiB free under {state}")
        matrix = torch.randn(256, 256, device=device)
        if float((matrix @ matrix).sum()) != float((matrix @ matrix).sum()):
            raise RuntimeError(f"{device} computes NaN")

    with clock.stage("ingest"):
        keys = [
            k
            for k in landing.list_keys(f"downlinks/{partition}/")
            if not k.rsplit("/", 1)[-1].startswith("_")
        ]
        if not keys:
            raise RuntimeError(f"no downlink files for {partition} under {landing.describe('downlinks/')}")
        with ParquetDaySink(lake.staging_dir()) as sink:
            stats = stream_day(
                day, ((k.rsplit("/", 1)[-1], lambda key=k: landing.get_bytes(key)) for k in keys), sink
            )
            sink.close()
            lake.put_file(lake_layout.raw_quarantine(partition), sink.quarantine_path)
            lake.put_file(lake_layout.raw_observations(partition), sink.observations_path)
        if not stats.reconciles:
            raise RuntimeError(f"{partition}: packets do not reconcile")

    with clock.stage("features"):
        calibrations = [
            FleetCalibration.from_json(landing.get_bytes(k), landing.describe(k))
            for k in sorted(landing.list_keys("calibration/"))
            if is_calibration_key(k)
        ]
        calibration = select_for_day(calibrations, day)
        observations = read_arrow_columns(lake, lake_layout.raw_observations(partition), INPUT_COLUMNS)
        features = aggregate_by_asteroid(observations, calibration)
        write_parquet(
            lake,
            lake_layout.asteroid_features(partition),
            features,
            metadata={lake_layout.CALIBRATION_VERSION: calibration.version},
        )
        model_inputs(features)  # raises on non-finite inputs, as the blocking check fails the step
        report = validate_features(features, partition)
        if not report.passed:
            raise RuntimeError(report.message)
        del observations

    with clock.stage("training_set"):
        days = lake_layout.feature_days(lake.list_keys(lake_layout.FEATURES_PREFIX))[-window_days:]
        daily = [read_parquet(lake, lake_layout.asteroid_features(d)) for d in days]
        combined = combine_days(daily)
        reference = ReferenceStatistics.from_frames(daily)
        table = build_training_set(combined, read_parquet(landing, "catalog/survey_labels.parquet"))
        versions = {
            d: read_parquet_metadata(lake, lake_layout.asteroid_features(d)).get(
                lake_layout.CALIBRATION_VERSION, lake_layout.UNKNOWN_CALIBRATION
            )
            for d in days
        }
        # TrainingSetConfig's defaults: the "auto" look unit, within the default budget.
        look_rows, _ = window_look_rows(
            lake,
            daily,
            days,
            table,
            versions,
            lambda d: select_for_day(calibrations, dt.date.fromisoformat(d)),
        )
        # TrainingSetConfig's defaults: self-training's window, within the default budget.
        unlabelled_rows, _ = window_unlabelled_rows(daily, days, table)
        del daily
        save_training_set(
            lake,
            lake_layout.TRAINING_SET,
            table,
            {"partitions": days, "calibration_versions": versions},
            reference,
            look_rows,
            unlabelled_rows=unlabelled_rows,
        )
        report = validate_training_set(table)
        if not report.passed:
            raise RuntimeError(report.message)

    with clock.stage("train"):
        table = read_parquet(lake, lake_layout.TRAINING_SET)
        manifest = load_training_manifest(lake, lake_layout.TRAINING_SET)
        looks = load_look_rows(lake, manifest)  # CandidateConfig.look_rows
        unlabelled = load_unlabelled_rows(lake, manifest)  # CandidateConfig.self_training
        train = split_arrays(table if looks is None else looks.rows, "train")
        validation = split_arrays(table, "validation")
        architecture = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES)
        # CandidateConfig's defaults (assets/models.py); data_to_model.py checks that both sides registered
        # the same model version, so a drift between the two shows up there.
        train_config = TrainConfig(ensemble_members=3)

        def fit(rows, _role="", epochs=None):
            return train_model(
                architecture,
                rows.x,
                rows.y_class,
                rows.y_metal,
                validation.x,
                validation.y_class,
                validation.y_metal,
                device=device,
                config=refit_config(train_config, epochs),
            )

        refit_validation_rows = 0
        if unlabelled is None:
            result, pseudo_labelled_rows = fit(train), 0
            validated = result
        else:  # CandidateConfig.refit_with_validation
            trained = self_train(
                fit, train, model_inputs(unlabelled), train_config.seed, validation=validation
            )
            result, pseudo_labelled_rows = trained.registered, trained.pseudo_labelled_rows
            validated = trained.validated
            refit_validation_rows = len(validation)
        probabilities, metal = predict(validated.model, validation.x)
        validation_metrics = model_metrics(probabilities, metal, validation.y_class, validation.y_metal)
        validation_looks = split_looks(table, load_validation_looks(lake, manifest), "validation")
        exponent = (
            0.0
            if validation_looks is None
            else model_looks_exponent(validated.model, validation_looks, validation.y_class)
        )
        reference = load_training_reference(lake, lake_layout.TRAINING_SET)
        registry = ModelRegistry(lake)
        version = registry.register(
            result.model.cpu(),
            metrics={f"validation_{k}": v for k, v in validation_metrics.items()},
            lineage={
                "training_partitions": manifest["partitions"],
                "calibration_versions": manifest.get("calibration_versions", {}),
                "train_rows": len(train),
                "train_rows_kind": "per asteroid" if looks is None else looks.kind,
                "pseudo_labelled_rows": pseudo_labelled_rows,
                "refit_validation_rows": refit_validation_rows,
                "validation_rows": len(validation),
                "device": str(device),
            },
            attachments={"reference_stats.json": reference.to_json().encode()},
            scoring={"looks_exponent": exponent},
        )
        lake.put_bytes(lake_layout.CANDIDATE_POINTER, json.dumps({"version": version}).encode())

    with clock.stage("evaluate"):
        table = read_parquet(lake, lake_layout.TRAINING_SET)
        train, holdout = split_arrays(table, "train"), split_arrays(table, "holdout")
        manifest = load_training_manifest(lake, lake_layout.TRAINING_SET)
        holdout_looks = split_looks(table, load_holdout_looks(lake, manifest))
        candidate, _ = registry.load(version)
        probabilities, metal = predict_split(candidate, holdout.x, holdout_looks, exponent)
        candidate_metrics = model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal)
        predicted = probabilities.argmax(axis=1)
        matrix = confusion(holdout.y_class, predicted)
        champion = evaluate_champion(registry, holdout, looks=holdout_looks)
        baseline_predicted = baseline_predictions(train.x, train.y_class, holdout.x)
        baseline = classification_metrics(holdout.y_class, baseline_predicted)
        margin = bootstrap_margin(holdout.y_class, predicted, baseline_predicted)
        evaluation = {
            "candidate": {"version": version, "metrics": candidate_metrics},
            "champion": champion,
            "baseline": baseline,
            "baseline_margin": margin.to_dict(),
            "holdout_rows": len(holdout),
            "holdout_looks": None if holdout_looks is None else len(holdout_looks),
            "looks_exponent": exponent,
            "confusion_matrix": matrix.tolist(),
        }
        lake.put_bytes(lake_layout.evaluation(version), json.dumps(evaluation, indent=2).encode())
        lake.put_bytes(f"models/evaluations/{version}_confusion.png", confusion_png(matrix, version))

    with clock.stage("promote"):
        decision = decide_promotion(
            evaluation["candidate"],
            evaluation["champion"],
            PromotionPolicy(),
            baseline=evaluation["baseline"],
            margin=margin,
        )
        if decision.promote:
            registry.promote(version, reason=decision.reason)
        champion_record = registry.champion()
        if champion_record is None:
            raise RuntimeError(f"no champion: {decision.reason}")

    with clock.stage("rank"):
        model, _ = registry.load(champion_record["version"])
        window = combine_days([read_parquet(lake, lake_layout.asteroid_features(d)) for d in days])
        probabilities, metal = predict(model, model_inputs(window))
        ranked = rank_sectors(
            window["sector"].to_numpy(),
            mining_value(probabilities, metal),
            probabilities[:, COMPLEX_INDEX[METAL_RICH_COMPLEX]],
        )
        write_parquet(lake, lake_layout.SECTOR_RANKINGS, ranked)

    with clock.stage("package"):
        key_path = state / "secrets" / "uplink_signing_key.pem"
        if not key_path.exists():
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key_path.write_bytes(generate_private_key_pem())
            key_path.chmod(0o400)
        private_key = load_private_key(key_path.read_bytes())
        fleet_key = public_key_pem(private_key)
        champion_version = champion_record["version"]
        model, manifest = registry.load(champion_version)
        arrays = quantize(model)
        holdout = split_arrays(read_parquet(lake, lake_layout.TRAINING_SET), "holdout")
        agreement = parity(model, arrays, holdout.x)
        package, package_manifest = build_model_package(
            to_npz_bytes(arrays), champion_version, manifest, private_key
        )
        staging = lake_layout.uplink_staging_package(f"plain-{uuid.uuid4().hex}")
        lake.put_bytes(staging, package)
        verdict = check_package(
            lake.get_bytes(staging),
            fleet_key,
            champion_version,
            agreement,
            max_bytes=256 * 1024,
            min_top1_agreement=0.99,
        )
        if not verdict.passed:
            raise RuntimeError(f"package for {champion_version} not published: {verdict.failures}")
        published = lake_layout.uplink_package(champion_version)
        lake.put_bytes(published, package)
        record = latest_record(
            champion_version,
            published,
            package,
            public_key_fingerprint(fleet_key),
            package_manifest["created_at"],
        )
        lake.put_bytes(lake_layout.UPLINK_LATEST, json.dumps(record).encode())
        lake.delete(staging)

    return {
        "packets_in": stats.packets_in,
        "bytes_in": stats.bytes_in,
        "asteroids": len(features),
        "training_rows": len(table),
        "epochs": result.epochs_run,
        "candidate": version,
        "champion": champion_record["version"],
        "macro_f1": candidate_metrics["macro_f1"],
        "baseline_macro_f1": baseline["macro_f1"],
        "package_bytes": len(package),
        "int8_top1_agreement": agreement["top1_agreement"],
        "np_version": np.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--timings", type=Path, required=True)
    parser.add_argument("--window-days", type=int, default=7)
    args = parser.parse_args(argv)
    clock = StageClock()
    outcome = run(args.state, args.day, clock, window_days=args.window_days)
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"dagster", "assets", "resources"})
    args.timings.write_text(json.dumps({"stages": clock.stages, "outcome": outcome, "orchestrator": loaded}))
    return 0


if __name__ == "__main__":
    # What `astromined run` does at exit (astromined/cli.py, _skip_collecting_the_heap_at_exit): the
    # interpreter's final collections skip the heap the OS frees anyway. The same here, so the comparison
    # measures orchestration, not a process-exit setting only one side has.
    atexit.register(gc.freeze)
    sys.exit(main())
