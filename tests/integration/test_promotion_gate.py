"""The champion/challenger gate on real materializations: a worse candidate is never promoted, and the
champion's metrics drop on a drifted population."""

import dagster as dg

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
from astromined.environment import load_settings
from astromined.ml.registry import ModelRegistry
from resources import build_resources

CLEAN_DAY = "2025-03-03"
DRIFTED_DAY = "2025-03-23"  # the demo preset's fleet-wide IR calibration step is active from 22 March
TRAINING = [
    assets.readiness.infrastructure_readiness,
    assets.telemetry.raw_telemetry,
    *assets.features.defs.assets,
    *[a for a in assets.models.defs.assets if a.key != dg.AssetKey("sector_rankings")],
]


def _metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def _run(resources, instance, day, candidate_config=None, window_days=1):
    ops = {"training_set": {"config": {"window_days": window_days}}}
    if candidate_config:
        ops["candidate_model"] = {"config": candidate_config}
    result = dg.materialize(
        TRAINING, partition_key=day, resources=resources, instance=instance, run_config={"ops": ops}
    )
    assert result.success
    return result


def test_worse_candidate_is_blocked_and_drift_lowers_the_champions_metrics(tmp_path):
    settings = load_settings(
        {"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_SCALE": "tiny", "ASTROMINED_DRIFT": "demo"}
    )
    resources = build_resources(settings)
    registry = ModelRegistry(resources["lake"].store())
    with dg.instance_for_test() as instance:
        first = _run(resources, instance, CLEAN_DAY)
        champion = registry.champion()["version"]
        clean_f1 = _metadata(first, "model_evaluation")["macro_f1"]

        # A deliberately undertrained candidate on the same data: evaluated on the same holdout, blocked.
        worse = _run(resources, instance, CLEAN_DAY, {"max_epochs": 1, "patience": 1, "learning_rate": 1e-4})
        decision = _metadata(worse, "champion_model")
        assert not decision["promoted"]
        assert "below the required" in decision["decision"] or "regressed" in decision["decision"]
        assert registry.champion()["version"] == champion
        assert _metadata(worse, "model_evaluation")["macro_f1"] < clean_f1

        # On the drifted day (IR calibration step), the unchanged champion scores lower than on clean data.
        drifted = _run(
            resources, instance, DRIFTED_DAY, {"max_epochs": 1, "patience": 1, "learning_rate": 1e-4}
        )
        evaluation = _metadata(drifted, "model_evaluation")
        assert evaluation["champion"] == champion
        assert evaluation["champion_macro_f1"] < clean_f1
        assert registry.champion()["version"] == champion
