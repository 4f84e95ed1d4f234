"""uplink_package publishes only a package that passed every blocking check, verified with the fleet key.

One tiny lake is built once for the module (telemetry → features → training set → candidate, the candidate
made champion directly so these tests do not depend on the promotion gate), then uplink_package runs
alone against it: failing checks, a foreign fleet key, a SIGKILL between staging and publishing, and the
operator's `astromined model verify-package`.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

import assets.features
import assets.models
import assets.readiness
import assets.telemetry
import assets.uplink
from astromined import lake_layout
from astromined.environment import load_settings
from astromined.ml.registry import ModelRegistry
from astromined.ml.uplink import (
    build_package,
    generate_private_key_pem,
    load_private_key,
    public_key_pem,
    verify_package,
)
from resources import build_resources
from resources.signing import UplinkSigningKeyResource

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-06-01"
UPLINK = assets.uplink.uplink_package


class Lake:
    def __init__(self, root: Path):
        self.env = {"ASTROMINED_STATE_DIR": str(root / "state"), "ASTROMINED_SCALE": "tiny"}
        self.settings = load_settings(self.env)
        self.resources = build_resources(self.settings)
        self.store = self.resources["lake"].store()
        self.home = root / "dagster_home"
        self.home.mkdir()
        self.instance = dg.DagsterInstance.local_temp(tempdir=str(self.home))
        self.version = ""

    def uplink(self, run_config: dict | None = None, resources: dict | None = None):
        return dg.materialize(
            [UPLINK],
            resources={**self.resources, **(resources or {})},
            instance=self.instance,
            run_config=run_config or {},
            raise_on_error=False,
        )

    def published(self) -> dict[str, bytes]:
        """Every published object under uplink/ (staging included), by key."""
        return {key: self.store.get_bytes(key) for key in self.store.list_keys("uplink/")}

    def staging(self) -> list[Path]:
        root = self.store.path(lake_layout.UPLINK_STAGING_PREFIX.rstrip("/"))
        return sorted(root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("uplink"))
    selection = [
        assets.readiness.infrastructure_readiness,
        assets.telemetry.raw_telemetry,
        *assets.features.defs.assets,
        assets.models.candidate_model,
    ]
    result = dg.materialize(selection, partition_key=DAY, resources=lake.resources, instance=lake.instance)
    assert result.success
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("candidate_model")
    ]
    lake.version = event.materialization.metadata["version"].value
    ModelRegistry(lake.store).promote(lake.version, reason="test: champion for the uplink tests")
    first = lake.uplink()
    assert first.success
    yield lake
    lake.instance.dispose()


def check_results(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def uplink_materializations(result) -> list:
    return [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("uplink_package")
    ]


def test_published_package_verifies_with_the_fleet_key_and_latest_json_comes_last(lake, monkeypatch):
    from astromined.storage import LocalBlobStore

    writes: list[str] = []
    put_bytes = LocalBlobStore.put_bytes

    def recording(self, key, data):
        writes.append(key)
        return put_bytes(self, key, data)

    monkeypatch.setattr(LocalBlobStore, "put_bytes", recording)
    # A new signature is made when no published package of this version verifies (here: none at all).
    lake.store.delete(lake_layout.uplink_package(lake.version))
    result = lake.uplink()
    assert result.success
    staging = lake_layout.uplink_staging_package(result.run_id)
    published = lake_layout.uplink_package(lake.version)
    assert [k for k in writes if k.startswith("uplink/")] == [staging, published, lake_layout.UPLINK_LATEST]
    assert lake.staging() == []

    fleet_key_path = lake.settings.signing_key_path.parent / "fleet_public_key.pem"
    package = lake.store.get_bytes(published)
    manifest = verify_package(package, fleet_key_path.read_bytes(), model_version=lake.version)
    latest = json.loads(lake.store.get_bytes(lake_layout.UPLINK_LATEST))
    assert latest["version"] == lake.version and latest["package"] == published
    assert latest["size_bytes"] == len(package) and latest["created_at"] == manifest["created_at"]
    import hashlib

    assert latest["sha256"] == hashlib.sha256(package).hexdigest()
    # No key is published beside the package (nothing for a verifier to trust by mistake).
    assert sorted(lake.published()) == [lake_layout.UPLINK_LATEST, published]
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert stat.S_IMODE(lake.settings.signing_key_path.stat().st_mode) == 0o600

    # A re-run keeps the package that verifies: the very bytes checked before, latest.json unchanged.
    before = lake.published()
    again = lake.uplink()
    assert again.success and lake.published() == before
    [event] = uplink_materializations(again)
    assert event.materialization.metadata["reused_published_package"].value is True


def foreign_fleet_key(lake: Lake, tmp_path: Path) -> dict:
    other = tmp_path / "other_fleet_public_key.pem"
    other.write_bytes(public_key_pem(load_private_key(generate_private_key_pem())))
    key = UplinkSigningKeyResource(
        private_key_path=str(lake.settings.signing_key_path),
        fleet_public_key_path=str(other),
        create_if_missing=False,
    )
    return {"signing_key": key}


FAILING = {
    "over the size budget": (
        {"ops": {"uplink_package": {"config": {"max_package_bytes": 1024}}}},
        None,
        "within_size_budget",
    ),
    "int8 parity below the threshold": (
        {"ops": {"uplink_package": {"config": {"min_top1_agreement": 1.01}}}},
        None,
        "int8_parity",
    ),
    "signed with a key the fleet does not hold": ({}, foreign_fleet_key, "signature_verifies"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
@pytest.mark.fault("bad-input", "uplink package failing a blocking check (size, int8 parity, fleet key)")
def test_failing_blocking_check_publishes_nothing(lake, tmp_path, case):
    run_config, resources, failing = FAILING[case]
    # Force a new build: the published package of this version would otherwise be kept as is.
    before = lake.published()
    lake.store.delete(lake_layout.uplink_package(lake.version))
    previous_package = before[lake_layout.uplink_package(lake.version)]
    try:
        result = lake.uplink(run_config, resources(lake, tmp_path) if resources else None)
        assert not result.success
        checks = check_results(result)
        assert set(checks) == {"signature_verifies", "within_size_budget", "int8_parity"}
        assert not checks[failing].passed
        assert all(c.passed for name, c in checks.items() if name != failing)
        if failing == "within_size_budget":
            assert checks[failing].metadata["budget_bytes"].value == 1024
            assert checks[failing].metadata["size_bytes"].value > 1024
        if failing == "int8_parity":
            assert checks[failing].metadata["min_top1_agreement"].value == 1.01
        if failing == "signature_verifies":
            assert "fleet public key" in checks[failing].description
        assert uplink_materializations(result) == []
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        message = failure.step_failure_data.error.message
        assert "NOT published" in message and failing in message and lake.version in message
        assert lake.staging() == []
        # Nothing under uplink/ was written: latest.json unchanged, no package at all for this version.
        expected = {k: v for k, v in before.items() if k != lake_layout.uplink_package(lake.version)}
        assert lake.published() == expected
    finally:
        lake.store.put_bytes(lake_layout.uplink_package(lake.version), previous_package)
    assert lake.published() == before


@pytest.mark.fault("bad-input", "blocking check fails while a valid package of the version is published")
def test_failing_check_leaves_the_published_package_of_the_version_alone(lake):
    before = lake.published()
    result = lake.uplink({"ops": {"uplink_package": {"config": {"max_package_bytes": 1024}}}})
    assert not result.success
    assert not check_results(result)["within_size_budget"].passed
    assert lake.published() == before


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    import assets.uplink
    import astromined.ml.uplink
    from astromined.environment import load_settings
    from resources import build_resources

    def killed(*args, **kwargs):  # the package is staged; SIGKILL before any check or publish
        os.kill(os.getpid(), signal.SIGKILL)

    astromined.ml.uplink.verify_package = killed  # the first check (check_package) verifies the signature
    settings = load_settings({"ASTROMINED_STATE_DIR": sys.argv[1], "ASTROMINED_SCALE": "tiny"})
    instance = dg.DagsterInstance.local_temp(tempdir=sys.argv[2])
    # Force a new build (a valid published package of the version would be kept without staging).
    resources = build_resources(settings)
    store = resources["lake"].store()
    store.delete(sys.argv[3])
    dg.materialize([assets.uplink.uplink_package], resources=resources, instance=instance)
    """
)


