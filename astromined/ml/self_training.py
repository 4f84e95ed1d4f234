"""Self-training: a trained candidate (the teacher) labels unlabelled asteroids, and the rows it is sure of
join the labelled rows that a second candidate (the student) trains on; then both are refit on the
validation rows as well, for as long as early stopping on them said.

Why: on a first day the network is short of labels, not of model (the same network trained on a week of
labels beats the baseline on every one-day case measured), a day observes ~4x as many unlabelled
asteroids as labelled ones, and the validation split holds ~15 % of the labels. Measured on the 56 one-day
benchmark cases over three training seeds (BENCHMARKS.md, model quality): the candidate without either won
157 of 168 (case, seed) pairs (3,076 holdout errors), self-trained 165 (3,008; eighth and ninth sessions),
self-trained and refit 167 (2,940; twelfth session; 164 against a baseline fit on the validation rows
too, as without the refit), for ~2.5x and ~5x the training. On 2- and 3-day
windows self-training gained nothing (threshold 0.9: 55 of 56 against 56, and 55 against 55), so
training_set stores the unlabelled rows on one-day windows only (features/unlabelled_rows.py), and
candidate_model self-trains, and refits, when the set has them (``self_train``);
`benchmarks/model_quality.py` measures it the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from astromined.ml.dataset import SplitArrays, concatenated
from astromined.ml.train import TrainConfig, TrainResult, fold_temperature, predict

# The teacher's lowest class probability for an unlabelled row to be trained on. With the limit below, on
# the 56 one-day cases and training seeds 7, 1234, 42 (no refit): 0.8 won 165 of 168 (case, seed) pairs,
# 0.9 160, 0.95 163, 0.7 162, 0.6 161, with 3,008, 3,012, 3,083, 3,031 and 3,010 holdout errors; on three
# fresh seeds (99, 2025, 5), chosen after, 0.8 and 0.9 won 163 each, with 2,996 and 3,022 errors
# (BENCHMARKS.md, model quality, ninth and twelfth sessions). Seed 7 alone, earlier: every row with no
# limit won 53 of 56, 0.9 with no limit 51.
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


# fit(rows, role, epochs): train as the caller does on ``rows`` and validate on its validation rows;
# ``epochs`` None stops early on them, an int trains that many epochs with no early stop (a refit).
Fit = Callable[[SplitArrays, str, "int | None"], TrainResult]


def refit_config(config: TrainConfig, epochs: int | None) -> TrainConfig:
    """``config`` as a ``Fit`` trains with ``epochs``: unchanged for None, else exactly ``epochs`` epochs
    (patience as long, so no early stop; the validation rows, now trained on, still pick the best of
    them and fit the temperature)."""
    if epochs is None:
        return config
    if epochs < 1:
        raise ValueError(f"a refit trains at least one epoch, not {epochs}")
    return dataclasses.replace(config, max_epochs=epochs, patience=epochs)


def with_temperature_of(refit: TrainResult, early_stopped: TrainResult) -> TrainResult:
    """``refit`` with ``early_stopped``'s temperature instead of its own (its class logits rescaled in
    place; the predicted classes stay). A refit fits its temperature on validation rows it has learned,
    not on rows it has not seen; the early-stopped training's was fitted out of sample."""
    fold_temperature(refit.model, early_stopped.temperature / refit.temperature)
    return dataclasses.replace(refit, temperature=early_stopped.temperature)


def early_stopped_epochs(result: TrainResult) -> int:
    """The epochs a refit trains: the early-stopped training's best epoch (0-based), + 1; for an ensemble
    the mean of its members' best epochs, rounded (half to even)."""
    best = result.member_best_epochs or (result.best_epoch,)
    return round(float(np.mean(best))) + 1


