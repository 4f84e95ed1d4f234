"""The champion/challenger gate on real materializations: a candidate that loses to the logistic-regression
baseline is never promoted (not even the first one; with no champion the run fails), a worse candidate is
blocked, the champion's metrics drop on a drifted population, the exporter shows the champion's holdout
metrics from the first promotion on, and an unusable champion stops promotion loudly."""

import argparse
import math

import dagster as dg
import pytest

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
from astromined.environment import load_settings
from astromined.ml.registry import CHAMPION_KEY, ModelRegistry
from astromined.monitoring import catalog
from astromined.monitoring.instance_reader import InstanceReader
from astromined.monitoring.metric_state import MetricState
from resources import build_resources

CLEAN_DAY = "2025-03-03"
DRIFTED_DAY = "2025-03-23"  # the demo preset's fleet-wide IR calibration step is active from 22 March
TRAINING = [
    assets.readiness.infrastructure_readiness,
    assets.telemetry.raw_telemetry,
    *assets.features.defs.assets,
    *[a for a in assets.models.defs.assets if a.key != dg.AssetKey("sector_rankings")],
]
# A deliberately undertrained candidate: far below the logistic-regression baseline and the champion.
UNDERTRAINED = {"max_epochs": 1, "patience": 1, "learning_rate": 1e-4}
MODEL_METRICS = ("macro_f1", "accuracy", "m_type_recall", "ece")


def _metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def _run(resources, instance, day, candidate_config=None, window_days=1, succeed=True):
    ops = {"training_set": {"config": {"window_days": window_days}}}
    if candidate_config:
        ops["candidate_model"] = {"config": candidate_config}
    result = dg.materialize(
        TRAINING,
        partition_key=day,
        resources=resources,
        instance=instance,
        run_config={"ops": ops},
        raise_on_error=False,
    )
    if succeed is not None:
        assert result.success == succeed
    return result


def _failure(result, step: str) -> str:
    [event] = [e for e in result.get_step_failure_events() if e.step_key == step]
    return event.step_failure_data.error.message


def _exported_champion(instance) -> dict[str, float]:
    """astromined_model_metric{role="champion"} as the exporter's reader computes it from the instance."""
    state = MetricState()
    InstanceReader(instance, state).refresh()
    values = {m: state.value(catalog.MODEL_METRIC, ("champion", m)) for m in MODEL_METRICS}
    return {m: v for m, v in values.items() if v is not None}


def _operator_promotes(settings, version: str) -> None:
    """What an operator does to approve a model the gate would not: `astromined model rollback VERSION`."""
    from astromined import cli

    args = argparse.Namespace(version=version, reason="approved by the operator")
    assert cli._cmd_model_rollback(settings, args) == 0


def test_candidates_losing_to_the_baseline_are_not_promoted_and_drift_lowers_the_champions_metrics(tmp_path):
    settings = load_settings(
        {"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_SCALE": "tiny", "ASTROMINED_DRIFT": "demo"}
    )
    resources = build_resources(settings)
    store = resources["lake"].store()
    registry = ModelRegistry(store)
    with dg.instance_for_test() as instance:
        # 1. A first candidate that loses to the baseline is not promoted; with no champion at all the
        #    step fails, saying why and that nothing downstream can proceed.
        losing = _run(resources, instance, CLEAN_DAY, UNDERTRAINED, succeed=False)
        evaluation = _metadata(losing, "model_evaluation")
        assert evaluation["macro_f1"] < evaluation["baseline_macro_f1"]
        # The paired bootstrap of the margin: far below the baseline, so below the holdout's noise.
        assert evaluation["baseline_margin"] == pytest.approx(
            evaluation["macro_f1"] - evaluation["baseline_macro_f1"]
        )
        assert evaluation["baseline_margin_low"] <= evaluation["baseline_margin_high"] < 0
        assert evaluation["baseline_margin_win_share"] == 0.0
        message = _failure(losing, "champion_model")
        assert "does not beat the logistic-regression baseline" in message
        assert "paired bootstrap interval" in message and "below the holdout's noise" in message
        assert "no champion model" in message and "uplink_package cannot proceed" in message
        assert registry.champion() is None
        assert store.list_keys("models/promotions/") == []
        assert _exported_champion(instance) == {}

        # 2. The properly trained network beats logistic regression even at tiny scale (~440 training
        #    rows: 0.9124 vs 0.9008 here), so the gate promotes it.
        first = _run(resources, instance, CLEAN_DAY)
        evaluation = _metadata(first, "model_evaluation")
        assert evaluation["macro_f1"] > evaluation["baseline_macro_f1"]
        assert evaluation["baseline_margin_low"] <= evaluation["baseline_margin"]
        assert evaluation["baseline_margin"] <= evaluation["baseline_margin_high"]
        assert 0.0 < evaluation["baseline_margin_win_share"] <= 1.0
        assert "paired bootstrap interval" in _metadata(first, "champion_model")["decision"]
        assert _metadata(first, "champion_model")["promoted"]
        champion = _metadata(first, "candidate_model")["version"]
        assert registry.champion()["version"] == champion
        clean_f1 = evaluation["macro_f1"]

        # 3. An undertrained candidate on the same data, evaluated on the same holdout: blocked, the run
        #    succeeds with the champion kept, and the exported champion metrics are the kept champion's.
        worse = _run(resources, instance, CLEAN_DAY, UNDERTRAINED)
        decision = _metadata(worse, "champion_model")
        assert not decision["promoted"]
        assert "does not beat the logistic-regression baseline" in decision["decision"]
        assert registry.champion()["version"] == champion
        evaluation = _metadata(worse, "model_evaluation")
        assert evaluation["macro_f1"] < clean_f1
        kept = {m: evaluation[f"champion_{m}"] for m in MODEL_METRICS}
        assert kept["macro_f1"] == pytest.approx(clean_f1)
        assert {m: decision[f"champion_{m}"] for m in MODEL_METRICS} == pytest.approx(kept)
        assert _exported_champion(instance) == pytest.approx(kept)

        # 4. On the drifted day (IR calibration step), the unchanged champion scores lower than on clean data.
        drifted = _run(resources, instance, DRIFTED_DAY, UNDERTRAINED)
        evaluation = _metadata(drifted, "model_evaluation")
        assert evaluation["champion"] == champion
        assert evaluation["champion_macro_f1"] < clean_f1
        assert registry.champion()["version"] == champion


