"""The Ed25519 key that signs uplink packages, and the fleet public key that packages are verified with.

Locally the private key is generated once (mode 0600) and the fleet public key written beside it, as if
the satellites had been loaded with it; in production the private key is a Secret mounted only into the
``uplink_package`` step's pod and the fleet public key a configured file (ConfigMap), the one the
satellites hold. A package is always verified with the fleet key, never with a key derived from the
signing key or stored beside the package: a ground key that does not match the fleet's fails the check.
"""

import os
import stat
import tempfile
from pathlib import Path

import dagster as dg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from astromined.environment import Environment, Settings
from astromined.ml.uplink import generate_private_key_pem, load_private_key, load_public_key, public_key_pem

FLEET_PUBLIC_KEY_ENV = "ASTROMINED_FLEET_PUBLIC_KEY_PATH"
FLEET_PUBLIC_KEY_FILE = "fleet_public_key.pem"
# Production: the ConfigMap astromined-fleet-public-key, mounted into the uplink step's pod.
PROD_FLEET_PUBLIC_KEY_PATH = "/etc/astromined/fleet/fleet_public_key.pem"
PROD_SIGNING_KEY_PATH = "/var/run/secrets/astromined/uplink_signing_key.pem"


class SigningKeyError(RuntimeError):
    """The signing key or the fleet public key is missing, unreadable or unsafe (the message names it)."""


def fleet_public_key_path(settings: Settings) -> Path:
    """Where the fleet public key is: $ASTROMINED_FLEET_PUBLIC_KEY_PATH (read by astromined.environment),
    else beside the local signing key (local) or the mounted ConfigMap (prod)."""
    if settings.fleet_public_key_override is not None:
        return settings.fleet_public_key_override
    if settings.environment is Environment.LOCAL:
        return settings.signing_key_path.parent / FLEET_PUBLIC_KEY_FILE
    return Path(PROD_FLEET_PUBLIC_KEY_PATH)


def _write_new_file(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` and ``mode`` unless it exists; never a partly written file (a temp
    file hard-linked into place). Returns whether this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another step created it first
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def check_private_key_permissions(path: Path) -> None:
    """Refuse a private key that group or others may read or write (the fix is in the message)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(
            f"uplink signing key {path} has mode {mode:04o}: group/others may access it; "
            f"refusing to sign. Fix: chmod 600 {path}"
        )


class UplinkSigningKeyResource(dg.ConfigurableResource):
    private_key_path: str
    # The public key the satellites hold: packages are verified with it (never with the signing key's own).
    fleet_public_key_path: str
    create_if_missing: bool = False

    def private_key(self) -> Ed25519PrivateKey:
        path = Path(self.private_key_path)
        if not path.exists():
            if not self.create_if_missing:
                raise SigningKeyError(
                    f"uplink signing key not found at {path}; mount the secret there (see docs/operations.md)"
                )
            pem = generate_private_key_pem()
            if _write_new_file(path, pem, 0o600) and self._fleet_key_beside_signing_key():
                # The local fleet is "loaded" with the new key: its public half, written after the key.
                _write_new_file(self._fleet_path(), public_key_pem(load_private_key(pem)), 0o644)
        check_private_key_permissions(path)
        try:
            return load_private_key(path.read_bytes())
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(
                f"uplink signing key {path} is not an Ed25519 PEM private key: {exc}"
            ) from exc

    def public_key_pem(self) -> bytes:
        """The signing key's own public half (what the fleet key must equal for packages to verify)."""
        return public_key_pem(self.private_key())

    def _fleet_path(self) -> Path:
        return Path(self.fleet_public_key_path)

    def _fleet_key_beside_signing_key(self) -> bool:
        """Local default layout: the fleet key is created with the signing key (never at a path configured
        elsewhere, which must hold the satellites' real key)."""
        return self.create_if_missing and self._fleet_path() == (
            Path(self.private_key_path).parent / FLEET_PUBLIC_KEY_FILE
        )

    def fleet_public_key_pem(self) -> bytes:
        """The fleet public key, as the satellites hold it."""
        path = self._fleet_path()
        if not path.exists() and self._fleet_key_beside_signing_key():
            # Local: creating the signing key writes the fleet key beside it. State from before that (or
            # a kill between the two writes): the local fleet gets the local key's public half.
            own = self.public_key_pem()
            if not path.exists():
                _write_new_file(path, own, 0o644)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise SigningKeyError(
                f"fleet public key not found at {path}; mount the satellites' public key there or set "
                f"{FLEET_PUBLIC_KEY_ENV} (see docs/operations.md)"
            ) from None
        load_public_key(pem, source=f"fleet public key {path}")
        return pem
