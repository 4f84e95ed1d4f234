"""uplink_package: the champion, quantized to int8, checked for parity, signed for the fleet.

The package is built in staging (``uplink/staging/<run id>/``) and checked there: its signature with
the fleet public key (as a satellite verifies it), its size and the int8 model's parity with the float
one. Only when every check passes is it published: the package under ``uplink/<version>/``, then
``uplink/latest.json``. A failing check publishes nothing, so the previous package and latest.json stay
valid; staging objects of runs that died are removed by the next run.
"""

import datetime as dt
import json
import shutil
from pathlib import PurePosixPath

import dagster as dg

from assets.telemetry import NEWEST_DOWNLINK_LANDED_AT
from astromined import lake_layout
from astromined.ml.dataset import split_arrays
from astromined.ml.quantize import parity, quantize, to_npz_bytes
from astromined.ml.registry import ModelRegistry
from astromined.ml.uplink import (
    PackageChecks,
    PackageVerificationError,
    build_model_package,
    check_package,
    latest_record,
    public_key_fingerprint,
    verify_package,
)
from astromined.storage import BlobStore, LocalBlobStore, read_parquet
from resources import LakeResource, UplinkSigningKeyResource
from resources.signing import PROD_FLEET_PUBLIC_KEY_PATH, PROD_SIGNING_KEY_PATH

SIGNATURE_VERIFIES = "signature_verifies"
SIZE_BUDGET = "within_size_budget"
INT8_PARITY = "int8_parity"


def newest_downlink_landed_at(instance: dg.DagsterInstance, partitions: list[str]) -> float | None:
    """When the newest downlink file of the model's newest training partition landed, as recorded by
    that partition's latest raw_telemetry materialization; None when it is not recorded."""
    if not partitions:
        return None
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_telemetry"), asset_partitions=[max(partitions)]),
        limit=1,
    )
    if not result.records:
        return None
    landed = result.records[0].asset_materialization.metadata.get(NEWEST_DOWNLINK_LANDED_AT)
    return None if landed is None else float(landed.value)


class UplinkConfig(dg.Config):
    max_package_bytes: int = 256 * 1024
    min_top1_agreement: float = 0.99


SIGNING_KEY_VOLUME = "uplink-signing-key"
FLEET_PUBLIC_KEY_VOLUME = "fleet-public-key"
SIGNING_KEY_SECRET = "astromined-uplink-signing-key"
FLEET_PUBLIC_KEY_CONFIG_MAP = "astromined-fleet-public-key"

# The signing key Secret is mounted into this step's pod only (never into the run worker or the other
# steps), and the step never leaves the on-prem site ("astromined/site": "onprem": the multi-cluster
# executor waits rather than sending it to the cloud). Mode 0400: resources/signing.py refuses a key
# that group/others can read.
UPLINK_STEP_TAGS = {
    "astromined/site": "onprem",
    "dagster-k8s/config": {
        "pod_spec_config": {
            "volumes": [
                {
                    "name": SIGNING_KEY_VOLUME,
                    "secret": {"secret_name": SIGNING_KEY_SECRET, "default_mode": 0o400},
                },
                {"name": FLEET_PUBLIC_KEY_VOLUME, "config_map": {"name": FLEET_PUBLIC_KEY_CONFIG_MAP}},
            ]
        },
        "container_config": {
            "volume_mounts": [
                {
                    "name": SIGNING_KEY_VOLUME,
                    "mount_path": str(PurePosixPath(PROD_SIGNING_KEY_PATH).parent),
                    "read_only": True,
                },
                {
                    "name": FLEET_PUBLIC_KEY_VOLUME,
                    "mount_path": str(PurePosixPath(PROD_FLEET_PUBLIC_KEY_PATH).parent),
                    "read_only": True,
                },
            ]
        },
    },
}


def remove_stale_staging(store: BlobStore, instance: dg.DagsterInstance, current_run_id: str) -> list[str]:
    """Delete the staging objects of runs that are no longer in progress (killed, failed, finished, or
    unknown to this instance); returns the run ids cleaned up. A run still in progress keeps its own."""
    stale: set[str] = set()
    for key in store.list_keys(lake_layout.UPLINK_STAGING_PREFIX):
        run_id = lake_layout.uplink_staging_run_id(key)
        if run_id == current_run_id:
            continue
        run = instance.get_run_by_id(run_id) if run_id else None
        if run is None or run.is_finished:
            store.delete(key)
            stale.add(run_id or key)
    if isinstance(store, LocalBlobStore):
        # Local folders of dead runs, including the hidden temp files of a write killed midway.
        staging_root = store.path(lake_layout.UPLINK_STAGING_PREFIX.rstrip("/"))
        if staging_root.is_dir():
            for folder in staging_root.iterdir():
                if folder.name == current_run_id or not folder.is_dir():
                    continue
                run = instance.get_run_by_id(folder.name)
                if run is None or run.is_finished:
                    shutil.rmtree(folder, ignore_errors=True)
                    stale.add(folder.name)
    return sorted(stale)


