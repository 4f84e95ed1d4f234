"""The signed uplink package: int8 model, manifest, Ed25519 signature.

Package (an uncompressed tar, the satellites' loader reads tar)::

    manifest.json   model version, classes, feature names, sha256 and size of every member, created_at
    model_int8.npz  quantized weights + input normalization (see quantize.py)
    manifest.sig    Ed25519 signature of manifest.json's exact bytes

The satellites hold the fleet public key; the ground segment keeps the private key in a secret. A
package is verified against the fleet key (configured, as the satellites hold it), never against a key
that travels with the package. ``open_package`` is the one loader: the ground checks, the operator CLI
and on-board code share its rules (plain tar only, flat regular-file members listed in the signed
manifest, each once, the requested model version).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RESERVED_MEMBERS = (MANIFEST, SIGNATURE)
MODEL_MEMBER = "model_int8.npz"
QUANTIZATION = "int8 per-output-channel symmetric weights, float32 bias and normalization"


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
    for name in members:
        _check_member_name(name, "package member")
        if name in RESERVED_MEMBERS:
            raise ValueError(f"package member {name!r} is reserved")
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
        _add(tar, MANIFEST, manifest_bytes, created.timestamp())
        for name, data in sorted(members.items()):
            _add(tar, name, data, created.timestamp())
        _add(tar, SIGNATURE, signature, created.timestamp())
    return buffer.getvalue(), manifest


def load_public_key(pem: bytes, *, source: str = "the fleet public key") -> Ed25519PublicKey:
    """The fleet's Ed25519 public key from PEM; ``source`` names where it came from in errors."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise PackageVerificationError(f"{source} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise PackageVerificationError(f"{source}: public key is not Ed25519")
    return key


def public_key_fingerprint(public_key_pem_bytes: bytes) -> str:
    """sha256 of the raw Ed25519 public key, hex: names a key in logs and metadata without the PEM."""
    raw = load_public_key(public_key_pem_bytes).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def verify_package(
    package: bytes, public_key_pem_bytes: bytes, *, model_version: str | None = None
) -> dict[str, Any]:
    """Check the package as the satellite does; returns the manifest or raises PackageVerificationError.

    ``public_key_pem_bytes`` must be the fleet's key (as the satellites hold it), never a key that came
    with the package; ``model_version``, when given, must be the manifest's (no replay of an older signed
    package under another version's name)."""
    return open_package(package, public_key_pem_bytes, model_version=model_version)[0]


# Compressed archives are refused: the tar is opened with mode "r:" (tarfile's "r" would transparently
# decompress them; the satellites' loader reads plain tar only). The magic numbers name what was sent.
_COMPRESSION_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x5d\x00\x00": "lzma",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
}
_TAR_BLOCK = 512
_HEX = frozenset("0123456789abcdef")


def _check_member_name(name: str, where: str) -> None:
    """Package members are flat file names: no directories, no absolute or parent paths."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name != name.strip()
        or not name.isprintable()
    ):
        raise PackageVerificationError(f"{where} {name!r} is not a plain file name (no '/', '..', '\\')")


def _read_tar(package: bytes) -> dict[str, bytes]:
    """The members of a plain tar, strictly: regular files with flat names, each once, nothing after the
    end-of-archive marker but zeros."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(package), mode="r:") as tar:
            for member in tar:
                name = member.name
                _check_member_name(name, "tar member")
                if not member.isreg() or member.issparse():
                    kind = (
                        "symlink"
                        if member.issym()
                        else "hardlink"
                        if member.islnk()
                        else "device"
                        if member.isdev()
                        else "directory"
                        if member.isdir()
                        else "sparse file"
                        if member.issparse()
                        else f"type {member.type!r}"
                    )
                    raise PackageVerificationError(f"tar member {name!r} is a {kind}, not a regular file")
                if name in files:
                    raise PackageVerificationError(f"tar member {name!r} appears twice")
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if len(data) != member.size:
                    raise PackageVerificationError(f"tar member {name!r} is truncated")
                files[name] = data
            end = tar.offset
    except tarfile.TarError as exc:
        # Mode "r:" never decompresses: name a compressed archive rather than report a bad header.
        for magic, kind in _COMPRESSION_MAGIC.items():
            if package.startswith(magic):
                raise PackageVerificationError(
                    f"package is a {kind}-compressed archive; only a plain tar is accepted"
                ) from exc
        raise PackageVerificationError(f"not a readable uplink package: {exc}") from exc
    # A complete tar ends with two zero blocks; anything after them must be zero padding.
    if len(package) < end + 2 * _TAR_BLOCK:
        raise PackageVerificationError("package is truncated: no end-of-archive marker")
    if package[end:].count(0) != len(package) - end:
        raise PackageVerificationError("package has data after the end-of-archive marker")
    return files


