"""Run benchmarks/model_quality.py and keep, per scored network, what the looks' calibration exponent is
fitted and judged on: the plain mean over each validation asteroid's looks (of the early-stopped network
the exponent is fitted with) and over each holdout asteroid's looks (of the network scored), with each
asteroid's number of looks and its class, and the exponent the product fitted.

Usage:  .venv/bin/python benchmarks/experiments/looks_calibration/dump_means.py OUT.pkl [model_quality args]
e.g.    ... dump_means.py d7-42.pkl --window 7 --networks candidate --seeds 7 --populations 42,7,1234,1

The pickle is a list of ("validation", mean, looks per asteroid, labels) and ("holdout", mean, looks per
asteroid, labels, exponent) tuples, one pair per scored network in model_quality.py's order (per
population, day, network). ``report.py`` reads it. Sixteenth session, BENCHMARKS.md (model quality).
"""

from __future__ import annotations

import atexit
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import model_quality

from astromined.ml.looks import predict_from_looks
from astromined.ml.train import predict

OUT = Path(sys.argv.pop(1))
DUMPED: list[tuple] = []
atexit.register(lambda: OUT.write_bytes(pickle.dumps(DUMPED)))
_exponent_of, _holdout_scores = model_quality.looks_exponent_of, model_quality.holdout_scores


def exponent_of(early_stopped, validation, validation_looks, holdout_looks):
    if holdout_looks is not None and validation_looks is not None:
        mean, _ = predict_from_looks(lambda x: predict(early_stopped, x), validation_looks)
        DUMPED.append(("validation", mean, validation_looks.looks_per_row(), validation.y_class))
    return _exponent_of(early_stopped, validation, validation_looks, holdout_looks)


def holdout_scores(model, holdout, baseline_predicted, looks, exponent=0.0):
    if looks is not None:
        mean, _ = predict_from_looks(lambda x: predict(model, x), looks)
        DUMPED.append(("holdout", mean, looks.looks_per_row(), holdout.y_class, exponent))
    return _holdout_scores(model, holdout, baseline_predicted, looks, exponent)


model_quality.looks_exponent_of, model_quality.holdout_scores = exponent_of, holdout_scores
if __name__ == "__main__":
    raise SystemExit(model_quality.main())
