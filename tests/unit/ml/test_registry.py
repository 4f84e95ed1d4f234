"""The model registry over a local blob store: versions, integrity, champion pointer and history."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.registry import (
    CHAMPION_KEY,
    ModelIntegrityError,
    ModelRegistry,
    UnknownModelVersionError,
    serialize_state,
)
from astromined.storage import BlobNotFoundError, LocalBlobStore, read_parquet, write_parquet

ARCH = ArchitectureConfig(feature_names=("a", "b", "c"), classes=("S", "C", "M"), hidden=8, dropout=0.0)
METRICS = {"macro_f1": 0.7, "accuracy": 0.8}
LINEAGE = {"partitions": ["2031-01-01", "2031-01-02"], "code_version": "abc123"}


def make_model(seed: int) -> CompositionNet:
    torch.manual_seed(seed)
    model = CompositionNet(ARCH)
    model.set_normalization(torch.tensor([1.0, 2.0, 3.0]) * seed, torch.tensor([0.5, 1.5, 2.5]))
    return model.eval()


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "lake")


@pytest.fixture
def registry(store) -> ModelRegistry:
    return ModelRegistry(store)


def weights_key(version: str) -> str:
    return f"models/versions/{version}/model.pt"


def test_register_then_load_gives_identical_outputs(registry):
    model = make_model(1)
    version = registry.register(model, METRICS, LINEAGE)
    assert re.fullmatch(r"m-[0-9a-f]{12}", version)
    loaded, manifest = registry.load(version)
    x = torch.randn(10, 3)
    with torch.no_grad():
        for expected, actual in zip(model(x), loaded(x), strict=True):
            assert torch.equal(expected, actual)
    assert torch.equal(loaded.feature_mean, model.feature_mean)
    assert torch.equal(loaded.feature_std, model.feature_std)
    assert loaded.config == ARCH
    assert not loaded.training
    assert manifest["version"] == version
    assert manifest["metrics"] == METRICS
    assert manifest["lineage"] == LINEAGE
    assert manifest["architecture"] == ARCH.to_dict()
    assert manifest["size_bytes"] == len(serialize_state(model))
    assert registry.manifest(version) == manifest


def test_register_is_idempotent_for_identical_weights(registry, store):
    model = make_model(1)
    first = registry.register(model, METRICS, LINEAGE)
    manifest_before = store.get_bytes(f"models/versions/{first}/manifest.json")
    second = registry.register(make_model(1), {"macro_f1": 0.1}, {"other": True})
    assert second == first
    assert registry.versions() == [first]
    # the stored version is immutable: the first manifest is kept as written
    assert store.get_bytes(f"models/versions/{first}/manifest.json") == manifest_before


def test_different_weights_are_different_versions(registry):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    assert v1 != v2
    assert registry.versions() == sorted([v1, v2])


def test_champion_promote_and_history(registry, store):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    assert registry.champion() is None
    assert registry.promotions() == []

    first = registry.promote(v1, "no champion yet")
    assert first["version"] == v1
    assert first["previous"] is None
    assert first["reason"] == "no champion yet"
    assert registry.champion() == first

    second = registry.promote(v2, "better macro-F1")
    assert second["previous"] == v1
    assert registry.champion()["version"] == v2

    history = registry.promotions()
    assert [(r["version"], r["previous"]) for r in history] == [(v1, None), (v2, v1)]
    assert json.loads(store.get_bytes(CHAMPION_KEY)) == second


def test_rollback_is_promoting_an_earlier_version(registry):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    registry.promote(v2, "second")
    rollback = registry.promote(v1, "rollback: v2 misbehaves on board")
    assert rollback["previous"] == v2
    assert registry.champion()["version"] == v1
    assert registry.champion()["reason"].startswith("rollback")
    assert [r["version"] for r in registry.promotions()] == [v1, v2, v1]
    model, _ = registry.load(registry.champion()["version"])
    assert torch.equal(model.feature_mean, make_model(1).feature_mean)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1], id="last-byte-missing"),
        pytest.param(lambda data: data[:100] + bytes([data[100] ^ 0xFF]) + data[101:], id="flipped-byte"),
        pytest.param(lambda data: data[:-8] + b"\x00" * 8, id="zeroed-tail"),
        pytest.param(lambda data: data + b"\x00", id="extra-byte"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_damaged_weights_are_detected_and_not_promoted(registry, store, damage):
    good = registry.register(make_model(1), METRICS, LINEAGE)
    bad = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(good, "baseline")
    data = store.get_bytes(weights_key(bad))
    store.put_bytes(weights_key(bad), damage(data))

    with pytest.raises(ModelIntegrityError, match=bad):
        registry.load(bad)
    with pytest.raises(ModelIntegrityError):
        registry.promote(bad, "should be refused")
    assert registry.champion()["version"] == good
    assert [r["version"] for r in registry.promotions()] == [good]
    # the healthy version is unaffected
    registry.load(good)


def test_missing_weights_are_an_integrity_error(registry, store):
    version = registry.register(make_model(1), METRICS, LINEAGE)
    store.delete(weights_key(version))
    with pytest.raises(ModelIntegrityError, match="missing"):
        registry.load(version)
    with pytest.raises(ModelIntegrityError):
        registry.promote(version, "no")
    assert registry.champion() is None


def test_unknown_version(registry):
    registry.register(make_model(1), METRICS, LINEAGE)
    for action in (registry.load, registry.manifest, lambda v: registry.promote(v, "x")):
        with pytest.raises(UnknownModelVersionError, match="m-000000000000"):
            action("m-000000000000")
    assert issubclass(UnknownModelVersionError, KeyError)
    assert registry.champion() is None


# --- the local blob store the registry sits on ---------------------------------------------------


def test_local_blob_store_basics(store):
    store.put_bytes("a/b/c.bin", b"123")
    store.put_bytes("a/d.bin", b"4567")
    assert store.get_bytes("a/b/c.bin") == b"123"
    assert store.exists("a/d.bin")
    assert not store.exists("a/missing")
    assert store.size("a/d.bin") == 4
    assert store.list_keys("a/") == ["a/b/c.bin", "a/d.bin"]
    assert store.list_keys("nowhere/") == []
    store.put_bytes("a/d.bin", b"x")  # atomic overwrite, no temp files left behind
    assert store.get_bytes("a/d.bin") == b"x"
    assert store.list_keys("") == ["a/b/c.bin", "a/d.bin"]
    store.delete("a/d.bin")
    store.delete("a/d.bin")  # deleting twice is fine
    assert not store.exists("a/d.bin")
    with pytest.raises(BlobNotFoundError):
        store.get_bytes("a/d.bin")
    with pytest.raises(BlobNotFoundError):
        store.size("a/d.bin")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../escape", "a/../../b"])
def test_local_blob_store_rejects_unsafe_keys(store, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        store.put_bytes(key, b"x")


def test_parquet_round_trip(store):
    frame = pd.DataFrame(
        {"asteroid_id": np.array([3, 1], dtype=np.int64), "albedo": [0.1, np.nan], "complex": ["S", "M"]}
    )
    size = write_parquet(store, "features/day.parquet", frame)
    assert size == store.size("features/day.parquet")
    back = read_parquet(store, "features/day.parquet")
    pd.testing.assert_frame_equal(back, frame)


def test_attachments_are_stored_hashed_and_verified(tmp_path):
    store = LocalBlobStore(tmp_path)
    registry = ModelRegistry(store)
    model = CompositionNet(ArchitectureConfig(feature_names=("a", "b"), classes=("S", "C"), hidden=4))
    version = registry.register(model, {}, {}, attachments={"reference_stats.json": b'{"n_rows": 3}'})
    assert registry.attachment(version, "reference_stats.json") == b'{"n_rows": 3}'
    with pytest.raises(KeyError, match="no attachment"):
        registry.attachment(version, "missing.json")
    store.put_bytes(f"models/versions/{version}/reference_stats.json", b'{"n_rows": 4}')
    with pytest.raises(ModelIntegrityError, match=r"reference_stats\.json"):
        registry.attachment(version, "reference_stats.json")