def _check_manifest(manifest: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(manifest, dict):
        raise PackageVerificationError("manifest.json is not a JSON object")
    if not isinstance(manifest.get("model_version"), str):
        raise PackageVerificationError("manifest.json lacks a model_version string")
    members = manifest.get("members")
    if not isinstance(members, dict) or not members:
        raise PackageVerificationError("manifest.json lacks a non-empty 'members' object")
    for name, entry in members.items():
        _check_member_name(name, "manifest member")
        if name in RESERVED_MEMBERS:
            raise PackageVerificationError(f"manifest lists the reserved member {name!r}")
        if not isinstance(entry, dict):
            raise PackageVerificationError(f"manifest member {name!r} is not an object")
        digest, size = entry.get("sha256"), entry.get("size_bytes")
        if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
            raise PackageVerificationError(f"manifest member {name!r}: sha256 is not 64 hex digits")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise PackageVerificationError(f"manifest member {name!r}: size_bytes is not a whole number")
    return members


def open_package(
    package: bytes, public_key_pem_bytes: bytes, *, model_version: str | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What the satellite's loader does: verify, then hand over the manifest and the members it lists.

    Refused: a compressed archive; a member that is not a regular file, has a path (``/``, ``..``) or
    appears twice; a truncated archive or data after its end; a signature that does not verify with the
    fleet key; a manifest that is not the expected JSON; a member not listed in the manifest, missing,
    or of another size or hash; a manifest for another ``model_version`` than the one asked for."""
    public_key = load_public_key(public_key_pem_bytes)
    files = _read_tar(package)
    for required in RESERVED_MEMBERS:
        if required not in files:
            raise PackageVerificationError(f"package lacks {required}")
    try:
        public_key.verify(files[SIGNATURE], files[MANIFEST])
    except InvalidSignature as exc:
        raise PackageVerificationError(
            "manifest signature does not verify with the fleet public key "
            f"{public_key_fingerprint(public_key_pem_bytes)}"
        ) from exc
    try:
        manifest = json.loads(files[MANIFEST])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageVerificationError(f"manifest.json is not JSON: {exc}") from exc
    listed = _check_manifest(manifest)
    unlisted = sorted(set(files) - set(listed) - set(RESERVED_MEMBERS))
    if unlisted:
        raise PackageVerificationError(f"tar member(s) {unlisted} are not listed in the manifest")
    for name, expected in listed.items():
        data = files.get(name)
        if data is None:
            raise PackageVerificationError(f"member {name} is missing from the package")
        if len(data) != expected["size_bytes"]:
            raise PackageVerificationError(
                f"member {name} is {len(data)} bytes, the manifest says {expected['size_bytes']}"
            )
        if hashlib.sha256(data).hexdigest() != expected["sha256"]:
            raise PackageVerificationError(f"member {name} does not match the manifest's sha256")
    if model_version is not None and manifest["model_version"] != model_version:
        raise PackageVerificationError(
            f"package manifest is for model version {manifest['model_version']!r}, not the requested "
            f"{model_version!r} (an older signed package under another name?)"
        )
    return manifest, {name: files[name] for name in listed}


# --- the champion's package (uplink_package) ----------------------------------------------------------


def model_package_metadata(version: str, model_manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a model package's manifest says about the model, from its registry manifest."""
    return {
        "model_version": version,
        "classes": model_manifest["architecture"]["classes"],
        "feature_names": model_manifest["architecture"]["feature_names"],
        "quantization": QUANTIZATION,
        "holdout_metrics": dict(model_manifest["metrics"]),
        # The fleet calibration the model's inputs were corrected with: onboard preprocessing must apply
        # the same table version.
        "calibration_versions": sorted(
            set(model_manifest.get("lineage", {}).get("calibration_versions", {}).values())
        ),
    }


def build_model_package(
    int8_npz: bytes, version: str, model_manifest: Mapping[str, Any], private_key: Ed25519PrivateKey
) -> tuple[bytes, dict[str, Any]]:
    """The signed package of a registered model: its int8 arrays (``quantize.to_npz_bytes``) and
    ``model_package_metadata``; returns (tar bytes, manifest)."""
    return build_package(
        {MODEL_MEMBER: int8_npz}, model_package_metadata(version, model_manifest), private_key
    )


def latest_record(
    version: str, package_key: str, package: bytes, fleet_fingerprint: str, created_at: str
) -> dict[str, Any]:
    """The body of uplink/latest.json for a published package."""
    return {
        "version": version,
        "package": package_key,
        "size_bytes": len(package),
        "sha256": hashlib.sha256(package).hexdigest(),
        "fleet_public_key": fleet_fingerprint,
        "created_at": created_at,
    }


@dataclasses.dataclass(frozen=True)
class PackageChecks:
    """The blocking checks on a package before it is published (the asset records each as a check)."""

    verified: bool
    verification: str  # "signature verifies with ..." or why it does not
    size_bytes: int
    max_bytes: int
    agreement: Mapping[str, float]  # quantize.parity: the int8 model against the float one
    min_top1_agreement: float

    @property
    def size_ok(self) -> bool:
        return self.size_bytes <= self.max_bytes

    @property
    def parity_ok(self) -> bool:
        return self.agreement["top1_agreement"] >= self.min_top1_agreement

    @property
    def passed(self) -> bool:
        return self.verified and self.size_ok and self.parity_ok

    @property
    def failures(self) -> str:
        """One line saying what failed ("" when every check passed)."""
        reasons = [] if self.verified else [self.verification]
        if not self.size_ok:
            reasons.append(f"{self.size_bytes} bytes > budget {self.max_bytes}")
        if not self.parity_ok:
            reasons.append(
                f"int8 top-1 agreement {self.agreement['top1_agreement']:.4f} < {self.min_top1_agreement}"
            )
        return "; ".join(reasons)


def check_package(
    package: bytes,
    fleet_key: bytes,
    version: str,
    agreement: Mapping[str, float],
    *,
    max_bytes: int,
    min_top1_agreement: float,
) -> PackageChecks:
    """Verify ``package`` with the fleet key as a satellite does, and check its size and int8 parity."""
    try:
        verify_package(package, fleet_key, model_version=version)
    except PackageVerificationError as exc:
        verified, why = False, str(exc)
    else:
        verified, why = (
            True,
            f"signature verifies with the fleet public key {public_key_fingerprint(fleet_key)}",
        )
    return PackageChecks(verified, why, len(package), max_bytes, agreement, min_top1_agreement)