def test_a_candidate_beating_the_baseline_is_promoted_and_exported_as_champion(tmp_path):
    # Default scale (~1,700 training rows): on this day the network beats logistic regression
    # (0.9572 vs 0.9424 macro-F1), so the first candidate is promoted through the gate.
    settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_SCALE": "default"})
    resources = build_resources(settings)
    registry = ModelRegistry(resources["lake"].store())
    with dg.instance_for_test() as instance:
        first = _run(resources, instance, "2026-06-01")
        evaluation = _metadata(first, "model_evaluation")
        assert evaluation["macro_f1"] > evaluation["baseline_macro_f1"]
        decision = _metadata(first, "champion_model")
        assert decision["promoted"] and "no champion yet" in decision["decision"]
        assert registry.champion()["version"] == _metadata(first, "candidate_model")["version"]
        # From the first promotion on, the exporter has all four champion metrics: the promoted candidate's.
        assert _exported_champion(instance) == pytest.approx({m: evaluation[m] for m in MODEL_METRICS})


@pytest.mark.fault(
    "registry-corruption", "champion weights corrupted in the lake: champion_model fails loudly"
)
def test_an_unusable_champion_stops_promotion_loudly(tmp_path):
    settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_SCALE": "tiny"})
    resources = build_resources(settings)
    store = resources["lake"].store()
    registry = ModelRegistry(store)
    with dg.instance_for_test() as instance:
        first = _run(resources, instance, CLEAN_DAY, succeed=None)
        if registry.champion() is None:
            _operator_promotes(settings, _metadata(first, "candidate_model")["version"])
        champion = registry.champion()
        weights = f"models/versions/{champion['version']}/model.pt"
        data = store.get_bytes(weights)
        store.put_bytes(weights, data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
        pointer = store.get_bytes(CHAMPION_KEY)

        # A different candidate (not the champion's weights, which re-registering would repair).
        blocked = _run(resources, instance, CLEAN_DAY, UNDERTRAINED, succeed=False)
        message = _failure(blocked, "champion_model")
        assert f"champion {champion['version']} is unusable" in message
        assert weights in message
        assert "astromined model rollback <version>" in message
        assert store.get_bytes(CHAMPION_KEY) == pointer
        assert len(registry.promotions()) == 1
        assert math.isnan(_metadata(blocked, "model_evaluation")["champion_macro_f1"])

        # A garbled pointer stops it the same way, naming models/champion.json.
        store.put_bytes(CHAMPION_KEY, b'{"version": "m-')
        blocked = _run(resources, instance, CLEAN_DAY, UNDERTRAINED, succeed=False)
        message = _failure(blocked, "champion_model")
        assert "models/champion.json is unreadable" in message
        assert "astromined model rollback" in message
        assert store.get_bytes(CHAMPION_KEY) == b'{"version": "m-'
