"""Self-training: a trained candidate (the teacher) labels unlabelled asteroids, and the rows it is sure of
join the labelled rows that a second candidate (the student) trains on.

Why: on a first day the network is short of labels, not of model (the same network trained on a week of
labels beats the baseline on every one-day case measured), and a day observes ~4x as many unlabelled
asteroids as labelled ones. Measured on the 56 one-day benchmark cases over three training seeds
(BENCHMARKS.md, model quality, eighth session): 160 of 168 (case, seed) pairs won against the candidate's
157, for ~2.5x the training; on 2- and 3-day windows it gained nothing (seed 7: 55 of 56 against 56, and
55 against 55). `benchmarks/model_quality.py --self-training` measures it; candidate_model does not use it
yet.
"""

from __future__ import annotations

import numpy as np

from astromined.ml.dataset import SplitArrays

# The teacher's lowest class probability for an unlabelled row to be trained on. With seed 7 on the 56
# one-day cases: 0.9 with the limit below won 54; every row, no limit, 53; 0.9 with no limit, 51.
SELF_TRAINING_CONFIDENCE = 0.9


def pseudo_labelled(
    x: np.ndarray,
    probabilities: np.ndarray,
    metal: np.ndarray,
    limit: int,
    seed: int,
    confidence: float = SELF_TRAINING_CONFIDENCE,
) -> SplitArrays:
    """The unlabelled rows ``x`` that the teacher (its class ``probabilities`` and ``metal`` richness per
    row) gives a class probability of at least ``confidence``, with that class and metal richness as their
    labels, in their order in ``x``. When more than ``limit`` qualify, ``limit`` of them drawn with
    ``seed``: with ``limit`` = the labelled rows, the pseudo-labels never outnumber the rows they join."""
    if probabilities.ndim != 2 or len(probabilities) != len(x) or len(metal) != len(x):
        raise ValueError(
            f"pseudo-labelling needs one probability row and one metal richness per unlabelled row: "
            f"{len(x)} rows, probabilities of shape {probabilities.shape}, {len(metal)} metal values"
        )
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"the self-training confidence is a probability in [0, 1], not {confidence}")
    if limit < 0:
        raise ValueError(f"the pseudo-label limit must be 0 or more, not {limit}")
    sure = np.flatnonzero(probabilities.max(axis=1) >= confidence) if len(x) else np.zeros(0, np.int64)
    if len(sure) > limit:
        sure = np.sort(np.random.default_rng(seed).choice(sure, limit, replace=False))
    return SplitArrays(
        x=x[sure],
        y_class=probabilities[sure].argmax(axis=1).astype(np.int64),
        y_metal=np.asarray(metal)[sure].astype(np.float32),
    )
