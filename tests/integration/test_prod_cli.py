"""`astromined model list | rollback | verify-package` with ASTROMINED_ENV=prod, against real S3 on loopback.

The production resources carry `dg.EnvVar`s; the CLI must resolve them the way a Dagster run does (they used
to crash outside Dagster). The lake is moto's S3 server; the registry and the uplink package in it are
written by the product's own code.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import torch
from support.services import aws_test_environment, moto_s3_server

from astromined import lake_layout
from astromined.features.engineering import MODEL_FEATURES
from astromined.ml.model import ArchitectureConfig, CompositionNet
from astromined.ml.registry import ModelRegistry
from astromined.ml.uplink import build_package, generate_private_key_pem, load_private_key, public_key_pem
from astromined.storage import S3BlobStore
from astromined.taxonomy import COMPLEXES

CLI = Path(sys.executable).parent / "astromined"
LAKE_BUCKET = "astromined-lake-prod"


def _model(seed: int) -> CompositionNet:
    torch.manual_seed(seed)
    return CompositionNet(ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES))


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    root = tmp_path_factory.mktemp("prod-cli")
    with aws_test_environment(), moto_s3_server(root) as url:
        client = boto3.client("s3", endpoint_url=url)
        client.create_bucket(Bucket=LAKE_BUCKET)
        store = S3BlobStore(client, LAKE_BUCKET, "lake")  # the prefix build_resources uses in prod
        registry = ModelRegistry(store)
        first = registry.register(_model(1), metrics={"validation_macro_f1": 0.91}, lineage={})
        second = registry.register(_model(2), metrics={"validation_macro_f1": 0.93}, lineage={})
        registry.promote(second, reason="test: the current champion")
        private = generate_private_key_pem()
        package, _manifest = build_package(
            {"model_int8.npz": b"weights"}, {"model_version": first}, load_private_key(private)
        )
        store.put_bytes(lake_layout.uplink_package(first), package)
        store.put_bytes(
            lake_layout.UPLINK_LATEST,
            json.dumps({"version": first, "package": lake_layout.uplink_package(first)}).encode(),
        )
        fleet_key = root / "fleet_public_key.pem"
        fleet_key.write_bytes(public_key_pem(load_private_key(private)))
        env = {
            **os.environ,
            "ASTROMINED_ENV": "prod",
            "ASTROMINED_STATE_DIR": str(root / "state"),
            "ASTROMINED_LAKE_BUCKET": LAKE_BUCKET,
            "ASTROMINED_LANDING_BUCKET": "astromined-landing-prod",
            "ASTROMINED_S3_ENDPOINT_URL": url,
            "ASTROMINED_FLEET_PUBLIC_KEY_PATH": str(fleet_key),
        }
        env.pop("DAGSTER_HOME", None)
        yield env, first, second, store


def _cli(env, *args):
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=300)


def test_model_list_in_prod(prod):
    env, first, second, _store = prod
    result = _cli(env, "model", "list")
    assert result.returncode == 0, result.stderr
    assert f"* {second}" in result.stdout and f"  {first}" in result.stdout


def test_model_rollback_and_verify_package_in_prod(prod):
    env, first, _second, store = prod
    rollback = _cli(env, "model", "rollback", first, "--reason", "prod drill")
    assert rollback.returncode == 0, rollback.stderr
    assert json.loads(store.get_bytes("models/champion.json"))["version"] == first
    verify = _cli(env, "model", "verify-package", first)
    assert verify.returncode == 0, verify.stderr
    assert f"package for {first} verifies" in verify.stdout


def test_an_unset_prod_variable_is_named(prod):
    env, *_ = prod
    without_bucket = {k: v for k, v in env.items() if k != "ASTROMINED_LAKE_BUCKET"}
    result = _cli(without_bucket, "model", "list")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "astromined: configuration error: ASTROMINED_LAKE_BUCKET is not set (resource lake)"
    )
