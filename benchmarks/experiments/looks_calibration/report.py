"""The looks' calibration exponent judged on ``dump_means.py``'s pickles: the plain mean, the exponent
fitted within [0, 2] and within [0, 1] (refitted here on each network's validation means), per-case and
pooled holdout ECE, pooled cross-entropy, and confidence against accuracy on the asteroids looked at more
than once and at once. The errors are the same in every row: the exponent never changes a class.

Usage:  .venv/bin/python benchmarks/experiments/looks_calibration/report.py [--self-trained] A.pkl [B.pkl ...]
(``--self-trained``: one-day runs, where each case scores the candidate and then its teacher; only the
candidate is reported.)
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import astromined.ml.looks as looks
from astromined.ml.evaluate import expected_calibration_error


def fit_within(mean, looks_per_row, labels, upper: float) -> float:
    saved = looks.LOOKS_EXPONENT_RANGE
    looks.LOOKS_EXPONENT_RANGE = (0.0, upper)
    try:
        return looks.fit_looks_exponent(mean, looks_per_row, labels)
    finally:
        looks.LOOKS_EXPONENT_RANGE = saved


def confidence(probabilities: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> str:
    """Mean confidence / accuracy of the top class on the ``mask`` rows."""
    top = probabilities[mask]
    return f"{top.max(1).mean():.4f} / {(top.argmax(1) == labels[mask]).mean():.4f}"


def main() -> int:
    args = sys.argv[1:]
    self_trained = "--self-trained" in args
    paths = [Path(arg) for arg in args if arg != "--self-trained"]
    dumped = [entry for path in paths for entry in pickle.loads(path.read_bytes())]
    pairs = list(zip(dumped[0::2], dumped[1::2], strict=True))
    # (the session's own runs tagged them "val" and "hold")
    assert all(v[0].startswith("val") and h[0].startswith("hold") for v, h in pairs)
    if self_trained:
        pairs = pairs[0::2]
    rows = {"plain mean": 0.0, "fit within [0, 2]": 2.0, "fit within [0, 1]": 1.0}
    print(f"{len(pairs)} cases, {sum(int((h[1].argmax(1) != h[3]).sum()) for _, h in pairs)} holdout errors")
    plain_eces = None
    for name, upper in rows.items():
        probabilities, labels, counts, eces, exponents = [], [], [], [], []
        for validation, holdout in pairs:
            _, mean, looks_per_row, y, _product_exponent = holdout
            exponent = fit_within(*validation[1:], upper) if upper else 0.0
            sharpened = looks.sharpen_by_looks(mean, looks_per_row, exponent)
            probabilities.append(sharpened)
            labels.append(y)
            counts.append(looks_per_row)
            eces.append(expected_calibration_error(sharpened, y))
            exponents.append(exponent)
        p, y, n = np.concatenate(probabilities), np.concatenate(labels), np.concatenate(counts)
        several = n > 1
        plain_eces = eces if plain_eces is None else plain_eces
        lower = sum(e < b for e, b in zip(eces, plain_eces, strict=True))
        cross_entropy = -np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)))

        print(
            f"{name}: exponent median {np.median(exponents):.3f}; per-case ECE median {np.median(eces):.4f} "
            f"(lower than the plain mean's on {lower}); pooled ECE {expected_calibration_error(p, y):.4f}; "
            f"cross-entropy {cross_entropy:.4f}; looked at more than once ({several.sum()}) confidence / "
            f"accuracy {confidence(p, y, several)}; at once ({(~several).sum()}) {confidence(p, y, ~several)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
