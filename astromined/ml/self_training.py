"""Self-training: a trained candidate (the teacher) labels unlabelled asteroids, and the rows it is sure of
join the labelled rows that a second candidate (the student) trains on.

Why: on a first day the network is short of labels, not of model (the same network trained on a week of
labels beats the baseline on every one-day case measured), and a day observes ~4x as many unlabelled
asteroids as labelled ones. Measured on the 56 one-day benchmark cases over three training seeds
(BENCHMARKS.md, model quality, eighth and ninth sessions): 165 of 168 (case, seed) pairs won against the
candidate's 157 without it, for ~2.5x the training; on 2- and 3-day windows it gained nothing (seed 7,
threshold 0.9: 55 of 56 against 56, and 55 against 55). So training_set stores the unlabelled rows on
one-day windows only (features/unlabelled_rows.py), and candidate_model self-trains when the set has them
(``self_train``); `benchmarks/model_quality.py` measures it the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from astromined.ml.dataset import SplitArrays, concatenated
from astromined.ml.train import TrainResult, predict

# The teacher's lowest class probability for an unlabelled row to be trained on. With the limit below, on
# the 56 one-day cases and training seeds 7, 1234, 42: 0.8 won 165 of 168 (case, seed) pairs, 0.9 160,
# 0.95 163, with 3,008, 3,012 and 3,083 holdout errors; on three fresh seeds (99, 2025, 5), chosen after,
# 0.8 and 0.9 won 163 each, with 2,996 and 3,022 errors (BENCHMARKS.md, model quality, ninth session).
# Seed 7 alone, earlier: every row with no limit won 53 of 56, 0.9 with no limit 51.
SELF_TRAINING_CONFIDENCE = 0.8


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


@dataclasses.dataclass(frozen=True)
class SelfTrained:
    """A self-training's two trainings and what joined the student's rows."""

    teacher: TrainResult
    student: TrainResult
    unlabelled_rows: int
    pseudo_labelled_rows: int

    @property
    def note(self) -> str:
        """What the candidate's metadata and log say about it."""
        return (
            f"student trained on {self.pseudo_labelled_rows} of {self.unlabelled_rows} unlabelled rows "
            f"(teacher at least {SELF_TRAINING_CONFIDENCE:g} sure, at most as many as the train rows) "
            f"beside the train rows; teacher best epoch {self.teacher.best_epoch}"
        )


def self_train(
    fit: Callable[[SplitArrays, str], TrainResult],
    train: SplitArrays,
    unlabelled_x: np.ndarray,
    seed: int,
) -> SelfTrained:
    """Train the teacher on ``train`` (``fit(rows, "teacher")``), let it label ``unlabelled_x`` (model
    inputs), and train the student on ``train`` followed by the rows it is sure of (``pseudo_labelled``,
    at most ``len(train)``, drawn with ``seed``): ``fit(rows, "student")``. ``fit`` trains and validates
    as the caller does (one process, or data-parallel), so the teacher and the student differ only in
    their rows."""
    teacher = fit(train, "teacher")
    probabilities, metal = predict(teacher.model, unlabelled_x)
    pseudo = pseudo_labelled(unlabelled_x, probabilities, metal, limit=len(train), seed=seed)
    student = fit(concatenated([train, pseudo]), "student")
    return SelfTrained(teacher, student, len(unlabelled_x), len(pseudo))