@pytest.mark.fault("kill", "SIGKILL between staging and publishing the uplink package")
def test_kill_after_staging_keeps_the_previous_package_and_the_next_run_cleans_up(lake):
    published = lake_layout.uplink_package(lake.version)
    before = lake.published()
    latest_before = before[lake_layout.UPLINK_LATEST]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, lake.env["ASTROMINED_STATE_DIR"], str(lake.home), published],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    [killed] = lake.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    staged = lake_layout.uplink_staging_package(killed.run_id)
    assert lake.store.exists(staged)  # killed after staging, before any check
    # latest.json untouched; the killed run deleted the version's package itself (to force a build), so
    # latest.json's package is missing until the next run: restore it as a previous run left it.
    assert lake.store.get_bytes(lake_layout.UPLINK_LATEST) == latest_before
    lake.store.put_bytes(published, before[published])

    # While the killed run still reads as STARTED its staging folder is left alone (it could be alive)...
    assert lake.uplink().success
    assert lake.store.exists(staged)
    # ...once run monitoring marks it failed, the next run removes it.
    lake.instance.report_run_failed(killed)
    result = lake.uplink()
    assert result.success
    assert lake.staging() == []
    assert not any(k.startswith(lake_layout.UPLINK_STAGING_PREFIX) for k in lake.store.list_keys("uplink/"))
    assert lake.published() == before


