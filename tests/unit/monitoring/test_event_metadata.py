"""Event metadata -> metric values, without an instance."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astromined.monitoring import event_metadata as em
from astromined.monitoring.event_metadata import MetadataError, Placement


def _raw(ok=10, quarantined=3, duplicates=2, by_reason=None):
    return {
        "packets_in": ok + quarantined + duplicates,
        "packets_ok": ok,
        "packets_quarantined": quarantined,
        "duplicates": duplicates,
        "quarantine_by_reason": {"crc_mismatch": 2, "truncated": 1} if by_reason is None else by_reason,
    }


def test_raw_telemetry_packets_by_outcome_and_reason():
    counts = em.packets_from_raw_telemetry(_raw())
    assert counts.by_outcome == {"ok": 10, "quarantined": 3, "duplicate": 2}
    assert counts.quarantined_by_reason == {"crc_mismatch": 2, "truncated": 1}


def test_quarantine_by_reason_may_arrive_as_json_text():
    metadata = _raw() | {"quarantine_by_reason": json.dumps({"crc_mismatch": 3})}
    assert em.packets_from_raw_telemetry(metadata).quarantined_by_reason == {"crc_mismatch": 3}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({k: v for k, v in _raw().items() if k != "duplicates"}, "'duplicates' is missing"),
        (_raw() | {"packets_ok": -1}, "'packets_ok' must be a non-negative integer"),
        (_raw() | {"packets_ok": 2.5}, "'packets_ok' must be a non-negative integer"),
        (_raw() | {"packets_ok": True}, "'packets_ok' must be a non-negative integer"),
        (_raw() | {"quarantine_by_reason": "{not json"}, "is not JSON"),
        (_raw() | {"quarantine_by_reason": [1, 2]}, "must map reason -> count"),
        (_raw(by_reason={"crc_mismatch": 1}), "sums to 1, but 'packets_quarantined' is 3"),
        (_raw(by_reason={"crc_mismatch": "x", "truncated": 2}), "'crc_mismatch' must be a non-negative"),
    ],
)
def test_malformed_raw_telemetry_metadata_names_the_key(metadata, message):
    with pytest.raises(MetadataError, match=message) as raised:
        em.packets_from_raw_telemetry(metadata)
    assert raised.value.kind == "raw_telemetry_metadata"


@given(
    st.dictionaries(st.text(min_size=1, max_size=12), st.integers(0, 10**9), max_size=8),
    st.integers(0, 10**9),
)
def test_packets_round_trip_any_reason_counts(by_reason, ok):
    quarantined = sum(by_reason.values())
    counts = em.packets_from_raw_telemetry(
        _raw(ok=ok, quarantined=quarantined, duplicates=0, by_reason=by_reason)
    )
    assert counts.quarantined_by_reason == by_reason
    assert counts.by_outcome["quarantined"] == quarantined


def test_drift_scores_from_an_observation():
    drift = em.drift_from_observation(
        {
            "drift/max_psi": 0.41,
            "drift/features_over_threshold": 3,
            "drift/class_mix_shift": 0.12,
            "drift/detected": True,
            "partition": "2026-06-01",
        }
    )
    assert drift == em.DriftScores(
        max_psi=0.41, features_over_threshold=3.0, class_mix_shift=0.12, detected=True
    )


def test_observations_without_drift_keys_are_not_drift():
    assert em.drift_from_observation({"dagster/row_count": 12}) is None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"drift/max_psi": "high"}, "'drift/max_psi' must be a number"),
        ({"drift/max_psi": math.nan}, "'drift/max_psi' must be a number"),
        ({"drift/detected": "yes"}, "'drift/detected' must be a boolean"),
        ({"drift/features_over_threshold": -1}, "negative"),
    ],
)
def test_malformed_drift_metadata_names_the_key(metadata, message):
    with pytest.raises(MetadataError, match=message):
        em.drift_from_observation(metadata)


def test_model_metrics_of_candidate_champion_and_baseline_as_assets_models_emits_them():
    metadata = {
        "candidate": "v0002",
        "accuracy": 0.91,
        "macro_f1": 0.88,
        "m_type_recall": 0.8,
        "ece": 0.03,
        "baseline_accuracy": 0.7,
        "baseline_macro_f1": 0.6,
        "champion": "v0001",
        "champion_macro_f1": 0.86,
    }
    assert em.model_metrics_from_evaluation(metadata) == {
        ("candidate", "accuracy"): 0.91,
        ("candidate", "macro_f1"): 0.88,
        ("candidate", "m_type_recall"): 0.8,
        ("candidate", "ece"): 0.03,
        ("baseline", "accuracy"): 0.7,
        ("baseline", "macro_f1"): 0.6,
        ("champion", "macro_f1"): 0.86,
    }


def test_a_nan_champion_metric_means_no_champion_yet():
    values = em.model_metrics_from_evaluation(
        {"macro_f1": 0.8, "champion": "none", "champion_macro_f1": math.nan}
    )
    assert values == {("candidate", "macro_f1"): 0.8}


MARGIN = {
    "baseline_margin": -0.0025,
    "baseline_margin_low": -0.0224,
    "baseline_margin_high": 0.0166,
    "baseline_margin_win_share": 0.39,
}


def test_the_bootstrapped_margin_over_the_baseline_as_model_evaluation_emits_it():
    assert em.baseline_margin_from_evaluation({"macro_f1": 0.95, **MARGIN}) == {
        ("margin",): -0.0025,
        ("low",): -0.0224,
        ("high",): 0.0166,
        ("win_share",): 0.39,
    }


def test_an_evaluation_recorded_before_the_bootstrap_has_no_margin():
    assert em.baseline_margin_from_evaluation({"macro_f1": 0.95, "baseline_macro_f1": 0.9}) == {}


@pytest.mark.fault("bad-input", "model_evaluation metadata with a partial or non-numeric margin bootstrap")
@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            {k: v for k, v in MARGIN.items() if k != "baseline_margin_high"},
            "'baseline_margin_high' is missing",
        ),
        ({**MARGIN, "baseline_margin_win_share": "39%"}, "'baseline_margin_win_share' must be a number"),
        ({**MARGIN, "baseline_margin_low": math.nan}, "'baseline_margin_low' must be a number"),
    ],
)
def test_a_malformed_margin_names_the_key(metadata, message):
    with pytest.raises(MetadataError, match=message):
        em.baseline_margin_from_evaluation(metadata)


def test_promotion_outcome():
    assert em.promotion_outcome({"promoted": True}) == "promoted"
    assert em.promotion_outcome({"promoted": False, "decision": "worse macro-F1"}) == "blocked"
    with pytest.raises(MetadataError, match="'promoted' is missing"):
        em.promotion_outcome({"decision": "?"})


def test_readiness_by_component():
    metadata = {"ready_components": 2, "ready/lake": True, "ready/compute_device": False, "not_ready": ["x"]}
    assert em.readiness_from_metadata(metadata) == {"lake": True, "compute_device": False}
    with pytest.raises(MetadataError, match="no ready/<component>"):
        em.readiness_from_metadata({"ready_components": 2})


def test_data_to_model_latency():
    assert em.data_to_model_latency({"data_to_model_latency_s": 1834.5}) == 1834.5
    assert em.data_to_model_latency({"size_bytes": 10}) is None
    with pytest.raises(MetadataError, match="negative"):
        em.data_to_model_latency({"data_to_model_latency_s": -3})


def test_placement_from_engine_events():
    metadata = {
        "placement/site": "cloud",
        "placement/cluster": "eks",
        "placement/reason": "on-prem GPUs busy",
        "placement/gpus": 2,
    }
    assert em.placement_from_engine_event(metadata) == Placement(site="cloud", gpus=2)
    assert em.placement_from_engine_event({"placement/site": "onprem"}) == Placement(site="onprem", gpus=0)
    assert em.placement_from_engine_event({"pid": 12}) is None
    with pytest.raises(MetadataError, match="must be one of"):
        em.placement_from_engine_event({"placement/site": "mars"})


def test_champion_metrics_from_a_promotion_as_assets_models_emits_them():
    metadata = {
        "champion": "m-0123456789ab",
        "candidate": "m-0123456789ab",
        "promoted": True,
        "decision": "no champion yet; macro-F1 0.8800 beats the baseline's 0.6000",
        "champion_macro_f1": 0.88,
        "champion_accuracy": 0.91,
        "champion_m_type_recall": 0.8,
        "champion_ece": 0.03,
    }
    assert em.champion_metrics_from_promotion(metadata) == {
        ("champion", "macro_f1"): 0.88,
        ("champion", "accuracy"): 0.91,
        ("champion", "m_type_recall"): 0.8,
        ("champion", "ece"): 0.03,
    }


def test_champion_metrics_absent_or_nan_are_not_measured():
    assert em.champion_metrics_from_promotion({"promoted": False, "decision": "x"}) == {}
    assert em.champion_metrics_from_promotion({"champion_macro_f1": math.nan, "champion_ece": 0.1}) == {
        ("champion", "ece"): 0.1
    }


@pytest.mark.fault("bad-input", "champion_model metadata with a non-numeric champion metric")
def test_malformed_champion_metric_names_the_key():
    with pytest.raises(MetadataError, match="'champion_accuracy' must be a number") as raised:
        em.champion_metrics_from_promotion({"champion_accuracy": "high"})
    assert raised.value.kind == "champion_model_metadata"


def test_a_promotion_replaces_only_the_champion_role():
    current = {
        ("candidate", "macro_f1"): 0.9,
        ("baseline", "macro_f1"): 0.6,
        ("champion", "macro_f1"): 0.7,
        ("champion", "ece"): 0.2,
    }
    merged = em.with_champion_metrics(
        current, {("champion", "macro_f1"): 0.9, ("champion", "accuracy"): 0.95}
    )
    assert merged == {
        ("candidate", "macro_f1"): 0.9,
        ("baseline", "macro_f1"): 0.6,
        ("champion", "macro_f1"): 0.9,
        ("champion", "accuracy"): 0.95,
    }


def test_readiness_rows_from_metadata():
    from astromined.monitoring.event_metadata import readiness_rows_from_metadata

    rows = [{"site": "eks-a", "component": "gpu_nodes", "status": "not_ready", "detail": "x", "seconds": 0.1}]
    assert readiness_rows_from_metadata({"readiness/rows": rows}) == [("gpu_nodes", "eks-a", "not_ready")]
    assert readiness_rows_from_metadata({"ready/lake": True}) is None


@pytest.mark.fault("bad-input", "a readiness row with an unknown status is refused, naming the row")
def test_readiness_rows_bad_status_is_named():
    from astromined.monitoring.event_metadata import MetadataError, readiness_rows_from_metadata

    with pytest.raises(MetadataError, match=r"readiness/rows\[0\]\.status 'maybe'"):
        readiness_rows_from_metadata({"readiness/rows": [{"site": "s", "component": "c", "status": "maybe"}]})