@dataclasses.dataclass(frozen=True)
class SelfTrained:
    """A self-training's trainings and what joined the student's rows.

    With a refit (``self_train(..., validation=...)``) ``refit_teacher`` and ``refit_student`` are set and
    ``pseudo_labelled_rows`` counts the refit student's pseudo-labels; ``registered`` is the network the
    candidate registers."""

    teacher: TrainResult
    student: TrainResult
    unlabelled_rows: int
    pseudo_labelled_rows: int
    refit_teacher: TrainResult | None = None
    refit_student: TrainResult | None = None
    labelled_rows: int = 0  # the rows the refit trains on before its pseudo-labels (train + validation)

    @property
    def registered(self) -> TrainResult:
        return self.refit_student if self.refit_student is not None else self.student

    @property
    def validated(self) -> TrainResult:
        """The network whose validation metrics are reported: the early-stopped student, which did not
        train on the validation rows (a refit student did)."""
        return self.student

    @property
    def note(self) -> str:
        """What the candidate's metadata and log say about it."""
        if self.refit_student is None:
            return (
                f"student trained on {self.pseudo_labelled_rows} of {self.unlabelled_rows} unlabelled rows "
                f"(teacher at least {SELF_TRAINING_CONFIDENCE:g} sure, at most as many as the train rows) "
                f"beside the train rows; teacher best epoch {self.teacher.best_epoch}"
            )
        assert self.refit_teacher is not None
        return (
            f"student trained on {self.pseudo_labelled_rows} of {self.unlabelled_rows} unlabelled rows "
            f"(refit teacher at least {SELF_TRAINING_CONFIDENCE:g} sure, at most as many as the labelled "
            f"rows) beside the {self.labelled_rows} train and validation rows, for the "
            f"{early_stopped_epochs(self.student)} epochs the early-stopped student took; the teacher "
            f"refit on train and validation for its {early_stopped_epochs(self.teacher)}. Validation "
            f"metrics are the early-stopped student's: the registered network trained on the validation rows"
        )


def self_train(
    fit: Fit,
    train: SplitArrays,
    unlabelled_x: np.ndarray,
    seed: int,
    validation: SplitArrays | None = None,
) -> SelfTrained:
    """Train the teacher on ``train`` (``fit(rows, "teacher", None)``), let it label ``unlabelled_x``
    (model inputs), and train the student on ``train`` followed by the rows it is sure of
    (``pseudo_labelled``, at most ``len(train)``, drawn with ``seed``): ``fit(rows, "student", None)``.
    ``fit`` trains and validates as the caller does (one process, or data-parallel), so the teacher and
    the student differ only in their rows.

    With ``validation`` (the rows ``fit`` validates on, with their labels) both are then refit on the
    labelled rows the split holds back for early stopping: a teacher on train + validation for the
    teacher's early-stopped epochs (``early_stopped_epochs``) labels ``unlabelled_x`` again, and the
    student registered trains on train + validation followed by the rows that teacher is sure of (at most
    as many) for the student's early-stopped epochs. The student registered takes the early-stopped
    student's temperature (``with_temperature_of``): its probabilities are what ships. The refit
    teacher's own, fitted on rows it trained on, only picks the pseudo-labels (as measured). Why: on a
    first day the network is short of labels, and validation holds ~15 % of them (BENCHMARKS.md, model
    quality, twelfth session)."""
    teacher = fit(train, "teacher", None)
    probabilities, metal = predict(teacher.model, unlabelled_x)
    pseudo = pseudo_labelled(unlabelled_x, probabilities, metal, limit=len(train), seed=seed)
    student = fit(concatenated([train, pseudo]), "student", None)
    if validation is None:
        return SelfTrained(teacher, student, len(unlabelled_x), len(pseudo))
    labelled = concatenated([train, validation])
    refit_teacher = fit(labelled, "teacher refit", early_stopped_epochs(teacher))
    probabilities, metal = predict(refit_teacher.model, unlabelled_x)
    pseudo = pseudo_labelled(unlabelled_x, probabilities, metal, limit=len(labelled), seed=seed)
    refit_student = fit(concatenated([labelled, pseudo]), "student refit", early_stopped_epochs(student))
    refit_student = with_temperature_of(refit_student, student)
    return SelfTrained(
        teacher, student, len(unlabelled_x), len(pseudo), refit_teacher, refit_student, len(labelled)
    )
