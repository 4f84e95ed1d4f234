"""The model registry in the lake: immutable versions, an atomically switched champion pointer.

Layout (same on a local directory and on S3)::

    models/versions/<version>/model.pt        torch state_dict (weights and input normalization)
    models/versions/<version>/<attachment>    e.g. reference_stats.json, hashed in the manifest
    models/versions/<version>/manifest.json   architecture, metrics, scoring, data partitions, code version,
                                               sha256
    models/champion.json                       {"version": ..., "promoted_at": ..., "reason": ...}
    models/promotions/<timestamp>_<version>.json   one object per promotion or rollback (the history)

A version id is derived from the weights' content hash (``m-`` + the first 12 hex digits of their
sha256), so retraining on identical data with the same seed yields the same version and re-running is
idempotent; ``load`` checks the id against the weights, so replacing weights and manifest together is
detected too.

Write order, so that a process killed between two writes never leaves an inconsistent pair:

- a version's weights, then its attachments, then its manifest: a version is visible (listed, loadable)
  only once everything its manifest names is stored. Re-registering a version rewrites whichever of
  its files no longer match (a damaged version is repaired from the retrained bytes).
- a promotion writes the champion pointer (the commit point: it holds the whole promotion record), then
  the history record. A kill between the two leaves a history without the last record;
  ``promotions()`` restores it from the pointer and the next ``promote`` writes it. History records
  later than the pointer's own (a promotion whose pointer switch never happened) are not in effect and
  are left out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from typing import Any

import torch

from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.storage import BlobNotFoundError, BlobStore

PREFIX = "models"
CHAMPION_KEY = f"{PREFIX}/champion.json"
PROMOTIONS_PREFIX = f"{PREFIX}/promotions/"
VERSION_PATTERN = re.compile(r"m-[0-9a-f]{12}")
RECOVERY_HINT = "`astromined model rollback <version>` points the champion at a good version"


class RegistryError(RuntimeError):
    """Something stored in the registry cannot be used; ``location`` names the object at fault."""

    def __init__(self, message: str, *, location: str | None = None):
        super().__init__(message)
        self.location = location


class ModelIntegrityError(RegistryError):
    """A stored model does not match its manifest or its version id (truncated, corrupted, tampered)."""


class CorruptRecordError(RegistryError):
    """The champion pointer or a promotion record is not a readable record."""


class UnknownModelVersionError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message
        return str(self.args[0]) if self.args else ""


def looks_exponent(manifest: dict[str, Any]) -> float:
    """The looks' calibration exponent a version's manifest records (``scoring.looks_exponent``, fitted by
    candidate_model: ``ml/looks.py``); 0, the plain mean of an asteroid's looks, for a version registered
    before it existed or trained without validation looks. A ValueError says what is wrong with it."""
    scoring = manifest.get("scoring") or {}
    if not isinstance(scoring, dict):
        raise ValueError(f"'scoring' is a JSON {type(scoring).__name__}, not an object")
    value = scoring.get("looks_exponent", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < float("inf"):
        raise ValueError(f"'scoring.looks_exponent' must be a finite number, 0 or more, not {value!r}")
    return float(value)


def _version_key(version: str, name: str) -> str:
    return f"{PREFIX}/versions/{version}/{name}"


def version_id(weights_sha256: str) -> str:
    return f"m-{weights_sha256[:12]}"


def serialize_state(model: CompositionNet) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_key(record: dict[str, Any]) -> str:
    """The history key of a promotion record, derived from its own fields (so the pointer can rebuild it)."""
    promoted_at = dt.datetime.fromisoformat(record["promoted_at"]).astimezone(dt.UTC)
    return f"{PROMOTIONS_PREFIX}{promoted_at:%Y%m%dT%H%M%S%fZ}_{record['version']}.json"


class ModelRegistry:
    def __init__(self, store: BlobStore):
        self.store = store
        # What register() rewrote because the stored copy was damaged (for the caller to report).
        self.repairs: list[str] = []

    # -- versions ---------------------------------------------------------------------------------

    def register(
        self,
        model: CompositionNet,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        attachments: dict[str, bytes] | None = None,
        scoring: dict[str, float] | None = None,
    ) -> str:
        """Store a model version; returns its version id.

        Re-registering identical weights keeps an intact version as it is (its manifest, with the metrics
        and lineage of the first registration, is immutable) but rewrites any of its files that no
        longer match: damaged weights or attachments are repaired from the bytes given here, and a
        manifest that is unreadable or does not describe these weights is replaced. Each repair is
        appended to ``self.repairs``.

        ``attachments`` (e.g. ``reference_stats.json``) are stored beside the weights, hashed in the manifest.
        ``scoring`` holds how the version's predictions are combined when it is scored (``looks_exponent``,
        ``ml/looks.py``); a version without it is scored with the defaults (``looks_exponent``).
        """
        weights = serialize_state(model)
        digest = _sha256(weights)
        version = version_id(digest)
        attachments = attachments or {}
        hashes = {name: _sha256(data) for name, data in sorted(attachments.items())}
        existing = self._intact_manifest(version, digest, len(weights))
        if existing is None:
            if self.store.exists(_version_key(version, "manifest.json")):
                self.repairs.append(f"model {version}: rewrote its unusable manifest")
            manifest = {
                "version": version,
                "sha256": digest,
                "size_bytes": len(weights),
                "architecture": model.config.to_dict(),
                "metrics": metrics,
                "lineage": lineage,
                "attachments": hashes,
                "scoring": dict(scoring or {}),
                "registered_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            self.store.put_bytes(_version_key(version, "model.pt"), weights)
            for name, data in sorted(attachments.items()):
                self.store.put_bytes(_version_key(version, name), data)
            # The manifest last: a version is visible only once everything it names is stored.
            self._put_manifest(version, manifest)
            return version

        if not self._stored_matches(_version_key(version, "model.pt"), digest):
            self.store.put_bytes(_version_key(version, "model.pt"), weights)
            self.repairs.append(f"model {version}: rewrote damaged weights")
        recorded = dict(existing.get("attachments") or {})
        manifest_changed = False
        for name, data in sorted(attachments.items()):
            if self._stored_matches(_version_key(version, name), recorded.get(name)):
                continue  # intact: the version keeps the attachment it was registered with
            self.store.put_bytes(_version_key(version, name), data)
            self.repairs.append(f"model {version}: rewrote damaged attachment {name}")
            if recorded.get(name) != hashes[name]:
                recorded[name] = hashes[name]
                manifest_changed = True
        if manifest_changed:
            self._put_manifest(version, {**existing, "attachments": recorded})
        return version

    def _put_manifest(self, version: str, manifest: dict[str, Any]) -> None:
        self.store.put_bytes(_version_key(version, "manifest.json"), json.dumps(manifest, indent=2).encode())

    def _stored_matches(self, key: str, sha256: str | None) -> bool:
        if sha256 is None:
            return False
        try:
            return _sha256(self.store.get_bytes(key)) == sha256
        except BlobNotFoundError:
            return False

    def _intact_manifest(self, version: str, digest: str, size: int) -> dict[str, Any] | None:
        """The stored manifest of ``version`` if it is readable and describes these weights."""
        try:
            manifest = self.manifest(version)
        except (UnknownModelVersionError, ModelIntegrityError):
            return None
        if (
            manifest.get("version") != version
            or manifest.get("sha256") != digest
            or manifest.get("size_bytes") != size
            or not isinstance(manifest.get("attachments", {}), dict)
        ):
            return None
        return manifest

    def attachment(self, version: str, name: str) -> bytes:
        """An attachment of a version, checked against the hash in its manifest."""
        attachments = self.manifest(version).get("attachments") or {}
        expected = attachments.get(name) if isinstance(attachments, dict) else None
        if expected is None:
            raise KeyError(f"model {version} has no attachment {name!r}")
        key = _version_key(version, name)
        where = self.store.describe(key)
        try:
            data = self.store.get_bytes(key)
        except BlobNotFoundError as exc:
            raise ModelIntegrityError(
                f"model {version}: attachment {name} missing ({where})", location=where
            ) from exc
        if _sha256(data) != expected:
            raise ModelIntegrityError(
                f"model {version}: attachment {name} at {where} does not match the manifest", location=where
            )
        return data

    def manifest(self, version: str) -> dict[str, Any]:
        key = _version_key(version, "manifest.json")
        where = self.store.describe(key)
        try:
            raw = self.store.get_bytes(key)
        except BlobNotFoundError as exc:
            raise UnknownModelVersionError(
                f"model version {version!r} is not in the registry (no {where})"
            ) from exc
        try:
            manifest = json.loads(raw)
            if not isinstance(manifest, dict):
                raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ModelIntegrityError(
                f"model {version}: manifest {where} is unreadable ({exc})", location=where
            ) from exc
        return manifest

    def versions(self) -> list[str]:
        keys = self.store.list_keys(f"{PREFIX}/versions/")
        return sorted({k.split("/")[2] for k in keys if k.endswith("/manifest.json")})

    def manifests(self, problems: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every version's manifest. An unreadable one raises, or, given ``problems``, is named there and
        left out (so one damaged version does not hide the others)."""
        manifests = {}
        for version in self.versions():
            try:
                manifests[version] = self.manifest(version)
            except ModelIntegrityError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
        return manifests

    def load(self, version: str) -> tuple[CompositionNet, dict[str, Any]]:
        """Load a version after checking its weights against the version id and the manifest."""
        manifest = self.manifest(version)
        weights_key = _version_key(version, "model.pt")
        weights_at = self.store.describe(weights_key)
        manifest_at = self.store.describe(_version_key(version, "manifest.json"))
        try:
            weights = self.store.get_bytes(weights_key)
        except BlobNotFoundError as exc:
            raise ModelIntegrityError(
                f"model {version}: weights missing ({weights_at})", location=weights_at
            ) from exc
        digest = _sha256(weights)
        if version_id(digest) != version:
            raise ModelIntegrityError(
                f"model {version}: weights at {weights_at} hash to {version_id(digest)}, not to the "
                f"version id (size {len(weights)} vs {manifest.get('size_bytes')} in the manifest): "
                "the weights were damaged or replaced",
                location=weights_at,
            )
        if (
            manifest.get("version") != version
            or manifest.get("sha256") != digest
            or manifest.get("size_bytes") != len(weights)
        ):
            raise ModelIntegrityError(
                f"model {version}: manifest {manifest_at} does not match the weights "
                f"(version {manifest.get('version')!r}, sha256 {str(manifest.get('sha256'))[:12]}…, "
                f"size {manifest.get('size_bytes')} vs {len(weights)})",
                location=manifest_at,
            )
        try:
            model = CompositionNet(ArchitectureConfig.from_dict(manifest["architecture"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelIntegrityError(
                f"model {version}: manifest {manifest_at} has no usable architecture ({exc!r})",
                location=manifest_at,
            ) from exc
        try:
            model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelIntegrityError(
                f"model {version}: weights at {weights_at} do not fit the manifest's architecture ({exc})",
                location=weights_at,
            ) from exc
        try:
            looks_exponent(manifest)
        except ValueError as exc:
            raise ModelIntegrityError(
                f"model {version}: manifest {manifest_at} has an unusable scoring section ({exc})",
                location=manifest_at,
            ) from exc
        model.eval()
        return model, manifest

    # -- champion pointer and history -------------------------------------------------------------

    def _read_record(self, key: str, what: str) -> dict[str, Any]:
        where = self.store.describe(key)
        raw = self.store.get_bytes(key)
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
            if not isinstance(record.get("version"), str) or not VERSION_PATTERN.fullmatch(record["version"]):
                raise ValueError(f"no valid 'version' (got {record.get('version')!r})")
            if not isinstance(record.get("promoted_at"), str):
                raise ValueError("no 'promoted_at'")
            _record_key(record)  # promoted_at must be an ISO timestamp
        except (ValueError, TypeError) as exc:
            raise CorruptRecordError(f"{what} {where} is unreadable ({exc})", location=where) from exc
        return record

    def champion(self) -> dict[str, Any] | None:
        """The champion pointer's record; None before the first promotion.

        Raises ``CorruptRecordError`` naming models/champion.json when the pointer is garbled.
        """
        try:
            return self._read_record(CHAMPION_KEY, "champion pointer")
        except BlobNotFoundError:
            return None
        except CorruptRecordError as exc:
            raise CorruptRecordError(f"{exc}; {RECOVERY_HINT}", location=exc.location) from exc

    def promote(self, version: str, reason: str) -> dict[str, Any]:
        """Point the champion at ``version`` (verified loadable first) and record the promotion.

        A garbled champion pointer does not stop this (it is how an operator repairs one): the record
        then says so, with ``previous`` None.
        """
        self.load(version)
        note = None
        try:
            previous = self.champion()
        except CorruptRecordError as exc:
            previous, note = None, f"replaced an unreadable champion pointer: {exc}"
        if previous is not None:
            self._ensure_recorded(previous)
        now = dt.datetime.now(dt.UTC)
        record = {
            "version": version,
            "previous": previous["version"] if previous else None,
            "promoted_at": now.isoformat(),
            "reason": reason,
        }
        if note:
            record["note"] = note
        body = json.dumps(record, indent=2).encode()
        # The pointer first: it is the commit point and carries the whole record, so the history can
        # always be completed from it (see the module docstring).
        self.store.put_bytes(CHAMPION_KEY, body)
        self.store.put_bytes(_record_key(record), body)
        return record

    def _ensure_recorded(self, pointer: dict[str, Any]) -> None:
        """Write the pointer's history record if a kill prevented it."""
        key = _record_key(pointer)
        if not self.store.exists(key):
            self.store.put_bytes(key, json.dumps(pointer, indent=2).encode())

    def promotions(self, problems: list[str] | None = None) -> list[dict[str, Any]]:
        """The promotion history, oldest first, consistent with the champion pointer.

        The pointer's own record is included even if a kill prevented writing it; records after it (a
        promotion interrupted before the pointer switched) are left out. An unreadable record or pointer
        raises ``CorruptRecordError``, or, given ``problems``, is named there and skipped.
        """
        records: dict[str, dict[str, Any]] = {}
        for key in self.store.list_keys(PROMOTIONS_PREFIX):
            if not key.endswith(".json"):
                continue
            try:
                records[key] = self._read_record(key, "promotion record")
            except CorruptRecordError as exc:
                if problems is None:
                    raise
                problems.append(f"{exc}; skipped")
            except BlobNotFoundError:
                continue  # deleted while listing
        try:
            pointer = self.champion()
        except CorruptRecordError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            pointer = None
        if pointer is not None:
            pointer_key = _record_key(pointer)
            records.setdefault(pointer_key, pointer)
            for key in [k for k in records if k > pointer_key]:
                record = records.pop(key)
                if problems is not None:
                    problems.append(
                        f"promotion record {self.store.describe(key)} (to {record['version']}) never took "
                        f"effect: the champion pointer names {pointer['version']}; left out"
                    )
        return [records[key] for key in sorted(records)]
