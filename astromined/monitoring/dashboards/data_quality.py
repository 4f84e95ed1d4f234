"""Data freshness and quality: asset freshness and last materialization, asset checks, packets ingested
and quarantined by reason, infrastructure readiness."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from astromined.monitoring.alert_values import (
    CLOUD_CLUSTER,
    ONPREM_CLUSTER,
    PACKETS_QUARANTINED_RATIO_6H,
    QUARANTINE_RATE_MAX,
    percent,
)
from astromined.monitoring.dashboards.panels import (
    label_variable,
    new_dashboard,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "astromined-data-quality"
FILENAME = "data-freshness-quality.json"
ASSET = 'asset=~"$asset"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "AstroMined / Data freshness & quality",
            "Is the newest telemetry in the lake, and is it good? Freshness policies, asset checks, "
            "quarantined packets by reason, readiness of the infrastructure.",
        )
        .with_variable(
            label_variable("asset", "Asset", "astromined_asset_last_materialization_timestamp_seconds")
        )
        .with_row(dashboard.Row("Freshness"))
        .with_panel(
            stat_panel(
                "Stale assets",
                "Assets whose freshness policy is FAIL (AstrominedAssetStale).",
                f'count(astromined_asset_freshness_state{{state="FAIL", {ASSET}}} == 1) or vector(0)',
                threshold_steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Failing asset checks",
                "Asset checks whose latest evaluation failed.",
                f"count(astromined_asset_check_passed{{{ASSET}}} == 0) or vector(0)",
                threshold_steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Quarantined packets (6 h)",
                "Share of packets ingested in the last 6 hours that went to quarantine "
                f"(limit {percent(QUARANTINE_RATE_MAX)}).",
                f"max({PACKETS_QUARANTINED_RATIO_6H})",
                unit="percentunit",
                threshold_steps=((None, "green"), (QUARANTINE_RATE_MAX, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Components not ready",
                "Components that failed the latest infrastructure readiness check (training is skipped).",
                "count(astromined_readiness_ready == 0) or vector(0)",
                threshold_steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            table_panel(
                "Freshness state by asset",
                "Current freshness state (PASS, WARN, FAIL, UNKNOWN) of every asset with a policy.",
                f"astromined_asset_freshness_state{{{ASSET}}} == 1",
            )
        )
        .with_panel(
            timeseries_panel(
                "Time since last materialization",
                "Seconds since each asset's latest materialization (any partition).",
                [
                    query(
                        "time() - max by (asset) "
                        f"(astromined_asset_last_materialization_timestamp_seconds{{{ASSET}}})",
                        "{{asset}}",
                    )
                ],
                unit="s",
            )
        )
        .with_row(dashboard.Row("Asset checks"))
        .with_panel(
            table_panel(
                "Failing asset checks",
                "Checks whose latest evaluation failed; docs/operations.md says what each one means.",
                f"astromined_asset_check_passed{{{ASSET}}} == 0",
            )
        )
        .with_panel(
            timeseries_panel(
                "Asset check results",
                "1 = passed, 0 = failed, per asset check.",
                [
                    query(
                        f"min by (asset, check) (astromined_asset_check_passed{{{ASSET}}})",
                        "{{asset}} / {{check}}",
                    )
                ],
                min_value=0,
                max_value=1,
            )
        )
        .with_row(dashboard.Row("Telemetry packets"))
        .with_panel(
            timeseries_panel(
                "Packets ingested per hour by outcome",
                "Packets raw_telemetry read: accepted (ok), quarantined, retransmitted duplicates.",
                [query("sum by (outcome) (increase(astromined_packets_total[1h]))", "{{outcome}}")],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Quarantine rate (6 h)",
                "Quarantined share of the packets ingested in the last 6 hours; the alert fires above "
                f"{percent(QUARANTINE_RATE_MAX)}.",
                [query(f"max({PACKETS_QUARANTINED_RATIO_6H})", "quarantined share")],
                unit="percentunit",
                width=8,
                threshold_steps=((None, "green"), (QUARANTINE_RATE_MAX, "red")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Quarantined packets per hour by reason",
                "Reason codes of docs/telemetry-format.md (crc_mismatch, truncated_packet, ...).",
                [query("sum by (reason) (increase(astromined_packets_quarantined_total[1h]))", "{{reason}}")],
                width=8,
            )
        )
        .with_row(dashboard.Row("Infrastructure readiness"))
        .with_panel(
            timeseries_panel(
                "Readiness by component",
                "1 if the component (lake, disk, torch device, clusters, monitoring) was ready at the latest "
                "check.",
                [query("min by (component) (astromined_readiness_ready)", "{{component}}")],
                width=24,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            stat_panel(
                "Readiness rows not ready",
                "Rows (component, site) of the readiness assets that were not_ready at their latest run "
                "(AstrominedReadinessComponentNotReady; not_configured rows are not counted).",
                'count(astromined_readiness_status{status="not_ready"} == 1) or vector(0)',
                threshold_steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            table_panel(
                "Readiness by site and component",
                "Current status (ready, not_ready, not_configured) of every readiness row: clusters "
                f"{ONPREM_CLUSTER} and {CLOUD_CLUSTER}, object stores, instance storage, monitoring, local "
                "probes and gpu_sites.",
                "max by (site, component, status) (astromined_readiness_status) == 1",
            )
        )
    )
