"""The signed uplink package: int8 model, manifest, Ed25519 signature.

Package (an uncompressed tar, the satellites' loader reads tar)::

    manifest.json   model version, classes, feature names, sha256 and size of every member, created_at
    model_int8.npz  quantized weights + input normalization (see quantize.py)
    manifest.sig    Ed25519 signature of manifest.json's exact bytes

The satellites hold the public key; the ground segment keeps the private key in a secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tarfile
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class PackageVerificationError(ValueError):
    pass


def generate_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the uplink signing key must be an Ed25519 private key in PEM (PKCS8)")
    return key


def public_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_package(
    members: dict[str, bytes], metadata: dict[str, Any], private_key: Ed25519PrivateKey
) -> tuple[bytes, dict[str, Any]]:
    """Assemble and sign a package; returns (tar bytes, manifest)."""
    created = dt.datetime.now(dt.UTC)
    manifest = {
        **metadata,
        "created_at": created.isoformat(),
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
            for name, data in sorted(members.items())
        },
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signature = private_key.sign(manifest_bytes)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "manifest.json", manifest_bytes, created.timestamp())
        for name, data in sorted(members.items()):
            _add(tar, name, data, created.timestamp())
        _add(tar, "manifest.sig", signature, created.timestamp())
    return buffer.getvalue(), manifest


def verify_package(package: bytes, public_key_pem_bytes: bytes) -> dict[str, Any]:
    """Check signature and member hashes as the satellite does; returns the manifest or raises."""
    return open_package(package, public_key_pem_bytes)[0]


def open_package(package: bytes, public_key_pem_bytes: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What the satellite's loader does: verify, then hand over the manifest and the members it lists."""
    public_key = serialization.load_pem_public_key(public_key_pem_bytes)
    if not isinstance(public_key, Ed25519PublicKey):
        raise PackageVerificationError("public key is not Ed25519")
    try:
        with tarfile.open(fileobj=io.BytesIO(package), mode="r") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except tarfile.TarError as exc:
        raise PackageVerificationError(f"not a readable uplink package: {exc}") from exc
    for required in ("manifest.json", "manifest.sig"):
        if required not in files:
            raise PackageVerificationError(f"package lacks {required}")
    try:
        public_key.verify(files["manifest.sig"], files["manifest.json"])
    except InvalidSignature as exc:
        raise PackageVerificationError("manifest signature does not verify") from exc
    manifest = json.loads(files["manifest.json"])
    for name, expected in manifest["members"].items():
        data = files.get(name)
        if data is None or hashlib.sha256(data).hexdigest() != expected["sha256"]:
            raise PackageVerificationError(f"member {name} is missing or does not match the manifest")
    return manifest, {name: files[name] for name in manifest["members"]}
