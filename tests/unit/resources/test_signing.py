"""The uplink signing key resource: permissions, creation, and the fleet public key it verifies with."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from astromined.environment import load_settings
from astromined.ml.uplink import (
    PackageVerificationError,
    generate_private_key_pem,
    load_private_key,
    public_key_pem,
)
from resources.signing import (
    FLEET_PUBLIC_KEY_ENV,
    PROD_FLEET_PUBLIC_KEY_PATH,
    SigningKeyError,
    UplinkSigningKeyResource,
    fleet_public_key_path,
)


def local_resource(tmp_path: Path) -> UplinkSigningKeyResource:
    secrets = tmp_path / "secrets"
    return UplinkSigningKeyResource(
        private_key_path=str(secrets / "uplink_signing_key.pem"),
        fleet_public_key_path=str(secrets / "fleet_public_key.pem"),
        create_if_missing=True,
    )


def test_local_key_is_created_0600_with_the_fleet_key_beside_it(tmp_path):
    resource = local_resource(tmp_path)
    key = resource.private_key()
    private, fleet = Path(resource.private_key_path), Path(resource.fleet_public_key_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert fleet.read_bytes() == public_key_pem(key) == resource.fleet_public_key_pem()
    # Created once: the same key on every call, no temp files left.
    assert public_key_pem(resource.private_key()) == public_key_pem(key)
    assert sorted(p.name for p in private.parent.iterdir()) == [
        "fleet_public_key.pem",
        "uplink_signing_key.pem",
    ]


@pytest.mark.fault("kill", "killed between writing the local signing key and its fleet public key")
def test_local_fleet_key_missing_beside_an_existing_key_is_rewritten(tmp_path):
    resource = local_resource(tmp_path)
    key = resource.private_key()
    Path(resource.fleet_public_key_path).unlink()
    assert resource.fleet_public_key_pem() == public_key_pem(key)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666])
@pytest.mark.fault("bad-config", "signing key readable or writable by group/others")
def test_world_or_group_accessible_signing_key_is_refused(tmp_path, mode):
    resource = local_resource(tmp_path)
    resource.private_key()
    path = Path(resource.private_key_path)
    path.chmod(mode)
    with pytest.raises(SigningKeyError) as refused:
        resource.private_key()
    message = str(refused.value)
    assert str(path) in message and f"{mode:04o}" in message and f"chmod 600 {path}" in message
    path.chmod(0o400)  # the production Secret's defaultMode is accepted
    assert resource.private_key()


@pytest.mark.fault("bad-config", "production signing key not mounted")
def test_missing_production_key_names_the_path(tmp_path):
    resource = UplinkSigningKeyResource(
        private_key_path=str(tmp_path / "absent.pem"), fleet_public_key_path=str(tmp_path / "fleet.pem")
    )
    with pytest.raises(SigningKeyError, match=r"absent\.pem; mount the secret"):
        resource.private_key()
    assert not (tmp_path / "absent.pem").exists()


@pytest.mark.fault("bad-config", "fleet public key not mounted")
def test_missing_fleet_key_is_never_derived_from_the_signing_key_at_a_configured_path(tmp_path):
    """Only the local default layout creates the fleet key; a configured path must hold the satellites'."""
    resource = local_resource(tmp_path)
    resource.private_key()
    elsewhere = tmp_path / "configmap" / "fleet_public_key.pem"
    configured = resource.model_copy(update={"fleet_public_key_path": str(elsewhere)})
    with pytest.raises(SigningKeyError, match=rf"{elsewhere}.*{FLEET_PUBLIC_KEY_ENV}"):
        configured.fleet_public_key_pem()
    assert not elsewhere.exists()


@pytest.mark.fault("bad-config", "fleet public key file that is not an Ed25519 PEM key")
def test_fleet_key_that_is_not_a_key_names_the_file(tmp_path):
    bad = tmp_path / "fleet.pem"
    bad.write_bytes(generate_private_key_pem())  # a private key where the public one belongs
    resource = UplinkSigningKeyResource(
        private_key_path=str(tmp_path / "k.pem"), fleet_public_key_path=str(bad)
    )
    with pytest.raises(PackageVerificationError, match=rf"fleet public key {bad}"):
        resource.fleet_public_key_pem()


def test_fleet_key_is_what_the_satellites_hold_not_the_signing_keys_own(tmp_path):
    resource = local_resource(tmp_path)
    resource.private_key()
    satellites = public_key_pem(load_private_key(generate_private_key_pem()))
    Path(resource.fleet_public_key_path).write_bytes(satellites)
    assert resource.fleet_public_key_pem() == satellites != resource.public_key_pem()


def test_fleet_key_path_per_environment(tmp_path):
    local = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path)})
    assert fleet_public_key_path(local) == local.signing_key_path.parent / "fleet_public_key.pem"
    prod = load_settings({"ASTROMINED_ENV": "prod", "ASTROMINED_STATE_DIR": str(tmp_path)})
    assert fleet_public_key_path(prod) == Path(PROD_FLEET_PUBLIC_KEY_PATH)
    override = {FLEET_PUBLIC_KEY_ENV: "/mnt/fleet/key.pem", "ASTROMINED_STATE_DIR": str(tmp_path)}
    assert (
        fleet_public_key_path(load_settings({**override, "ASTROMINED_ENV": "prod"}))
        == fleet_public_key_path(load_settings(override))
        == Path("/mnt/fleet/key.pem")
    )
