"""The irreducible part of each pipeline stage, measured on a lake the plain pipeline filled.

Run by ``data_to_model.py --sections limits`` in a child process (files in the page cache, as in the
timed runs); prints one JSON line: stage → {"seconds", "what"}.

- ingest:   read every downlink file of the day (``open().read()``): the bytes must be read at least once;
- features: read the day's raw observation table (Parquet → Arrow), the input the aggregation needs;
- train:    one pass of the training rows through the candidate (each of its 3 ensemble members), forward +
            backward + optimizer step, plus the validation forward pass that ends every epoch
            (``train_model`` with ``max_epochs=1``);
- evaluate: one forward pass of the candidate over the holdout rows.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _best_of(repeats: int, work) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--day", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import pyarrow.parquet as pq

    from astromined import lake_layout
    from astromined.features.engineering import MODEL_FEATURES
    from astromined.ml.dataset import split_arrays
    from astromined.ml.device import select_device
    from astromined.ml.model import ArchitectureConfig
    from astromined.ml.registry import ModelRegistry
    from astromined.ml.train import TrainConfig, predict, train_model
    from astromined.storage import LocalBlobStore, read_parquet
    from astromined.taxonomy import COMPLEXES

    lake = LocalBlobStore(args.state / "lake")
    files = sorted((args.state / "landing_zone" / "downlinks" / args.day).glob("*.ccsds"))

    def read_downlinks() -> None:
        for path in files:
            with open(path, "rb") as handle:
                handle.read()

    def read_raw_table() -> None:
        pq.read_table(io.BytesIO(lake.get_bytes(lake_layout.raw_observations(args.day))))

    table = read_parquet(lake, lake_layout.TRAINING_SET)
    train, validation = split_arrays(table, "train"), split_arrays(table, "validation")
    holdout = split_arrays(table, "holdout")
    architecture = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES)
    device = select_device()  # as the candidate_model step runs
    # One epoch of the candidate as candidate_model trains it (CandidateConfig: a seed ensemble of 3).
    one_epoch = TrainConfig(max_epochs=1, temperature_scaling=False, ensemble_members=3)

    def one_training_pass() -> None:
        train_model(
            architecture,
            train.x,
            train.y_class,
            train.y_metal,
            validation.x,
            validation.y_class,
            validation.y_metal,
            device=device,
            config=one_epoch,
        )

    version = json.loads(lake.get_bytes(lake_layout.CANDIDATE_POINTER))["version"]
    model, _ = ModelRegistry(lake).load(version)

    def holdout_forward() -> None:
        predict(model, holdout.x)

    results = {
        "ingest": {
            "seconds": _best_of(args.repeats, read_downlinks),
            "what": f"read {len(files)} downlink files",
        },
        "features": {"seconds": _best_of(args.repeats, read_raw_table), "what": "read the raw table"},
        "train": {
            "seconds": _best_of(args.repeats, one_training_pass),
            "what": f"one epoch of the 3 members, {len(train)} rows",
        },
        "evaluate": {
            "seconds": _best_of(args.repeats, holdout_forward),
            "what": f"forward, {len(holdout)} rows",
        },
    }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
