"""The champion/challenger gate: a pure decision over holdout metrics measured on the same holdout."""

from __future__ import annotations

import dataclasses
from typing import Any

from astromined.taxonomy import COMPLEXES


@dataclasses.dataclass(frozen=True)
class PromotionPolicy:
    min_macro_f1_gain: float = 0.0
    max_class_recall_drop: float = 0.05


@dataclasses.dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(
    candidate: dict[str, Any], champion: dict[str, Any] | None, policy: PromotionPolicy
) -> PromotionDecision:
    """``candidate``/``champion`` are {"version", "metrics"} (champion may carry "error" instead)."""
    if champion is None:
        return PromotionDecision(True, "no champion yet")
    if candidate["version"] == champion["version"]:
        return PromotionDecision(False, f"candidate {candidate['version']} is already the champion")
    if "metrics" not in champion:
        return PromotionDecision(True, f"champion {champion['version']} is unusable: {champion.get('error')}")
    new, old = candidate["metrics"], champion["metrics"]
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
        True, f"macro-F1 {new['macro_f1']:.4f} vs champion {old['macro_f1']:.4f} ({gain:+.4f})"
    )