@dg.asset(
    group_name="uplink",
    deps=["champion_model"],
    op_tags=UPLINK_STEP_TAGS,
    check_specs=[
        dg.AssetCheckSpec(SIGNATURE_VERIFIES, asset="uplink_package", blocking=True),
        dg.AssetCheckSpec(SIZE_BUDGET, asset="uplink_package", blocking=True),
        dg.AssetCheckSpec(INT8_PARITY, asset="uplink_package", blocking=True),
    ],
    description="Signed tar of the int8 champion for uplink; verified with the fleet key as the satellites "
    "verify it, published only when every check passes.",
)
def uplink_package(
    context: dg.AssetExecutionContext,
    config: UplinkConfig,
    lake: LakeResource,
    signing_key: UplinkSigningKeyResource,
):
    store = lake.store()
    cleaned = remove_stale_staging(store, context.instance, context.run.run_id)
    if cleaned:
        context.log.info(f"removed uplink staging objects left by runs no longer in progress: {cleaned}")
    registry = ModelRegistry(store)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure("no champion model to package")
    version = champion["version"]
    model, manifest = registry.load(version)
    arrays = quantize(model)
    holdout = split_arrays(read_parquet(store, lake_layout.TRAINING_SET), "holdout")
    agreement = parity(model, arrays, holdout.x)

    fleet_key = signing_key.fleet_public_key_pem()
    fleet_fingerprint = public_key_fingerprint(fleet_key)
    published_key = lake_layout.uplink_package(version)
    staging_key = lake_layout.uplink_staging_package(context.run.run_id)
    try:
        # The package already published for this version is kept when it still verifies with the fleet key
        # (a re-run or a rollback re-uplinks the very bytes checked before); otherwise build and sign anew.
        reused = _published_package_that_verifies(store, published_key, fleet_key, version)
        if reused is not None:
            candidate, package_manifest = reused
            context.log.info(f"{store.describe(published_key)} verifies with the fleet key: kept as is")
        else:
            package, package_manifest = build_model_package(
                to_npz_bytes(arrays), version, manifest, signing_key.private_key()
            )
            store.put_bytes(staging_key, package)
            candidate = store.get_bytes(staging_key)
        verdict = check_package(
            candidate,
            fleet_key,
            version,
            agreement,
            max_bytes=config.max_package_bytes,
            min_top1_agreement=config.min_top1_agreement,
        )
        checks = _check_results(verdict, fleet_fingerprint, version)
        failed = [check.check_name for check in checks if not check.passed]
        if failed:
            yield from checks
            raise dg.Failure(
                description=f"uplink package for {version} NOT published: blocking check(s) {failed} failed"
                f" ({verdict.failures}); {store.describe(lake_layout.UPLINK_LATEST)} still points to "
                f"{_latest_version(store) or 'no package'}",
                metadata={"failed_checks": failed, "model_version": version},
            )
        # Publish: the package first, latest.json last (a reader of latest.json finds a complete package).
        if reused is None:
            store.put_bytes(published_key, candidate)
        record = latest_record(
            version, published_key, candidate, fleet_fingerprint, package_manifest["created_at"]
        )
        store.put_bytes(lake_layout.UPLINK_LATEST, json.dumps(record).encode())
    finally:
        _remove_staging(store, staging_key)
    context.log.info(
        f"uplink package for {version}: {len(candidate)} bytes published at {store.describe(published_key)}"
    )
    signed_at = dt.datetime.fromisoformat(package_manifest["created_at"]).timestamp()
    training_partitions = list(manifest.get("lineage", {}).get("training_partitions", []))
    landed_at = newest_downlink_landed_at(context.instance, training_partitions)
    latency = {}
    if landed_at is None:
        context.log.warning(
            "no newest_downlink_landed_at recorded for the champion's newest training partition "
            f"{max(training_partitions, default='(none)')}: data_to_model_latency_s not reported"
        )
    else:
        latency = {"data_to_model_latency_s": round(max(signed_at - landed_at, 0.0), 3)}
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(store.describe(published_key)),
            "model_version": version,
            "size_bytes": len(candidate),
            "top1_agreement_int8": agreement["top1_agreement"],
            "max_probability_error_int8": agreement["max_probability_error"],
            "signed_at": dg.MetadataValue.timestamp(signed_at),
            "fleet_public_key": fleet_fingerprint,
            "reused_published_package": reused is not None,
            **latency,
        }
    )
    yield from checks


def _remove_staging(store: BlobStore, staging_key: str) -> None:
    store.delete(staging_key)
    if isinstance(store, LocalBlobStore):  # the run's now empty folder (object stores have none)
        shutil.rmtree(store.path(staging_key).parent, ignore_errors=True)


def _published_package_that_verifies(
    store: BlobStore, key: str, fleet_key: bytes, version: str
) -> tuple[bytes, dict] | None:
    if not store.exists(key):
        return None
    package = store.get_bytes(key)
    try:
        return package, verify_package(package, fleet_key, model_version=version)
    except PackageVerificationError:
        return None


def _latest_version(store: BlobStore) -> str | None:
    try:
        return json.loads(store.get_bytes(lake_layout.UPLINK_LATEST)).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def _check_results(verdict: PackageChecks, fleet_fingerprint: str, version: str) -> list[dg.AssetCheckResult]:
    """The blocking checks on the package as stored in staging, as Dagster records them."""
    return [
        dg.AssetCheckResult(
            check_name=SIGNATURE_VERIFIES,
            passed=verdict.verified,
            description=verdict.verification,
            metadata={"fleet_public_key": fleet_fingerprint, "model_version": version},
        ),
        dg.AssetCheckResult(
            check_name=SIZE_BUDGET,
            passed=verdict.size_ok,
            metadata={"size_bytes": verdict.size_bytes, "budget_bytes": verdict.max_bytes},
        ),
        dg.AssetCheckResult(
            check_name=INT8_PARITY,
            passed=verdict.parity_ok,
            metadata={
                **{k: float(v) for k, v in verdict.agreement.items()},
                "min_top1_agreement": verdict.min_top1_agreement,
            },
        ),
    ]


defs = dg.Definitions(assets=[uplink_package])
