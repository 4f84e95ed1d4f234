"""The champion's uplink package (ml/uplink.py): what its manifest says, the blocking checks before it is
published, and latest.json. The package format and its verification are in test_uplink.py."""

from __future__ import annotations

import hashlib
import math

import pytest

from astromined.ml.uplink import (
    MODEL_MEMBER,
    QUANTIZATION,
    build_model_package,
    check_package,
    generate_private_key_pem,
    latest_record,
    load_private_key,
    model_package_metadata,
    open_package,
    public_key_fingerprint,
    public_key_pem,
)

VERSION = "m-0123456789ab"
MODEL_MANIFEST = {
    "version": VERSION,
    "architecture": {"classes": ["S", "C", "M"], "feature_names": ["a", "b"], "hidden": 8},
    "metrics": {"validation_macro_f1": 0.8, "validation_accuracy": 0.9},
    "lineage": {
        "training_partitions": ["2031-01-01", "2031-01-02"],
        "calibration_versions": {"2031-01-01": "cal-2", "2031-01-02": "cal-1", "2031-01-03": "cal-2"},
    },
}
GOOD_PARITY = {"top1_agreement": 1.0, "max_probability_error": 0.01}
NPZ = b"int8 arrays stand-in"


@pytest.fixture(scope="module")
def key():
    return load_private_key(generate_private_key_pem())


@pytest.fixture(scope="module")
def fleet_key(key) -> bytes:
    return public_key_pem(key)


def test_metadata_names_the_model_its_classes_features_and_calibration_versions():
    assert model_package_metadata(VERSION, MODEL_MANIFEST) == {
        "model_version": VERSION,
        "classes": ["S", "C", "M"],
        "feature_names": ["a", "b"],
        "quantization": QUANTIZATION,
        "holdout_metrics": {"validation_macro_f1": 0.8, "validation_accuracy": 0.9},
        "calibration_versions": ["cal-1", "cal-2"],  # each table once, sorted
    }


def test_metadata_of_a_model_registered_before_calibration_lineage():
    old = {k: v for k, v in MODEL_MANIFEST.items() if k != "lineage"}
    assert model_package_metadata(VERSION, old)["calibration_versions"] == []


def test_model_package_opens_with_the_fleet_key(key, fleet_key):
    package, manifest = build_model_package(NPZ, VERSION, MODEL_MANIFEST, key)
    opened, files = open_package(package, fleet_key, model_version=VERSION)
    assert opened == manifest
    assert files == {MODEL_MEMBER: NPZ}
    assert {k: manifest[k] for k in model_package_metadata(VERSION, MODEL_MANIFEST)} == (
        model_package_metadata(VERSION, MODEL_MANIFEST)
    )


def test_a_good_package_passes_every_check(key, fleet_key):
    package, _ = build_model_package(NPZ, VERSION, MODEL_MANIFEST, key)
    checks = check_package(
        package, fleet_key, VERSION, GOOD_PARITY, max_bytes=len(package), min_top1_agreement=0.99
    )
    assert (checks.verified, checks.size_ok, checks.parity_ok, checks.passed) == (True, True, True, True)
    assert (
        checks.verification
        == f"signature verifies with the fleet public key {public_key_fingerprint(fleet_key)}"
    )
    assert checks.size_bytes == len(package)
    assert checks.failures == ""


def test_each_failed_check_is_named_in_the_failure_line(key):
    other_fleet = public_key_pem(load_private_key(generate_private_key_pem()))
    package, _ = build_model_package(NPZ, VERSION, MODEL_MANIFEST, key)
    parity = {"top1_agreement": 0.95, "max_probability_error": 0.2}
    checks = check_package(package, other_fleet, VERSION, parity, max_bytes=1024, min_top1_agreement=0.99)
    assert (checks.verified, checks.size_ok, checks.parity_ok, checks.passed) == (False, False, False, False)
    reasons = checks.failures.split("; ")
    assert reasons == [
        checks.verification,
        f"{len(package)} bytes > budget 1024",
        "int8 top-1 agreement 0.9500 < 0.99",
    ]
    assert "signature" in checks.verification


def test_a_package_for_another_version_does_not_verify(key, fleet_key):
    package, _ = build_model_package(NPZ, VERSION, MODEL_MANIFEST, key)
    checks = check_package(
        package, fleet_key, "m-ffffffffffff", GOOD_PARITY, max_bytes=1 << 20, min_top1_agreement=0.99
    )
    assert not checks.verified and checks.size_ok and checks.parity_ok
    assert checks.failures == checks.verification


def test_nan_parity_fails_the_parity_check(key, fleet_key):
    package, _ = build_model_package(NPZ, VERSION, MODEL_MANIFEST, key)
    parity = {"top1_agreement": math.nan, "max_probability_error": math.nan}
    checks = check_package(package, fleet_key, VERSION, parity, max_bytes=1 << 20, min_top1_agreement=0.99)
    assert not checks.parity_ok and not checks.passed


def test_latest_record_points_at_the_published_package():
    package = b"published bytes"
    assert latest_record(
        VERSION, "uplink/m-0123456789ab/package.tar", package, "sha256:ab", "2031-01-03"
    ) == {
        "version": VERSION,
        "package": "uplink/m-0123456789ab/package.tar",
        "size_bytes": len(package),
        "sha256": hashlib.sha256(package).hexdigest(),
        "fleet_public_key": "sha256:ab",
        "created_at": "2031-01-03",
    }
