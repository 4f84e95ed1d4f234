"""The Ed25519 key that signs uplink packages. Locally generated once; in production a mounted secret."""

import os
from pathlib import Path

import dagster as dg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from astromined.ml.uplink import generate_private_key_pem, load_private_key, public_key_pem


class UplinkSigningKeyResource(dg.ConfigurableResource):
    private_key_path: str
    create_if_missing: bool = False

    def private_key(self) -> Ed25519PrivateKey:
        path = Path(self.private_key_path)
        if not path.exists():
            if not self.create_if_missing:
                raise FileNotFoundError(
                    f"uplink signing key not found at {path}; mount the secret there (see docs/operations.md)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another step created it first
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(generate_private_key_pem())
        return load_private_key(path.read_bytes())

    def public_key_pem(self) -> bytes:
        return public_key_pem(self.private_key())
