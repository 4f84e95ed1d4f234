"""The champion/challenger gate: a pure decision over holdout metrics measured on the same holdout.

Every promotion, the first one included, requires the candidate to beat the logistic-regression
baseline's macro-F1 on that holdout. A champion that could not be evaluated (its files fail the
integrity check, or the champion pointer is unreadable) stops the gate: the decision is ``halt``, the
step must fail loudly, and nothing is promoted until an operator points the champion at a good version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from astromined.ml.margin import MarginInterval
from astromined.taxonomy import COMPLEXES

ROLLBACK_HINT = "`astromined model rollback <version>` to a good version (`astromined model list` lists them)"

# The champion's holdout metrics recorded with model_evaluation and champion_model (the exporter reads
# them as astromined_model_metric{role="champion"}).
CHAMPION_METRICS = ("macro_f1", "accuracy", "m_type_recall", "ece")


@dataclasses.dataclass(frozen=True)
class PromotionPolicy:
    min_macro_f1_gain: float = 0.0
    max_class_recall_drop: float = 0.05


@dataclasses.dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    # The gate cannot decide (the champion is unusable): the caller must fail, not keep or promote.
    halt: bool = False


def decide_promotion(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    policy: PromotionPolicy,
    *,
    baseline: Mapping[str, float],
    margin: MarginInterval | None = None,
) -> PromotionDecision:
    """``candidate``/``champion`` are {"version", "metrics"}; ``baseline`` the baseline's metrics.

    ``champion`` is None before the first promotion; an unusable champion carries "error" (which names
    the file at fault) instead of "metrics", and "version" (None when the pointer itself is unreadable).
    ``margin``, the bootstrap of the candidate's margin over the baseline on the same holdout, is quoted in
    the reasons that compare the two; it never changes the decision.
    """
    against_baseline = f"; {margin.describe()}" if margin is not None else ""
    if champion is not None and "metrics" not in champion:
        which = f"champion {champion['version']}" if champion.get("version") else "the champion"
        return PromotionDecision(
            False,
            f"{which} is unusable: {champion.get('error', 'no holdout metrics')}. Promotion stopped and the "
            f"champion pointer left unchanged; recover with {ROLLBACK_HINT}",
            halt=True,
        )
    if champion is not None and candidate["version"] == champion["version"]:
        return PromotionDecision(False, f"candidate {candidate['version']} is already the champion")
    new = candidate["metrics"]
    # `not >` rather than `<=`: a NaN (empty holdout) never beats anything.
    if not new["macro_f1"] > baseline["macro_f1"]:
        return PromotionDecision(
            False,
            f"macro-F1 {new['macro_f1']:.4f} does not beat the logistic-regression baseline's "
            f"{baseline['macro_f1']:.4f}{against_baseline}",
        )
    if champion is None:
        return PromotionDecision(
            True,
            f"no champion yet; macro-F1 {new['macro_f1']:.4f} beats the baseline's "
            f"{baseline['macro_f1']:.4f}{against_baseline}",
        )
    old = champion["metrics"]
    gain = new["macro_f1"] - old["macro_f1"]
    if gain < policy.min_macro_f1_gain:
        return PromotionDecision(
            False,
            f"macro-F1 {new['macro_f1']:.4f} vs champion {old['macro_f1']:.4f}: gain {gain:+.4f} "
            f"below the required {policy.min_macro_f1_gain:+.4f}",
        )
    drops = {
        name: old[f"recall_{name}"] - new[f"recall_{name}"]
        for name in COMPLEXES
        if old[f"recall_{name}"] - new[f"recall_{name}"] > policy.max_class_recall_drop + 1e-9  # float noise
    }
    if drops:
        listed = ", ".join(f"{k} −{v:.3f}" for k, v in drops.items())
        return PromotionDecision(
            False, f"class recall regressed beyond {policy.max_class_recall_drop}: {listed}"
        )
    return PromotionDecision(
        True,
        f"macro-F1 {new['macro_f1']:.4f} vs champion {old['macro_f1']:.4f} ({gain:+.4f}); "
        f"baseline {baseline['macro_f1']:.4f}{against_baseline}",
    )


def champion_metric_values(metrics: Mapping[str, float] | None) -> dict[str, float]:
    """``champion_<name>`` for each of CHAMPION_METRICS; all NaN without metrics (no champion, or one that
    could not be evaluated)."""
    return {f"champion_{m}": float(metrics[m]) if metrics else float("nan") for m in CHAMPION_METRICS}


def champion_holdout_metrics(evaluation: Mapping[str, Any], champion_version: str) -> dict[str, float] | None:
    """The holdout metrics, from model_evaluation's ``evaluation``, of the model that is champion after the
    gate: the candidate's when it is the champion (promoted now or before), the evaluated champion's when
    it stayed; None when the champion is neither (it changed after model_evaluation measured it)."""
    if champion_version == evaluation["candidate"]["version"]:
        return evaluation["candidate"]["metrics"]
    evaluated = evaluation["champion"] or {}
    if evaluated.get("version") == champion_version:
        return evaluated.get("metrics")
    return None
