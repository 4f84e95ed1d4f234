"""int8 export (parity with the float model) and the signed uplink package."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)

from astromined.features.engineering import MODEL_FEATURES
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.quantize import LAYERS, from_npz_bytes, int8_forward, parity, quantize, to_npz_bytes
from astromined.ml.train import TrainConfig, predict, train_model
from astromined.ml.uplink import (
    PackageVerificationError,
    build_package,
    generate_private_key_pem,
    load_private_key,
    open_package,
    public_key_pem,
    verify_package,
)
from astromined.taxonomy import COMPLEXES

ARCH = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES, hidden=32)
N_FEATURES = len(MODEL_FEATURES)


def sample(n: int, seed: int):
    """Four separated classes (S, C, V, M) at realistic offsets and scales."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(42).normal(0, 2.0, size=(4, N_FEATURES))
    labels = np.array([0, 1, 3, 5])
    which = rng.integers(0, 4, size=n)
    x = (centres[which] + rng.normal(0, 0.6, size=(n, N_FEATURES))) * np.linspace(0.2, 3.0, N_FEATURES) + 1.0
    metal = np.where(labels[which] == 5, 0.85, 0.15)
    return x.astype(np.float32), labels[which], metal.astype(np.float32)


@pytest.fixture(scope="module")
def trained(single_thread_torch) -> CompositionNet:  # noqa: F811 (the fixture, requested first)
    xt, yt, mt = sample(300, 0)
    xv, yv, mv = sample(100, 1)
    config = TrainConfig(max_epochs=40, patience=10, batch_size=64, learning_rate=1e-2, seed=5)
    model = train_model(ARCH, xt, yt, mt, xv, yv, mv, torch.device("cpu"), config).model
    probabilities, _ = predict(model, xv)
    assert np.mean(probabilities.argmax(axis=1) == yv) >= 0.9  # the fixture really is a trained model
    return model


@pytest.fixture(scope="module")
def arrays(trained) -> dict[str, np.ndarray]:
    return quantize(trained)


@pytest.fixture(scope="module")
def key():
    return load_private_key(generate_private_key_pem())


# --- quantization -----------------------------------------------------------------------------


def test_quantized_layout(trained, arrays):
    assert arrays["feature_mean"].dtype == np.float32
    np.testing.assert_array_equal(arrays["feature_mean"], trained.feature_mean.numpy())
    np.testing.assert_array_equal(arrays["feature_std"], trained.feature_std.numpy())
    state = trained.state_dict()
    for layer in LAYERS:
        weight = state[f"{layer}.weight"].numpy()
        q, scale = arrays[f"{layer}.weight_q"], arrays[f"{layer}.scale"]
        assert q.dtype == np.int8
        assert q.shape == weight.shape
        assert q.min() >= -127 and q.max() <= 127
        # every output channel uses the full range on its largest weight
        assert (np.abs(q).max(axis=1) == 127).all()
        assert scale.dtype == np.float32 and scale.shape == (weight.shape[0],)
        # dequantization error is at most half a step per channel
        assert (np.abs(q * scale[:, None] - weight) <= scale[:, None] / 2 + 1e-7).all()
        if f"{layer}.bias" in state:
            np.testing.assert_array_equal(arrays[f"{layer}.bias"], state[f"{layer}.bias"].numpy())
        else:  # the wide layer: the class head carries the bias
            assert f"{layer}.bias" not in arrays


def test_int8_forward_matches_the_float_model(trained, arrays):
    x, _, _ = sample(2000, 7)
    report = parity(trained, arrays, x)
    assert report["top1_agreement"] >= 0.99
    assert report["max_probability_error"] < 0.05
    assert report["max_metal_error"] < 0.05


