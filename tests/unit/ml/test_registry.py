"""The model registry over a local blob store: versions, integrity, champion pointer and history."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.registry import (
    CHAMPION_KEY,
    CorruptRecordError,
    ModelIntegrityError,
    ModelRegistry,
    UnknownModelVersionError,
    looks_exponent,
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


# --- repair on re-registration, version id = hash of the weights --------------------------------

REFERENCE = b'{"n_rows": 3}'


def _register_with_attachment(registry) -> str:
    return registry.register(make_model(1), METRICS, LINEAGE, attachments={"reference_stats.json": REFERENCE})


@pytest.mark.fault(
    "registry-corruption", "weights of a reproduced version corrupted: re-registering repairs them"
)
@pytest.mark.parametrize("damage", ["flipped", "deleted"])
def test_reregistering_repairs_damaged_weights(registry, store, damage):
    version = _register_with_attachment(registry)
    manifest_before = store.get_bytes(f"models/versions/{version}/manifest.json")
    if damage == "deleted":
        store.delete(weights_key(version))
    else:
        data = store.get_bytes(weights_key(version))
        store.put_bytes(weights_key(version), data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    with pytest.raises(ModelIntegrityError):
        registry.load(version)

    again = ModelRegistry(store)
    assert (
        again.register(make_model(1), METRICS, LINEAGE, attachments={"reference_stats.json": REFERENCE})
        == version
    )
    registry.load(version)
    assert again.repairs == [f"model {version}: rewrote damaged weights"]
    # an intact manifest stays as first written
    assert store.get_bytes(f"models/versions/{version}/manifest.json") == manifest_before


@pytest.mark.fault(
    "registry-corruption", "attachment of a reproduced version corrupted: re-registering repairs it"
)
def test_reregistering_repairs_a_damaged_attachment(registry, store):
    version = _register_with_attachment(registry)
    store.put_bytes(f"models/versions/{version}/reference_stats.json", b'{"n_rows": 999}')
    with pytest.raises(ModelIntegrityError, match=r"reference_stats\.json"):
        registry.attachment(version, "reference_stats.json")
    _register_with_attachment(registry)
    assert registry.attachment(version, "reference_stats.json") == REFERENCE
    assert registry.repairs == [f"model {version}: rewrote damaged attachment reference_stats.json"]


def test_reregistering_an_intact_version_rewrites_nothing(registry, store):
    version = _register_with_attachment(registry)
    before = {key: store.path(key).stat().st_mtime_ns for key in store.list_keys("models/")}
    # different attachment bytes for the same weights: the intact version keeps what it was registered with
    registry.register(make_model(1), METRICS, LINEAGE, attachments={"reference_stats.json": b"{}"})
    assert {key: store.path(key).stat().st_mtime_ns for key in store.list_keys("models/")} == before
    assert registry.attachment(version, "reference_stats.json") == REFERENCE
    assert registry.repairs == []


@pytest.mark.fault(
    "registry-corruption", "garbled manifest of a reproduced version: re-registering rewrites it"
)
def test_reregistering_replaces_a_garbled_manifest(registry, store):
    version = _register_with_attachment(registry)
    store.put_bytes(f"models/versions/{version}/manifest.json", b'{"version": "m-')
    with pytest.raises(ModelIntegrityError, match=r"manifest\.json is unreadable"):
        registry.load(version)
    _register_with_attachment(registry)
    _, manifest = registry.load(version)
    assert manifest["metrics"] == METRICS
    assert registry.attachment(version, "reference_stats.json") == REFERENCE
    assert registry.repairs == [f"model {version}: rewrote its unusable manifest"]


@pytest.mark.fault("tamper", "weights and manifest of a version replaced consistently by another model's")
def test_load_checks_the_version_id_against_the_weights(registry, store):
    good = registry.register(make_model(1), METRICS, LINEAGE)
    other = registry.register(make_model(2), METRICS, LINEAGE)
    # Swap in the other model's weights and a manifest that describes them: self-consistent, wrong id.
    store.put_bytes(weights_key(good), store.get_bytes(weights_key(other)))
    forged = registry.manifest(other) | {"version": good}
    store.put_bytes(f"models/versions/{good}/manifest.json", json.dumps(forged).encode())
    with pytest.raises(
        ModelIntegrityError, match=rf"{good}: weights at .*model\.pt hash to {other}"
    ) as raised:
        registry.load(good)
    assert raised.value.location.endswith(f"models/versions/{good}/model.pt")
    with pytest.raises(ModelIntegrityError):
        registry.promote(good, "forged")
    assert registry.champion() is None


@pytest.mark.fault("tamper", "manifest edited to claim another version id")
def test_load_rejects_a_manifest_naming_another_version(registry, store):
    version = registry.register(make_model(1), METRICS, LINEAGE)
    manifest = registry.manifest(version) | {"version": "m-000000000000"}
    store.put_bytes(f"models/versions/{version}/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(ModelIntegrityError, match=r"manifest .*manifest\.json does not match the weights"):
        registry.load(version)


@pytest.mark.fault("registry-corruption", "unreadable manifest: an integrity error naming the file")
@pytest.mark.parametrize("garbage", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"null"])
def test_an_unreadable_manifest_is_an_integrity_error_naming_the_file(registry, store, garbage):
    version = registry.register(make_model(1), METRICS, LINEAGE)
    store.put_bytes(f"models/versions/{version}/manifest.json", garbage)
    with pytest.raises(ModelIntegrityError, match=rf"models/versions/{version}/manifest\.json is unreadable"):
        registry.manifest(version)
    with pytest.raises(ModelIntegrityError):
        registry.promote(version, "no")


@pytest.mark.fault("registry-corruption", "one unreadable manifest among several: the others still listed")
def test_manifests_names_an_unreadable_one_and_keeps_the_others(registry, store):
    good = registry.register(make_model(1), METRICS, LINEAGE)
    bad = registry.register(make_model(2), METRICS, LINEAGE)
    store.put_bytes(f"models/versions/{bad}/manifest.json", b"{garbled")
    problems: list[str] = []
    assert list(registry.manifests(problems)) == [good]
    assert len(problems) == 1 and f"models/versions/{bad}/manifest.json" in problems[0]
    with pytest.raises(ModelIntegrityError):
        registry.manifests()


@pytest.mark.fault("kill", "killed between a version's files: invisible until re-registered, then complete")
def test_a_registration_killed_before_its_manifest_is_invisible_then_completed(store):
    class KilledAfterWeights(LocalBlobStore):
        def put_bytes(self, key, data):
            if key.endswith("reference_stats.json"):
                raise KeyboardInterrupt("killed")
            super().put_bytes(key, data)

    with pytest.raises(KeyboardInterrupt):
        ModelRegistry(KilledAfterWeights(store.root)).register(
            make_model(1), METRICS, LINEAGE, attachments={"reference_stats.json": REFERENCE}
        )
    registry = ModelRegistry(store)
    assert registry.versions() == []  # the weights alone are not a version
    version = _register_with_attachment(registry)
    assert registry.versions() == [version]
    assert registry.attachment(version, "reference_stats.json") == REFERENCE
    registry.load(version)


# --- the champion pointer and the promotion history ---------------------------------------------


GARBLED_POINTERS = [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"version": "m-', id="truncated"),
    pytest.param(b"\x00\x01\x02", id="binary"),
    pytest.param(b'["m-0123456789ab"]', id="not-an-object"),
    pytest.param(b'{"version": 5, "promoted_at": "2031-01-01T00:00:00+00:00"}', id="version-not-a-string"),
    pytest.param(b'{"version": "m-0123456789ab", "promoted_at": "yesterday"}', id="bad-timestamp"),
]


@pytest.mark.fault(
    "registry-corruption", "garbled champion pointer: a clear error naming models/champion.json"
)
@pytest.mark.parametrize("garbage", GARBLED_POINTERS)
def test_a_garbled_champion_pointer_is_a_clear_error_naming_the_file(registry, store, garbage):
    registry.promote(registry.register(make_model(1), METRICS, LINEAGE), "first")
    store.put_bytes(CHAMPION_KEY, garbage)
    with pytest.raises(
        CorruptRecordError, match=r"champion pointer .*models/champion\.json is unreadable"
    ) as raised:
        registry.champion()
    assert "astromined model rollback" in str(raised.value)
    assert raised.value.location.endswith("models/champion.json")


@pytest.mark.fault("registry-corruption", "garbled champion pointer: rollback (promote) repairs it")
@pytest.mark.parametrize("garbage", GARBLED_POINTERS)
def test_promote_repairs_a_garbled_champion_pointer(registry, store, garbage):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    registry.promote(v1, "first")
    store.put_bytes(CHAMPION_KEY, garbage)
    record = registry.promote(v1, "manual rollback: pointer garbled")
    assert record["previous"] is None
    assert "unreadable champion pointer" in record["note"]
    assert registry.champion() == record
    assert [r["version"] for r in registry.promotions()] == [v1, v1]


class _FailingWrite(LocalBlobStore):
    """Raises (a kill) on the n-th put_bytes from now on; the earlier ones land."""

    def __init__(self, root, fail_at: int):
        super().__init__(root)
        self.remaining = fail_at

    def put_bytes(self, key, data):
        self.remaining -= 1
        if self.remaining == 0:
            raise KeyboardInterrupt(f"killed before writing {key}")
        super().put_bytes(key, data)


@pytest.mark.fault("kill", "killed between the champion pointer and the promotion record: history consistent")
def test_a_promotion_killed_between_its_two_writes_leaves_history_consistent_with_the_pointer(store):
    registry = ModelRegistry(store)
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")

    with pytest.raises(KeyboardInterrupt):
        ModelRegistry(_FailingWrite(store.root, fail_at=2)).promote(v2, "second")  # the 2nd write fails

    champion = registry.champion()["version"]
    history = registry.promotions()
    # Whichever write landed, the history's last promotion is the one the pointer names.
    assert history[-1]["version"] == champion
    assert history[-1] == registry.champion()
    # The pointer is the commit point: the promotion took effect, its record is restored from it...
    assert champion == v2
    assert [(r["version"], r["previous"]) for r in history] == [(v1, None), (v2, v1)]
    # ...and written by the next promotion.
    registry.promote(v1, "rollback")
    assert len(store.list_keys("models/promotions/")) == 3
    assert [r["version"] for r in registry.promotions()] == [v1, v2, v1]


def test_a_promotion_killed_before_its_first_write_changes_nothing(store):
    registry = ModelRegistry(store)
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    with pytest.raises(KeyboardInterrupt):
        ModelRegistry(_FailingWrite(store.root, fail_at=1)).promote(v2, "second")
    assert registry.champion()["version"] == v1
    assert [r["version"] for r in registry.promotions()] == [v1]


@pytest.mark.fault("kill", "history record written but pointer switch killed (older write order): left out")
def test_a_history_record_whose_pointer_switch_never_happened_is_left_out(registry, store):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    first = registry.promote(v1, "first")
    # What the old order (record, then pointer) left after a kill between the two writes.
    orphan = {"version": v2, "previous": v1, "promoted_at": "2999-01-01T00:00:00+00:00", "reason": "x"}
    store.put_bytes(f"models/promotions/29990101T000000000000Z_{v2}.json", json.dumps(orphan).encode())
    problems: list[str] = []
    assert registry.promotions(problems) == [first]
    assert len(problems) == 1 and "never took effect" in problems[0] and v2 in problems[0]


@pytest.mark.fault(
    "registry-corruption", "one unreadable promotion record: named, the rest of the history kept"
)
def test_an_unreadable_promotion_record_is_named_and_skipped(registry, store):
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    registry.promote(v2, "second")
    [first_key, _] = store.list_keys("models/promotions/")
    store.put_bytes(first_key, b"\x00garbage")
    problems: list[str] = []
    assert [r["version"] for r in registry.promotions(problems)] == [v2]
    assert len(problems) == 1 and first_key in problems[0] and "unreadable" in problems[0]
    with pytest.raises(CorruptRecordError, match=first_key):
        registry.promotions()


# --- `astromined model list | rollback` over a damaged registry ---------------------------------


@pytest.fixture
def cli_registry(tmp_path):
    from astromined.environment import load_settings

    settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path)})
    return settings, ModelRegistry(LocalBlobStore(settings.lake_root))


def _model_list(settings, capsys) -> tuple[int, str, str]:
    from astromined import cli

    code = cli._cmd_model_list(settings, argparse.Namespace())
    out, err = capsys.readouterr()
    return code, out, err


def _rollback(settings, version, capsys) -> tuple[int, str, str]:
    from astromined import cli

    code = cli._cmd_model_rollback(settings, argparse.Namespace(version=version, reason="test"))
    out, err = capsys.readouterr()
    return code, out, err


def _listed_versions(out: str) -> list[str]:
    return [line[2:].split()[0] for line in out.splitlines() if line.startswith(("* ", "  "))]


def test_model_list_shows_versions_champion_and_history(cli_registry, capsys):
    settings, registry = cli_registry
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    registry.promote(v2, "second")
    code, out, err = _model_list(settings, capsys)
    assert code == 0 and err == ""
    assert _listed_versions(out) == sorted([v1, v2])
    assert f"* {v2}" in out
    history = out.split("promotions (oldest first):\n")[1].splitlines()
    assert [line.split()[1] for line in history] == [v1, v2]
    assert "(was none)  first" in history[0] and f"(was {v1})  second" in history[1]


@pytest.mark.fault(
    "registry-corruption", "`model list` over a garbled champion.json: named, versions still listed"
)
def test_model_list_over_a_garbled_champion_pointer(cli_registry, capsys):
    settings, registry = cli_registry
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    registry.promote(v1, "first")
    registry.store.put_bytes(CHAMPION_KEY, b"{garbled")
    code, out, err = _model_list(settings, capsys)
    assert code == 1
    assert _listed_versions(out) == [v1]
    assert "models/champion.json is unreadable" in err and "astromined model rollback" in err
    assert "no champion yet" not in out


@pytest.mark.fault("registry-corruption", "`model list` with one unreadable manifest: named, others listed")
def test_model_list_with_one_unreadable_manifest(cli_registry, capsys):
    settings, registry = cli_registry
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    registry.store.put_bytes(f"models/versions/{v2}/manifest.json", b"\x00\x01")
    code, out, err = _model_list(settings, capsys)
    assert code == 1
    assert _listed_versions(out) == sorted([v1, v2])
    assert f"{v2}  (manifest unreadable" in out
    assert f"models/versions/{v2}/manifest.json is unreadable" in err


@pytest.mark.fault(
    "kill", "`model list` after a kill between pointer and record: history matches the pointer"
)
def test_model_list_after_a_promotion_killed_between_its_writes(cli_registry, capsys):
    settings, registry = cli_registry
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v1, "first")
    with pytest.raises(KeyboardInterrupt):
        ModelRegistry(_FailingWrite(registry.store.root, fail_at=2)).promote(v2, "second")
    code, out, err = _model_list(settings, capsys)
    assert code == 0, err
    [champion] = [line.split()[1] for line in out.splitlines() if line.startswith("*")]
    history = out.split("promotions (oldest first):\n")[1].splitlines()
    assert history[-1].split()[1] == champion


@pytest.mark.fault("registry-corruption", "`model rollback` over a garbled champion.json repairs the pointer")
def test_model_rollback_over_a_garbled_pointer_and_an_unreadable_manifest(cli_registry, capsys):
    settings, registry = cli_registry
    v1 = registry.register(make_model(1), METRICS, LINEAGE)
    v2 = registry.register(make_model(2), METRICS, LINEAGE)
    registry.promote(v2, "first")
    registry.store.put_bytes(CHAMPION_KEY, b"")
    registry.store.put_bytes(f"models/versions/{v2}/manifest.json", b"{")
    code, out, err = _rollback(settings, v1, capsys)
    assert code == 0, err
    assert f"champion is now {v1} (was none)" in out
    assert "unreadable champion pointer" in out
    assert registry.champion()["version"] == v1
    # rolling back to the version with the unreadable manifest is refused, naming the file
    code, out, err = _rollback(settings, v2, capsys)
    assert code == 1
    assert "rollback refused" in err and f"models/versions/{v2}/manifest.json is unreadable" in err
    assert registry.champion()["version"] == v1


def test_a_version_keeps_how_it_is_scored_and_older_ones_score_with_the_plain_mean(registry, store):
    version = registry.register(make_model(1), METRICS, LINEAGE, scoring={"looks_exponent": 0.75})
    _, manifest = registry.load(version)
    assert manifest["scoring"] == {"looks_exponent": 0.75}
    assert looks_exponent(manifest) == 0.75
    # Registered without one, or before the section existed: 0, the plain mean of an asteroid's looks.
    plain = registry.register(make_model(2), METRICS, LINEAGE)
    assert looks_exponent(registry.load(plain)[1]) == 0.0
    manifest = registry.manifest(plain)
    del manifest["scoring"]
    store.put_bytes(f"models/versions/{plain}/manifest.json", json.dumps(manifest).encode())
    assert looks_exponent(registry.load(plain)[1]) == 0.0


@pytest.mark.fault("registry-corruption", "unusable scoring section: an integrity error naming the manifest")
@pytest.mark.parametrize(
    "scoring", [[1.0], {"looks_exponent": -0.5}, {"looks_exponent": "0.5"}, {"looks_exponent": True}]
)
def test_an_unusable_scoring_section_is_an_integrity_error_naming_the_manifest(registry, store, scoring):
    version = registry.register(make_model(1), METRICS, LINEAGE, scoring={"looks_exponent": 0.5})
    manifest = registry.manifest(version)
    manifest["scoring"] = scoring
    store.put_bytes(f"models/versions/{version}/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(
        ModelIntegrityError,
        match=rf"models/versions/{version}/manifest\.json has an unusable scoring section",
    ):
        registry.load(version)
    with pytest.raises(ValueError, match="scoring"):
        looks_exponent(manifest)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_looks_exponent_must_be_finite(value):
    with pytest.raises(ValueError, match="a finite number, 0 or more"):
        looks_exponent({"scoring": {"looks_exponent": value}})
