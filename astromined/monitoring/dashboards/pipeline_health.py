"""Pipeline health: runs and failures, the queue, step durations, daemon and sensors, the exporter, and
the data-to-model latency SLO."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from astromined.monitoring.alert_values import (
    DAEMON_HEARTBEAT_MAX_AGE_S,
    EXPORTER_JOB,
    RUN_FAILURES_30M,
    SLO_BUCKET_MATCHER,
    SLO_ERROR_BUDGET,
    SLO_LATENCY_S,
    SLO_PERIOD,
    in_words,
    percent,
    slo_error_ratio,
)
from astromined.monitoring.dashboards.panels import (
    label_variable,
    new_dashboard,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "astromined-pipeline-health"
FILENAME = "pipeline-health.json"
JOB = 'job=~"$job"'
LATENCY = "astromined_data_to_model_latency_seconds"
# The data-to-model latency SLO, in words.
SLO = f"{percent(1 - SLO_ERROR_BUDGET)} of uplink packages within {in_words(SLO_LATENCY_S)} of their downlink"


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "AstroMined / Pipeline health",
            "Dagster runs, queue, steps, daemon and automation of the AstroMined code location, and the "
            f"data-to-model latency SLO ({SLO}).",
        )
        .with_variable(label_variable("job", "Dagster job", "astromined_runs"))
        .with_row(dashboard.Row("Now"))
        .with_panel(
            stat_panel(
                "Failed runs (30 min)",
                "Runs that ended in FAILURE in the last 30 minutes (AstrominedPipelineRunsFailing).",
                f"sum({RUN_FAILURES_30M}{{{JOB}}}) or vector(0)",
                threshold_steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Oldest queued run",
                "Age of the oldest QUEUED run: the run queue waits on the daemon or on concurrency limits.",
                "max(astromined_queued_run_oldest_age_seconds)",
                unit="s",
                threshold_steps=((None, "green"), (900, "orange"), (3600, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Stalest daemon heartbeat",
                "Seconds since the least recent Dagster daemon heartbeat "
                f"(AstrominedDaemonHeartbeatStale > {DAEMON_HEARTBEAT_MAX_AGE_S} s).",
                "max(astromined_daemon_heartbeat_age_seconds)",
                unit="s",
                threshold_steps=((None, "green"), (120, "orange"), (DAEMON_HEARTBEAT_MAX_AGE_S, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Exporter up",
                "1 when Prometheus scrapes the pipeline exporter (AstrominedExporterDown).",
                f'min(up{{job="{EXPORTER_JOB}"}})',
                threshold_steps=((None, "red"), (1, "green")),
            )
        )
        .with_row(dashboard.Row("Runs"))
        .with_panel(
            timeseries_panel(
                "Runs by status",
                "Runs in the Dagster instance by DagsterRunStatus (cumulative counts: slopes are new runs).",
                [query(f"sum by (status) (astromined_runs{{{JOB}}})", "{{status}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Failed runs per hour by job",
                "Runs that ended in FAILURE, per Dagster job.",
                [
                    query(
                        f"sum by (job) (increase(astromined_run_failures_total{{{JOB}}}[1h]))",
                        "{{job}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Step duration p90 by step",
                "90th percentile of step durations (STEP_START to success or failure).",
                [
                    query(
                        "histogram_quantile(0.9, sum by (le, step) "
                        f"(rate(astromined_step_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))",
                        "{{step}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Queued run age",
                "Age of the oldest QUEUED run.",
                [query("max(astromined_queued_run_oldest_age_seconds)", "oldest queued run")],
                unit="s",
            )
        )
        .with_row(dashboard.Row("Daemon and automation"))
        .with_panel(
            timeseries_panel(
                "Daemon heartbeat age",
                "Seconds since each Dagster daemon's last heartbeat; the alert fires above "
                f"{DAEMON_HEARTBEAT_MAX_AGE_S} s.",
                [query("max by (daemon) (astromined_daemon_heartbeat_age_seconds)", "{{daemon}}")],
                unit="s",
                threshold_steps=((None, "green"), (DAEMON_HEARTBEAT_MAX_AGE_S, "red")),
            )
        )
        .with_panel(
            table_panel(
                "Latest tick of each sensor and schedule",
                "Status of the latest tick (SUCCESS, SKIPPED, FAILURE, STARTED) of each sensor and schedule.",
                "astromined_instigator_last_tick_status == 1",
            )
        )
        .with_panel(
            timeseries_panel(
                "Time since latest tick",
                "Seconds since each sensor's or schedule's latest tick: a stopped one grows without bound.",
                [
                    query(
                        "time() - max by (name, type) (astromined_instigator_last_tick_timestamp_seconds)",
                        "{{type}} {{name}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Exporter refresh",
                "Time the exporter spends per refresh from the Dagster instance, and event-log records read.",
                [
                    query("max(astromined_exporter_scrape_duration_seconds)", "refresh duration (s)"),
                    query(
                        "sum(rate(astromined_exporter_events_processed_total[$__rate_interval]))",
                        "event records / s",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Data-to-model latency SLO"))
        .with_panel(
            stat_panel(
                "Error budget left (30 d)",
                f"Share of the 30-day error budget ({percent(SLO_ERROR_BUDGET)} of uplink packages later "
                f"than {in_words(SLO_LATENCY_S)}) still unspent.",
                f"1 - (1 - sum(increase({LATENCY}_bucket{{{SLO_BUCKET_MATCHER}}}[{SLO_PERIOD}])) "
                f"/ sum(increase({LATENCY}_count[{SLO_PERIOD}]))) / {SLO_ERROR_BUDGET:g}",
                unit="percentunit",
                threshold_steps=((None, "red"), (0.25, "orange"), (0.5, "green")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Data-to-model latency",
                "Downlink landed to uplink package signed: median and 90th percentile over the last day.",
                [
                    query(
                        "histogram_quantile(0.5, sum by (le) "
                        "(increase(astromined_data_to_model_latency_seconds_bucket[1d])))",
                        "p50",
                    ),
                    query(
                        "histogram_quantile(0.9, sum by (le) "
                        "(increase(astromined_data_to_model_latency_seconds_bucket[1d])))",
                        "p90",
                    ),
                ],
                unit="s",
                width=9,
                threshold_steps=((None, "green"), (SLO_LATENCY_S, "red")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Burn-rate windows",
                f"Error ratio (share of packages later than {in_words(SLO_LATENCY_S)}) over the alerting "
                f"windows; SLO: at most {percent(SLO_ERROR_BUDGET)}.",
                [query(slo_error_ratio(window), window) for window in ("1h", "6h", "1d", "3d")],
                unit="percentunit",
                width=9,
                threshold_steps=((None, "green"), (SLO_ERROR_BUDGET, "red")),
            )
        )
    )
