"""The model registry in the lake: immutable versions, an atomically switched champion pointer.

Layout (same on a local directory and on S3)::

    models/versions/<version>/model.pt        torch state_dict (weights and input normalization)
    models/versions/<version>/manifest.json   architecture, metrics, data partitions, code version, sha256
    models/champion.json                       {"version": ..., "promoted_at": ..., "reason": ...}
    models/promotions/<timestamp>_<version>.json   one object per promotion or rollback (the history)

A version id is derived from the weights' content hash, so retraining on identical data with the same
seed yields the same version and re-running is idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import torch

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.storage import BlobNotFoundError, BlobStore

PREFIX = "models"
CHAMPION_KEY = f"{PREFIX}/champion.json"


class ModelIntegrityError(RuntimeError):
    """A stored model does not match its manifest (truncated, corrupted or tampered with)."""


class UnknownModelVersionError(KeyError):
    pass


def _version_key(version: str, name: str) -> str:
    return f"{PREFIX}/versions/{version}/{name}"


def serialize_state(model: CompositionNet) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


class ModelRegistry:
    def __init__(self, store: BlobStore):
        self.store = store

    def register(
        self,
        model: CompositionNet,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        attachments: dict[str, bytes] | None = None,
    ) -> str:
        """Store a model version; returns its version id. Re-registering identical weights is a no-op.

        ``attachments`` (e.g. ``reference_stats.json``) are stored beside the weights, hashed in the manifest.
        """
        weights = serialize_state(model)
        digest = hashlib.sha256(weights).hexdigest()
        version = f"m-{digest[:12]}"
        attachments = attachments or {}
        manifest = {
            "version": version,
            "sha256": digest,
            "size_bytes": len(weights),
            "architecture": model.config.to_dict(),
            "metrics": metrics,
            "lineage": lineage,
            "attachments": {
                name: hashlib.sha256(data).hexdigest() for name, data in sorted(attachments.items())
            },
            "registered_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        if not self.store.exists(_version_key(version, "manifest.json")):
            self.store.put_bytes(_version_key(version, "model.pt"), weights)
            for name, data in attachments.items():
                self.store.put_bytes(_version_key(version, name), data)
            # The manifest last: a version is visible only once everything it names is stored.
            self.store.put_bytes(
                _version_key(version, "manifest.json"), json.dumps(manifest, indent=2).encode()
            )
        return version

    def attachment(self, version: str, name: str) -> bytes:
        """An attachment of a version, checked against the hash in its manifest."""
        expected = self.manifest(version).get("attachments", {}).get(name)
        if expected is None:
            raise KeyError(f"model {version} has no attachment {name!r}")
        try:
            data = self.store.get_bytes(_version_key(version, name))
        except BlobNotFoundError as exc:
            raise ModelIntegrityError(f"model {version}: attachment {name} missing") from exc
        if hashlib.sha256(data).hexdigest() != expected:
            raise ModelIntegrityError(f"model {version}: attachment {name} does not match the manifest")
        return data

    def manifest(self, version: str) -> dict[str, Any]:
        try:
            return json.loads(self.store.get_bytes(_version_key(version, "manifest.json")))
        except BlobNotFoundError as exc:
            raise UnknownModelVersionError(f"model version {version!r} is not in the registry") from exc

    def versions(self) -> list[str]:
        keys = self.store.list_keys(f"{PREFIX}/versions/")
        return sorted({k.split("/")[2] for k in keys if k.endswith("/manifest.json")})

    def load(self, version: str) -> tuple[CompositionNet, dict[str, Any]]:
        """Load a version after checking its weights against the manifest's size and sha256."""
        manifest = self.manifest(version)
        try:
            weights = self.store.get_bytes(_version_key(version, "model.pt"))
        except BlobNotFoundError as exc:
            raise ModelIntegrityError(f"model {version}: weights missing") from exc
        if (
            len(weights) != manifest["size_bytes"]
            or hashlib.sha256(weights).hexdigest() != manifest["sha256"]
        ):
            raise ModelIntegrityError(
                f"model {version}: weights at {self.store.describe(_version_key(version, 'model.pt'))} "
                f"do not match the manifest (size {len(weights)} vs {manifest['size_bytes']})"
            )
        model = CompositionNet(ArchitectureConfig.from_dict(manifest["architecture"]))
        model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
        model.eval()
        return model, manifest

    def champion(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.get_bytes(CHAMPION_KEY))
        except BlobNotFoundError:
            return None

    def promote(self, version: str, reason: str) -> dict[str, Any]:
        """Point the champion at ``version`` (verified loadable first) and record the promotion."""
        self.load(version)
        previous = self.champion()
        now = dt.datetime.now(dt.UTC)
        record = {
            "version": version,
            "previous": previous["version"] if previous else None,
            "promoted_at": now.isoformat(),
            "reason": reason,
        }
        body = json.dumps(record, indent=2).encode()
        self.store.put_bytes(f"{PREFIX}/promotions/{now:%Y%m%dT%H%M%S%fZ}_{version}.json", body)
        self.store.put_bytes(CHAMPION_KEY, body)
        return record

    def promotions(self) -> list[dict[str, Any]]:
        return [json.loads(self.store.get_bytes(k)) for k in self.store.list_keys(f"{PREFIX}/promotions/")]