@pytest.mark.fault("kill", "orphaned staging folder (with a temp file) of a run unknown to the instance")
def test_orphaned_staging_of_an_unknown_run_is_removed(lake):
    orphan = lake.store.path(lake_layout.uplink_staging_package("not-a-run-of-this-instance"))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a package")
    (orphan.parent / ".package.tar.x1y2.tmp").write_bytes(b"half a write")
    assert lake.uplink().success
    assert lake.staging() == []


def astromined_cli(lake: Lake, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("ASTROMINED_ENV", "DAGSTER_HOME")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "astromined"), *args],
        cwd=REPO,
        env={**environ, **lake.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_verify_package_cli_uses_the_fleet_key(lake):
    verified = astromined_cli(lake, "model", "verify-package")
    assert verified.returncode == 0, verified.stderr
    assert f"package for {lake.version} verifies with the fleet public key sha256:" in verified.stdout


@pytest.mark.fault("tamper", "package re-signed by an attacker, with the attacker's public key beside it")
def test_verify_package_cli_ignores_a_key_stored_beside_the_package(lake):
    published = lake_layout.uplink_package(lake.version)
    before = lake.published()
    attacker = load_private_key(generate_private_key_pem())
    forged, _ = build_package({"model_int8.npz": b"evil"}, {"model_version": lake.version}, attacker)
    try:
        lake.store.put_bytes(published, forged)
        # The old layout kept a public key beside each package: a verifier trusting it would pass this.
        lake.store.put_bytes(f"uplink/{lake.version}/signing_key.pub.pem", public_key_pem(attacker))
        refused = astromined_cli(lake, "model", "verify-package", lake.version)
        assert refused.returncode == 1
        assert f"package for {lake.version} FAILS verification" in refused.stderr
        assert "signature does not verify with the fleet public key" in refused.stderr
    finally:
        lake.store.delete(f"uplink/{lake.version}/signing_key.pub.pem")
        lake.store.put_bytes(published, before[published])


@pytest.mark.fault("tamper", "older signed package replayed under a newer version's name")
def test_verify_package_cli_rejects_a_package_replayed_under_another_version(lake):
    replayed_as = "m-ffffffffffff"
    key = f"uplink/{replayed_as}/package.tar"
    try:
        lake.store.put_bytes(key, lake.store.get_bytes(lake_layout.uplink_package(lake.version)))
        refused = astromined_cli(lake, "model", "verify-package", replayed_as)
        assert refused.returncode == 1
        assert f"is for model version '{lake.version}', not the requested '{replayed_as}'" in refused.stderr
    finally:
        lake.store.delete(key)


@pytest.mark.fault("bad-config", "fleet public key path configured but missing")
def test_verify_package_cli_names_a_missing_fleet_key(lake, tmp_path):
    missing = tmp_path / "nowhere" / "fleet.pem"
    refused = astromined_cli(
        lake, "model", "verify-package", env={"ASTROMINED_FLEET_PUBLIC_KEY_PATH": str(missing)}
    )
    assert refused.returncode == 2
    assert str(missing) in refused.stderr and "ASTROMINED_FLEET_PUBLIC_KEY_PATH" in refused.stderr
    assert "Traceback" not in refused.stderr