def test_int8_forward_on_random_inputs(trained, arrays):
    rng = np.random.default_rng(11)
    scale = trained.feature_std.numpy()
    x = (trained.feature_mean.numpy() + rng.normal(0, 1.0, size=(2000, N_FEATURES)) * scale).astype(
        np.float32
    )
    probabilities, metal = int8_forward(arrays, x)
    float_probabilities, float_metal = predict(trained, x)
    assert np.mean(probabilities.argmax(1) == float_probabilities.argmax(1)) >= 0.99
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert probabilities.shape == (2000, len(COMPLEXES))
    assert ((metal > 0) & (metal < 1)).all()
    np.testing.assert_allclose(metal, float_metal, atol=0.05)


def test_int8_forward_is_exact_for_weights_on_the_int8_grid():
    """With weights already on the int8 grid, int8_forward reproduces the float forward pass."""
    torch.manual_seed(0)
    model = CompositionNet(ArchitectureConfig(("a", "b"), ("S", "M"), hidden=4, dropout=0.0)).eval()
    with torch.no_grad():
        for layer in LAYERS:
            weight = dict(model.named_parameters())[f"{layer}.weight"]
            weight.copy_(torch.randint(-127, 128, weight.shape).float() / 128.0)
            weight[:, 0] = 127 / 128.0  # per-channel max → scale exactly 1/128
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    q_probabilities, q_metal = int8_forward(quantize(model), x)
    probabilities, metal = predict(model, x)
    np.testing.assert_allclose(q_probabilities, probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_metal, metal, rtol=1e-5, atol=1e-6)


def test_parity_on_no_inputs(trained, arrays):
    report = parity(trained, arrays, np.zeros((0, N_FEATURES), np.float32))
    assert report == {"top1_agreement": 1.0, "max_probability_error": 0.0, "max_metal_error": 0.0}


