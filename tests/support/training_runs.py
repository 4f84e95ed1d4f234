"""The training assets of the tiny fleet, materialized in the integration tests: a lake with some days of
features, what candidate_model passes to train_model, and an asset's materialization metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

import assets.features
import assets.models
import assets.readiness
import assets.telemetry

FEATURES = [assets.telemetry.raw_telemetry, assets.features.asteroid_features]
TRAINING = [
    assets.readiness.infrastructure_readiness,
    assets.features.training_set,
    assets.models.candidate_model,
]


def materialization_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    """The metadata values of the one materialization of asset ``key`` in ``result``."""
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def tiny_lake_with_days(state: Path, days) -> dict:
    """Resources over a fresh state directory whose lake holds the raw telemetry and features of
    ``days`` of the tiny fleet."""
    from astromined.environment import load_settings
    from resources import build_resources

    resources = build_resources(
        load_settings({"ASTROMINED_STATE_DIR": str(state), "ASTROMINED_SCALE": "tiny"})
    )
    with dg.instance_for_test() as instance:
        for day in days:
            assert dg.materialize(FEATURES, partition_key=day, resources=resources, instance=instance).success
    return resources


def record_train_model(monkeypatch) -> list[dict]:
    """What candidate_model passes to train_model, call by call (the real one still trains)."""
    calls = []
    real = assets.models.train_model

    def recording(architecture, x, y_class, y_metal, vx, vy_class, vy_metal, **kwargs):
        calls.append({"x": x, "y_class": y_class, "y_metal": y_metal, "validation_x": vx})
        return real(architecture, x, y_class, y_metal, vx, vy_class, vy_metal, **kwargs)

    monkeypatch.setattr(assets.models, "train_model", recording)
    return calls
