"""The champion/challenger gate."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.ml.promotion import PromotionPolicy, decide_promotion
from astromined.taxonomy import COMPLEXES

POLICY = PromotionPolicy(min_macro_f1_gain=0.01, max_class_recall_drop=0.05)


def metrics(macro_f1: float, **recalls: float) -> dict[str, float]:
    values = {"macro_f1": macro_f1, "accuracy": macro_f1}
    values.update({f"recall_{c}": recalls.get(c, 0.75) for c in COMPLEXES})
    return values


def entry(version: str, macro_f1: float, **recalls: float) -> dict:
    return {"version": version, "metrics": metrics(macro_f1, **recalls)}


def test_no_champion_promotes():
    decision = decide_promotion(entry("m-new", 0.1), None, POLICY)
    assert decision.promote
    assert "no champion" in decision.reason


def test_same_version_is_kept():
    decision = decide_promotion(entry("m-a", 0.9), entry("m-a", 0.5), POLICY)
    assert not decision.promote
    assert "already the champion" in decision.reason


def test_worse_macro_f1_is_kept_with_reason():
    decision = decide_promotion(entry("m-new", 0.70), entry("m-old", 0.75), POLICY)
    assert not decision.promote
    assert "0.7000" in decision.reason and "0.7500" in decision.reason
    assert "-0.0500" in decision.reason


def test_gain_below_the_required_minimum_is_kept():
    decision = decide_promotion(entry("m-new", 0.755), entry("m-old", 0.75), POLICY)
    assert not decision.promote
    assert "below the required" in decision.reason


def test_better_candidate_is_promoted():
    decision = decide_promotion(entry("m-new", 0.80), entry("m-old", 0.75), POLICY)
    assert decision.promote
    assert "+0.0500" in decision.reason


def test_equal_macro_f1_with_zero_min_gain_promotes():
    decision = decide_promotion(entry("m-new", 0.75), entry("m-old", 0.75), PromotionPolicy(0.0, 0.05))
    assert decision.promote


def test_better_overall_but_a_class_recall_regresses_is_kept_naming_the_class():
    candidate = entry("m-new", 0.85, M=0.50, S=0.90)
    champion = entry("m-old", 0.75, M=0.80, S=0.70)
    decision = decide_promotion(candidate, champion, POLICY)
    assert not decision.promote
    assert "M −0.300" in decision.reason
    assert "S " not in decision.reason  # S improved; only the regressed class is named


def test_several_regressed_classes_are_all_named():
    candidate = entry("m-new", 0.85, C=0.5, P=0.6)
    decision = decide_promotion(candidate, entry("m-old", 0.75), POLICY)
    assert not decision.promote
    assert "C −0.250" in decision.reason
    assert "P −0.150" in decision.reason


def test_small_recall_drop_within_the_bound_is_allowed():
    candidate = entry("m-new", 0.85, M=0.75 - 0.03)
    decision = decide_promotion(candidate, entry("m-old", 0.75), POLICY)
    assert decision.promote


def test_unusable_champion_is_replaced():
    champion = {"version": "m-old", "error": "weights do not match the manifest"}
    decision = decide_promotion(entry("m-new", 0.2), champion, POLICY)
    assert decision.promote
    assert "unusable" in decision.reason
    assert "weights do not match" in decision.reason


def test_policy_defaults():
    policy = PromotionPolicy()
    assert policy.min_macro_f1_gain == 0.0
    assert policy.max_class_recall_drop == pytest.approx(0.05)


# Values on a 1/1024 grid are exact in binary floating point, so sums and differences are exact and
# "candidate < champion + gain" means the same thing however the code rearranges it.
grid = st.integers(min_value=0, max_value=1024).map(lambda k: k / 1024)
recall_sets = st.fixed_dictionaries({c: grid for c in COMPLEXES})
# Per-class recall change of the candidate: mostly small, so both outcomes of the recall check occur.
recall_deltas = st.fixed_dictionaries({c: st.integers(-96, 64).map(lambda k: k / 1024) for c in COMPLEXES})


@settings(max_examples=50, deadline=None)
@given(
    candidate_f1=grid,
    champion_f1=grid,
    min_gain=st.integers(min_value=0, max_value=128).map(lambda k: k / 1024),
    max_drop=st.integers(min_value=0, max_value=128).map(lambda k: k / 1024),
    champion_recall=recall_sets,
    delta=recall_deltas,
)
def test_promotion_property(candidate_f1, champion_f1, min_gain, max_drop, champion_recall, delta):
    candidate_recall = {c: champion_recall[c] + delta[c] for c in COMPLEXES}
    policy = PromotionPolicy(min_macro_f1_gain=min_gain, max_class_recall_drop=max_drop)
    candidate = entry("m-candidate", candidate_f1, **candidate_recall)
    champion = entry("m-champion", champion_f1, **champion_recall)
    decision = decide_promotion(candidate, champion, policy)
    assert decision.reason
    regressed = [c for c in COMPLEXES if -delta[c] > max_drop]
    if candidate_f1 < champion_f1 + min_gain:
        assert not decision.promote, decision.reason
    elif regressed:
        assert not decision.promote, decision.reason
        for name in regressed:
            assert f"{name} −" in decision.reason
    else:
        assert decision.promote, decision.reason


@settings(max_examples=50, deadline=None)
@given(
    candidate_f1=st.floats(0.0, 1.0),
    champion_f1=st.floats(0.0, 1.0),
    min_gain=st.floats(0.0, 0.2),
)
def test_never_promotes_below_the_required_gain(candidate_f1, champion_f1, min_gain):
    """Arbitrary floats; identical recalls, so only the macro-F1 gate can say no.

    Within an ulp of the boundary ``a < b + g`` and ``a - b < g`` can round differently, so the
    property is asserted for candidates below the bar by more than rounding noise.
    """
    decision = decide_promotion(
        entry("m-candidate", candidate_f1),
        entry("m-champion", champion_f1),
        PromotionPolicy(min_macro_f1_gain=min_gain),
    )
    if candidate_f1 < champion_f1 + min_gain - 1e-12:
        assert not decision.promote, decision.reason
    if candidate_f1 > champion_f1 + min_gain + 1e-12:
        assert decision.promote, decision.reason