def test_npz_round_trip(arrays):
    data = to_npz_bytes(arrays)
    back = from_npz_bytes(data)
    assert back.keys() == arrays.keys()
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype
        np.testing.assert_array_equal(back[name], value)
    x, _, _ = sample(50, 3)
    for a, b in zip(int8_forward(back, x), int8_forward(arrays, x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_int8_export_is_smaller_than_float_weights(trained, arrays):
    float_bytes = sum(v.numel() * 4 for v in trained.state_dict().values())
    assert len(to_npz_bytes(arrays)) < float_bytes


# --- keys -------------------------------------------------------------------------------------


def test_private_key_pem_round_trip():
    pem = generate_private_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(pem)
    reloaded = load_private_key(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert public_key_pem(key) == public_key_pem(reloaded)
    assert public_key_pem(key).startswith(b"-----BEGIN PUBLIC KEY-----")
    signature = key.sign(b"payload")
    serialization.load_pem_public_key(public_key_pem(reloaded)).verify(signature, b"payload")
    assert public_key_pem(load_private_key(generate_private_key_pem())) != public_key_pem(key)


def test_load_private_key_rejects_other_key_types():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key(pem)


# --- package ----------------------------------------------------------------------------------

METADATA = {"model_version": "m-0123456789ab", "classes": list(COMPLEXES), "feature_names": MODEL_FEATURES}


@pytest.fixture(scope="module")
def package(arrays, key):
    model_bytes = to_npz_bytes(arrays)
    tar_bytes, manifest = build_package({"model_int8.npz": model_bytes}, METADATA, key)
    return tar_bytes, manifest, model_bytes


def member_span(tar_bytes: bytes, name: str) -> tuple[int, int]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        info = tar.getmember(name)
        return info.offset_data, info.size


def members(tar_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def repack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_build_then_verify(package, key, arrays):
    tar_bytes, manifest, model_bytes = package
    verified = verify_package(tar_bytes, public_key_pem(key))
    assert verified == manifest
    assert verified["model_version"] == METADATA["model_version"]
    assert verified["classes"] == list(COMPLEXES)
    assert verified["members"]["model_int8.npz"]["size_bytes"] == len(model_bytes)
    assert "created_at" in verified
    files = members(tar_bytes)
    assert list(files) == ["manifest.json", "model_int8.npz", "manifest.sig"]
    assert json.loads(files["manifest.json"]) == manifest
    # the packaged model is the one that went in, and it still runs
    unpacked = from_npz_bytes(files["model_int8.npz"])
    x, _, _ = sample(20, 9)
    np.testing.assert_array_equal(int8_forward(unpacked, x)[0], int8_forward(arrays, x)[0])


def test_flipped_byte_in_the_model_member_is_rejected(package, key):
    tar_bytes, _, _ = package
    start, size = member_span(tar_bytes, "model_int8.npz")
    for offset in (start, start + size // 2, start + size - 1):
        damaged = bytearray(tar_bytes)
        damaged[offset] ^= 0x01
        with pytest.raises(PackageVerificationError, match=r"model_int8\.npz"):
            verify_package(bytes(damaged), public_key_pem(key))


def test_tampered_manifest_is_rejected(package, key):
    tar_bytes, _, _ = package
    start, size = member_span(tar_bytes, "manifest.json")
    text = tar_bytes[start : start + size]
    forged = text.replace(b"m-0123456789ab", b"m-0123456789ac")
    assert forged != text and len(forged) == len(text)
    damaged = tar_bytes[:start] + forged + tar_bytes[start + size :]
    with pytest.raises(PackageVerificationError, match="signature"):
        verify_package(damaged, public_key_pem(key))


def test_swapped_model_with_rewritten_manifest_is_rejected(package, key):
    """An attacker who replaces the model and fixes the hashes still cannot re-sign the manifest."""
    tar_bytes, _, _ = package
    files = members(tar_bytes)
    evil_model = b"not the model"
    manifest = json.loads(files["manifest.json"])
    manifest["members"]["model_int8.npz"] = {
        "sha256": hashlib.sha256(evil_model).hexdigest(),
        "size_bytes": len(evil_model),
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    files["model_int8.npz"] = evil_model
    with pytest.raises(PackageVerificationError, match="signature"):
        verify_package(repack(files), public_key_pem(key))


def test_package_signed_by_another_key_is_rejected(package):
    tar_bytes, _, _ = package
    other = load_private_key(generate_private_key_pem())
    with pytest.raises(PackageVerificationError, match="signature"):
        verify_package(tar_bytes, public_key_pem(other))


def test_non_ed25519_public_key_is_rejected(package):
    tar_bytes, _, _ = package
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(PackageVerificationError, match="Ed25519"):
        verify_package(tar_bytes, ec_public)


def test_truncated_package_is_rejected(package, key):
    tar_bytes, _, _ = package
    sig_start, sig_size = member_span(tar_bytes, "manifest.sig")
    end_of_content = sig_start + sig_size
    cuts = sorted({0, 1, 100, 511, 512, 513, *range(600, end_of_content, 251), end_of_content - 1})
    public = public_key_pem(key)
    for cut in cuts:
        with pytest.raises(PackageVerificationError):
            verify_package(tar_bytes[:cut], public)


@pytest.mark.parametrize("dropped", ["manifest.sig", "manifest.json", "model_int8.npz"])
def test_missing_member_is_rejected(package, key, dropped):
    tar_bytes, _, _ = package
    files = {name: data for name, data in members(tar_bytes).items() if name != dropped}
    with pytest.raises(PackageVerificationError, match=r"lacks|missing"):
        verify_package(repack(files), public_key_pem(key))


def test_garbage_is_rejected(key):
    with pytest.raises(PackageVerificationError):
        verify_package(b"\x00" * 10 + b"definitely not a tar" * 50, public_key_pem(key))


def test_manifest_lists_every_member_with_its_hash(key):
    payload = {"b.bin": b"\x01\x02", "a.txt": b"hello"}
    tar_bytes, manifest = build_package(payload, {"model_version": "m-x"}, key)
    assert sorted(manifest["members"]) == ["a.txt", "b.bin"]
    for name, data in payload.items():
        assert manifest["members"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
        }
    assert verify_package(tar_bytes, public_key_pem(key))["model_version"] == "m-x"


# --- tampered packages: what the satellite's loader (open_package) refuses -------------------------


def sign_manifest(manifest: object, key, *, raw: bytes | None = None) -> tuple[bytes, bytes]:
    """(manifest bytes, valid signature): a manifest an insider could sign, to isolate the other checks."""
    data = raw if raw is not None else json.dumps(manifest, indent=2, sort_keys=True).encode()
    return data, key.sign(data)


def raw_tar(entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar with exactly these entries (any type, any name, duplicates allowed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in entries:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def signed_package(key, members: dict[str, bytes], *, manifest_members=None, version="m-0123456789ab"):
    """Entries of a package whose manifest (listing ``manifest_members``, default: ``members``) is signed."""
    listed = members if manifest_members is None else manifest_members
    manifest = {
        "model_version": version,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
            for name, data in listed.items()
        },
    }
    manifest_bytes, signature = sign_manifest(manifest, key)
    return [
        regular("manifest.json", manifest_bytes),
        *(regular(name, data) for name, data in members.items()),
        regular("manifest.sig", signature),
    ]


def test_a_hand_built_package_with_a_signed_manifest_verifies(key):
    """The tamper cases below start from this valid package and change one thing."""
    entries = signed_package(key, {"model_int8.npz": b"weights"})
    manifest, files = open_package(raw_tar(entries), public_key_pem(key), model_version="m-0123456789ab")
    assert files == {"model_int8.npz": b"weights"}
    assert manifest["model_version"] == "m-0123456789ab"


@pytest.mark.fault("tamper", "package signed by a key other than the fleet's")
def test_package_verified_only_with_the_fleet_key(key):
    attacker = load_private_key(generate_private_key_pem())
    forged, _ = build_package({"model_int8.npz": b"evil"}, METADATA, attacker)
    # The attacker's public key would verify it: the loader must be given the fleet's key instead.
    assert verify_package(forged, public_key_pem(attacker))["model_version"] == METADATA["model_version"]
    with pytest.raises(PackageVerificationError, match="signature does not verify with the fleet public key"):
        verify_package(forged, public_key_pem(key))


@pytest.mark.fault("tamper", "older signed package replayed under a newer version's name")
def test_replayed_older_package_is_rejected_for_another_version(key):
    older, _ = build_package({"model_int8.npz": b"old weights"}, {"model_version": "m-000000000old"}, key)
    assert verify_package(older, public_key_pem(key), model_version="m-000000000old")
    with pytest.raises(
        PackageVerificationError, match=r"'m-000000000old', not the requested 'm-000000000new'"
    ):
        verify_package(older, public_key_pem(key), model_version="m-000000000new")


@pytest.mark.fault("tamper", "extra tar member not listed in the signed manifest")
def test_member_not_in_the_manifest_is_rejected(key):
    entries = signed_package(key, {"model_int8.npz": b"weights"})
    entries.insert(2, regular("loader_hook.py", b"import os"))
    with pytest.raises(
        PackageVerificationError, match=r"\['loader_hook\.py'\] are not listed in the manifest"
    ):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.fault("tamper", "member listed in the manifest is missing")
def test_listed_member_missing_is_rejected(key):
    entries = signed_package(key, {}, manifest_members={"model_int8.npz": b"weights"})
    with pytest.raises(PackageVerificationError, match=r"model_int8\.npz is missing"):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.parametrize("duplicate", ["model_int8.npz", "manifest.json", "manifest.sig"])
@pytest.mark.fault("tamper", "duplicate tar member (a reader keeping the last copy sees other bytes)")
def test_duplicate_member_is_rejected(key, duplicate):
    entries = signed_package(key, {"model_int8.npz": b"weights"})
    original = dict((info.name, data) for info, data in entries)[duplicate]
    entries.append(regular(duplicate, original if duplicate != "model_int8.npz" else b"other weights"))
    with pytest.raises(PackageVerificationError, match=rf"'{duplicate}' appears twice"):
        verify_package(raw_tar(entries), public_key_pem(key))


BAD_NAMES = ["../x", "/abs", "a/b", "..", ".", "./model_int8.npz", "a\\b", "", " model_int8.npz"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.fault("tamper", "tar member with a path component ('..', '/', absolute)")
def test_member_with_a_path_is_rejected(key, name):
    entries = signed_package(key, {"model_int8.npz": b"weights"})
    entries.insert(2, regular(name, b"payload"))
    with pytest.raises(PackageVerificationError, match="not a plain file name"):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b"])
@pytest.mark.fault("tamper", "signed manifest listing a member with a path component")
def test_signed_manifest_listing_a_path_is_rejected(key, name):
    """Even a manifest the key signed cannot make the loader accept a path."""
    listed = {name: b"payload"}
    entries = signed_package(key, {}, manifest_members=listed)
    info, data = regular(name, b"payload")
    entries.insert(1, (info, data))
    with pytest.raises(PackageVerificationError, match="not a plain file name"):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
@pytest.mark.fault("tamper", "compressed tar (gzip, bzip2, xz) instead of a plain tar")
def test_compressed_tar_is_rejected(package, key, compression):
    import bz2
    import gzip
    import lzma

    tar_bytes, _, _ = package
    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compression]
    # Python's tarfile "r" mode would open each of these transparently.
    with tarfile.open(fileobj=io.BytesIO(compress(tar_bytes)), mode="r") as tar:
        assert "manifest.json" in tar.getnames()
    with pytest.raises(PackageVerificationError, match=r"compressed archive; only a plain tar"):
        verify_package(compress(tar_bytes), public_key_pem(key))


def test_plain_tar_whose_first_member_name_looks_like_a_magic_number_verifies(key):
    entries = signed_package(key, {"BZh9": b"weights"})
    entries.insert(0, entries.pop(1))  # "BZh9" first: the archive starts with bzip2's magic bytes
    assert raw_tar(entries).startswith(b"BZh")
    _, files = open_package(raw_tar(entries), public_key_pem(key))
    assert files == {"BZh9": b"weights"}


def _special(name: str, kind: bytes, **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    for field, value in fields.items():
        setattr(info, field, value)
    return info, b""


SPECIAL_MEMBERS = {
    "symlink": _special("model_int8.npz", tarfile.SYMTYPE, linkname="/etc/passwd"),
    "hardlink": _special("model_int8.npz", tarfile.LNKTYPE, linkname="manifest.json"),
    "device": _special("model_int8.npz", tarfile.CHRTYPE, devmajor=1, devminor=3),
    "block device": _special("model_int8.npz", tarfile.BLKTYPE, devmajor=8, devminor=0),
    "directory": _special("model_int8.npz", tarfile.DIRTYPE),
    "fifo": _special("model_int8.npz", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("kind", sorted(SPECIAL_MEMBERS))
@pytest.mark.fault("tamper", "symlink, hardlink, device, directory or fifo tar member")
def test_member_that_is_not_a_regular_file_is_rejected(key, kind):
    entries = signed_package(key, {}, manifest_members={"model_int8.npz": b""})
    entries.insert(1, SPECIAL_MEMBERS[kind])
    with pytest.raises(PackageVerificationError, match="not a regular file"):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.parametrize(
    ("manifest_bytes", "message"),
    [
        (b"not json {", "manifest.json is not JSON"),
        (b"\xff\xfe", "manifest.json is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"members": {}}', "lacks a model_version"),
        (b'{"model_version": "m-x"}', "lacks a non-empty 'members'"),
        (b'{"model_version": "m-x", "members": {}}', "lacks a non-empty 'members'"),
        (b'{"model_version": "m-x", "members": {"m": 1}}', "'m' is not an object"),
        (b'{"model_version": "m-x", "members": {"m": {"size_bytes": 1}}}', "sha256 is not 64 hex"),
        (
            b'{"model_version": "m-x", "members": {"m": {"sha256": "' + b"a" * 64 + b'", "size_bytes": -1}}}',
            "size_bytes is not a whole number",
        ),
        (
            b'{"model_version": "m-x", "members": {"manifest.sig": {"sha256": "'
            + b"a" * 64
            + b'", "size_bytes": 1}}}',
            "reserved member",
        ),
    ],
)
@pytest.mark.fault("tamper", "signed manifest that is not JSON or lacks its fields")
def test_malformed_signed_manifest_is_rejected(key, manifest_bytes, message):
    manifest_bytes, signature = sign_manifest(None, key, raw=manifest_bytes)
    entries = [regular("manifest.json", manifest_bytes), regular("manifest.sig", signature)]
    with pytest.raises(PackageVerificationError, match=message):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.fault("tamper", "member whose size differs from the manifest's size_bytes")
def test_wrong_size_is_rejected(key):
    data = b"weights"
    manifest = {
        "model_version": "m-x",
        "members": {
            "model_int8.npz": {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data) + 1}
        },
    }
    manifest_bytes, signature = sign_manifest(manifest, key)
    entries = [
        regular("manifest.json", manifest_bytes),
        regular("model_int8.npz", data),
        regular("manifest.sig", signature),
    ]
    with pytest.raises(PackageVerificationError, match=r"is 7 bytes, the manifest says 8"):
        verify_package(raw_tar(entries), public_key_pem(key))


@pytest.mark.fault("tamper", "signature of other bytes (another package's manifest.sig)")
def test_signature_of_other_bytes_is_rejected(package, key):
    tar_bytes, _, _ = package
    other, _ = build_package({"model_int8.npz": b"other"}, METADATA, key)
    files = members(tar_bytes)
    files["manifest.sig"] = members(other)["manifest.sig"]
    with pytest.raises(PackageVerificationError, match="signature does not verify"):
        verify_package(repack(files), public_key_pem(key))


@pytest.mark.fault("tamper", "tar cut at a block boundary (no end-of-archive marker)")
def test_tar_cut_at_a_block_boundary_is_rejected(package, key):
    tar_bytes, _, _ = package
    sig_start, sig_size = member_span(tar_bytes, "manifest.sig")
    padded_end = -(-(sig_start + sig_size) // 512) * 512
    for cut in (sig_start + sig_size, padded_end, padded_end + 512):
        with pytest.raises(PackageVerificationError, match=r"truncated|end-of-archive|end of data"):
            verify_package(tar_bytes[:cut], public_key_pem(key))
    # two zero blocks are the whole end marker: the package still verifies without the rest of the record
    assert verify_package(tar_bytes[: padded_end + 1024], public_key_pem(key))


@pytest.mark.fault("tamper", "bytes appended after the end-of-archive marker")
def test_data_after_the_end_of_the_archive_is_rejected(package, key):
    tar_bytes, _, _ = package
    with pytest.raises(PackageVerificationError, match="after the end-of-archive"):
        verify_package(tar_bytes + raw_tar([regular("extra", b"x")]), public_key_pem(key))


@pytest.mark.fault("bad-config", "fleet public key file is not a PEM key")
def test_fleet_key_that_is_not_a_key_is_rejected(package):
    tar_bytes, _, _ = package
    with pytest.raises(PackageVerificationError, match="not a PEM public key"):
        verify_package(tar_bytes, b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")


def test_build_package_refuses_names_the_loader_would_refuse(key):
    for name in ("../x", "a/b", "manifest.json"):
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            build_package({name: b"x"}, {"model_version": "m-x"}, key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.fault("tamper", "random byte flips, cuts and insertions anywhere in a signed package")
def test_mutated_package_never_verifies_with_other_content(package, key, data):
    """Whatever changes, the loader either refuses the package or hands over exactly the signed content."""
    tar_bytes, manifest, model_bytes = package
    mutated = bytearray(tar_bytes)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        position = data.draw(st.integers(0, len(mutated) - 1), label="position")
        edit = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]), label="edit")
        if edit == "flip":
            mutated[position] ^= data.draw(st.integers(1, 255), label="mask")
        elif edit == "cut":
            del mutated[position:]
        elif edit == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=600), label="bytes")
        else:
            del mutated[position : position + data.draw(st.integers(1, 600), label="length")]
        if not mutated:
            break
    try:
        got_manifest, got_members = open_package(bytes(mutated), public_key_pem(key))
    except PackageVerificationError:
        return
    assert got_manifest == manifest
    assert got_members == {"model_int8.npz": model_bytes}
