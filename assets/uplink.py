"""uplink_package: the champion, quantized to int8, checked for parity, signed for the fleet."""

import datetime as dt
import json

import dagster as dg

from assets.telemetry import NEWEST_DOWNLINK_LANDED_AT
from astromined import lake_layout
from astromined.ml.dataset import split_arrays
from astromined.ml.quantize import parity, quantize, to_npz_bytes
from astromined.ml.registry import ModelRegistry
from astromined.ml.uplink import PackageVerificationError, build_package, verify_package
from astromined.storage import read_parquet
from resources import LakeResource, UplinkSigningKeyResource

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


@dg.asset(
    group_name="uplink",
    deps=["champion_model"],
    check_specs=[
        dg.AssetCheckSpec(SIGNATURE_VERIFIES, asset="uplink_package", blocking=True),
        dg.AssetCheckSpec(SIZE_BUDGET, asset="uplink_package", blocking=True),
        dg.AssetCheckSpec(INT8_PARITY, asset="uplink_package", blocking=True),
    ],
    description="Signed tar of the int8 champion for uplink; verified the way the satellites verify it.",
)
def uplink_package(
    context: dg.AssetExecutionContext,
    config: UplinkConfig,
    lake: LakeResource,
    signing_key: UplinkSigningKeyResource,
):
    store = lake.store()
    registry = ModelRegistry(store)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure("no champion model to package")
    model, manifest = registry.load(champion["version"])
    arrays = quantize(model)
    holdout = split_arrays(read_parquet(store, lake_layout.TRAINING_SET), "holdout")
    agreement = parity(model, arrays, holdout.x)

    private_key = signing_key.private_key()
    package, package_manifest = build_package(
        {"model_int8.npz": to_npz_bytes(arrays)},
        {
            "model_version": champion["version"],
            "classes": manifest["architecture"]["classes"],
            "feature_names": manifest["architecture"]["feature_names"],
            "quantization": "int8 per-output-channel symmetric weights, float32 bias and normalization",
            "holdout_metrics": {k: v for k, v in manifest["metrics"].items()},
            # The fleet calibration the model's inputs were corrected with: onboard preprocessing must
            # apply the same table version.
            "calibration_versions": sorted(
                set(manifest.get("lineage", {}).get("calibration_versions", {}).values())
            ),
        },
        private_key,
    )
    public_pem = signing_key.public_key_pem()
    key = lake_layout.uplink_package(champion["version"])
    store.put_bytes(key, package)
    store.put_bytes(lake_layout.uplink_public_key(champion["version"]), public_pem)
    store.put_bytes(
        lake_layout.UPLINK_LATEST,
        json.dumps(
            {
                "version": champion["version"],
                "package": key,
                "size_bytes": len(package),
                "created_at": package_manifest["created_at"],
            }
        ).encode(),
    )
    try:
        verify_package(store.get_bytes(key), public_pem)
        verified, why = True, "signature and member hashes verify"
    except PackageVerificationError as exc:
        verified, why = False, str(exc)
    context.log.info(
        f"uplink package for {champion['version']}: {len(package)} bytes at {store.describe(key)}"
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
            "path": dg.MetadataValue.path(store.describe(key)),
            "model_version": champion["version"],
            "size_bytes": len(package),
            "top1_agreement_int8": agreement["top1_agreement"],
            "max_probability_error_int8": agreement["max_probability_error"],
            "signed_at": dg.MetadataValue.timestamp(signed_at),
            **latency,
        }
    )
    yield dg.AssetCheckResult(check_name=SIGNATURE_VERIFIES, passed=verified, description=why)
    yield dg.AssetCheckResult(
        check_name=SIZE_BUDGET,
        passed=len(package) <= config.max_package_bytes,
        metadata={"size_bytes": len(package), "budget_bytes": config.max_package_bytes},
    )
    yield dg.AssetCheckResult(
        check_name=INT8_PARITY,
        passed=agreement["top1_agreement"] >= config.min_top1_agreement,
        metadata={k: float(v) for k, v in agreement.items()},
    )


defs = dg.Definitions(assets=[uplink_package])
