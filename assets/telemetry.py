"""raw_telemetry[day]: every downlink packet of a day, validated, de-duplicated, reconciled."""

import dagster as dg

from assets.partitions import daily_partitions, partition_day
from astromined import lake_layout
from astromined.fleet import N_SATELLITES
from astromined.telemetry.ingest import EMPTY_FILE, UNRECOGNIZED_FILE, compact_ids, stream_day
from astromined.telemetry.parquet_sink import ParquetDaySink
from resources import LakeResource, LandingZoneResource

RECONCILES = "packets_reconcile"
QUARANTINE_RATE = "quarantine_rate_below_threshold"
ALL_SATELLITES = "every_satellite_reported"
NEWEST_DOWNLINK_LANDED_AT = "newest_downlink_landed_at"


class RawTelemetryConfig(dg.Config):
    max_quarantine_rate: float = 0.02
    expected_satellites: int = N_SATELLITES


@dg.asset(
    group_name="telemetry",
    partitions_def=daily_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            RECONCILES,
            asset="raw_telemetry",
            blocking=True,
            description="packets_in == ok + quarantined + duplicates",
        ),
        dg.AssetCheckSpec(QUARANTINE_RATE, asset="raw_telemetry"),
        dg.AssetCheckSpec(ALL_SATELLITES, asset="raw_telemetry"),
    ],
    kinds={"parquet"},
    description="Validated observations of one UTC day decoded from CCSDS downlinks; rejects quarantined.",
)
def raw_telemetry(
    context: dg.AssetExecutionContext,
    config: RawTelemetryConfig,
    lake: LakeResource,
    landing_zone: LandingZoneResource,
):
    day = partition_day(context)
    landing_zone.prepare_day(day)
    where = landing_zone.store().describe(f"downlinks/{day}/")
    try:
        downlinks = landing_zone.list_downlinks(day)
    except Exception as exc:  # an unreachable or missing landing zone: say which, for which day
        raise dg.Failure(
            description=f"cannot list downlinks for partition {day} at {where}: {type(exc).__name__}: {exc}"
        ) from exc
    if not downlinks:
        raise dg.Failure(
            description=f"no downlink files for partition {day} in the landing zone ({where})",
        )
    # Where the data-to-model latency starts (uplink_package reads it back from this metadata).
    newest_landed_at = landing_zone.newest_landed_at(downlinks)
    context.log.info(f"ingesting {len(downlinks)} downlink files for {day}")
    done = {"n": 0}

    def progress(_name: str) -> None:
        done["n"] += 1
        if done["n"] % 100 == 0 or done["n"] == len(downlinks):
            context.log.info(f"decoded {done['n']}/{len(downlinks)} files")

    store = lake.store()
    key = lake_layout.raw_observations(context.partition_key)
    quarantine_key = lake_layout.raw_quarantine(context.partition_key)
    with ParquetDaySink(store.staging_dir()) as sink:
        result = stream_day(
            day,
            ((d.name, lambda object_key=d.key: landing_zone.read(object_key)) for d in downlinks),
            sink,
            on_file=progress,
        )
        sink.close()
        written = sink.observations_path.stat().st_size
        # Quarantine first: a reader that sees the day's observations also finds its quarantine.
        store.put_file(quarantine_key, sink.quarantine_path)
        store.put_file(key, sink.observations_path)

    reporting = result.satellites_reporting
    quarantine_rate = result.packets_quarantined / max(result.packets_in, 1)
    by_reason = result.quarantine_by_reason()
    lost = int(sum(result.lost.values()))
    latency = result.latency_percentiles_s()
    context.log.info(
        f"{day}: {result.packets_in} packets in, {result.packets_ok} ok, "
        f"{result.packets_quarantined} quarantined {by_reason}, {result.duplicates} duplicates, ~{lost} lost"
    )
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(store.describe(key)),
            "files": result.files,
            "bytes_in": result.bytes_in,
            "parquet_bytes": written,
            "packets_in": result.packets_in,
            "packets_ok": result.packets_ok,
            "packets_quarantined": result.packets_quarantined,
            "duplicates": result.duplicates,
            "quarantine_by_reason": dg.MetadataValue.json(by_reason),
            "satellites_reporting": reporting,
            "lost_packets_estimate": lost,
            NEWEST_DOWNLINK_LANDED_AT: dg.MetadataValue.timestamp(newest_landed_at),
            "dagster/row_count": result.packets_ok,
            **{f"latency_{name}_s": round(value, 1) for name, value in latency.items()},
        }
    )
    yield dg.AssetCheckResult(
        check_name=RECONCILES,
        passed=result.reconciles,
        metadata={
            "files": result.files,
            "packets_in": result.packets_in,  # each empty or unrecognized file counts as one unit
            "accounted": result.packets_ok + result.packets_quarantined + result.duplicates,
            "empty_files": by_reason.get(EMPTY_FILE, 0),
            "unrecognized_files": by_reason.get(UNRECOGNIZED_FILE, 0),
        },
    )
    yield dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        passed=quarantine_rate <= config.max_quarantine_rate,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_rate": quarantine_rate, "threshold": config.max_quarantine_rate},
    )
    coverage = result.coverage(range(1, config.expected_satellites + 1))
    if not coverage.complete:
        context.log.warning(f"{day}: {coverage.describe()}")
    yield dg.AssetCheckResult(
        check_name=ALL_SATELLITES,
        passed=coverage.complete,
        severity=dg.AssetCheckSeverity.WARN,
        description=coverage.describe(),
        metadata={
            "expected": coverage.expected,
            "satellites_reporting": coverage.reporting,
            "missing": len(coverage.missing),
            # Satellite ids as ranges ("4-17, 200"); each missing one is in exactly one of the four lists.
            "missing_satellites": compact_ids(coverage.missing),
            "missing_without_files": compact_ids(coverage.without_files),
            "missing_with_only_empty_files": compact_ids(coverage.only_empty_files),
            "missing_with_every_packet_quarantined": compact_ids(coverage.only_quarantined),
            "missing_with_only_other_satellites_packets": compact_ids(coverage.only_other_satellites),
            "reporting_but_not_expected": compact_ids(coverage.unexpected),
        },
    )


defs = dg.Definitions(assets=[raw_telemetry])
