"""The current champion measured on the candidate's holdout (model_evaluation), for the promotion gate.

``decide_promotion`` compares the candidate with what ``evaluate_champion`` returns: the champion's holdout
metrics, None before the first promotion, or an error naming why the champion cannot be used (which stops
the gate rather than promoting past a model nobody can load).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from astromined.ml.dataset import SplitArrays
from astromined.ml.evaluate import model_metrics
from astromined.ml.looks import AsteroidLooks, predict_split
from astromined.ml.registry import (
    CorruptRecordError,
    ModelIntegrityError,
    ModelRegistry,
    UnknownModelVersionError,
    looks_exponent,
)


def _ignore(_message: str) -> None:
    return None


def evaluate_champion(
    registry: ModelRegistry,
    holdout: SplitArrays,
    on_error: Callable[[str], None] = _ignore,
    looks: AsteroidLooks | None = None,
) -> dict[str, Any] | None:
    """{"version", "metrics"} of the current champion on ``holdout``, scored as the candidate is: from
    the holdout asteroids' ``looks`` where given (``ml/looks.py``, with the looks' calibration exponent
    the champion was registered with), else from the combined rows; None when there is no champion.

    {"version", "error"} when it cannot be used: its files fail the integrity check or its version is gone
    (``version`` names it), or the champion pointer itself is unreadable (``version`` None). ``on_error``
    gets the line to log in those cases."""
    try:
        record = registry.champion()
    except CorruptRecordError as exc:
        on_error(str(exc))
        return {"version": None, "error": str(exc)}
    if record is None:
        return None
    try:
        model, manifest = registry.load(record["version"])
    except (ModelIntegrityError, UnknownModelVersionError) as exc:
        on_error(f"champion {record['version']} failed its integrity check: {exc}")
        return {"version": record["version"], "error": str(exc)}
    probabilities, metal = predict_split(model, holdout.x, looks, looks_exponent(manifest))
    return {
        "version": record["version"],
        "metrics": model_metrics(probabilities, metal, holdout.y_class, holdout.y_metal),
    }
