"""Every metric the pipeline exporter serves: name, type, labels, help text and histogram buckets.

The single source in code for the names in docs/contracts.md. The exporter builds its families from
these specs, and the alert-rule and dashboard tests check their PromQL against ``series_names()``.
Pure Python (no Dagster, no prometheus_client).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]

# Label values that the exporter emits; readers (alerts, dashboards) may rely on them.
RUN_STATUSES = (
    "QUEUED",
    "NOT_STARTED",
    "MANAGED",
    "STARTING",
    "STARTED",
    "SUCCESS",
    "FAILURE",
    "CANCELING",
    "CANCELED",
)
FRESHNESS_STATES = ("PASS", "WARN", "FAIL", "UNKNOWN")
TICK_STATUSES = ("STARTED", "SKIPPED", "SUCCESS", "FAILURE")
INSTIGATOR_TYPES = ("sensor", "schedule")
PACKET_OUTCOMES = ("ok", "quarantined", "duplicate")
MODEL_ROLES = ("champion", "candidate", "baseline")
MODEL_METRICS = ("macro_f1", "accuracy", "m_type_recall", "ece")
# astromined.ml.margin: the candidate's macro-F1 margin over the baseline, its 95 % bootstrap interval, and
# the share of resampled holdouts the candidate wins.
MARGIN_STATISTICS = ("margin", "low", "high", "win_share")
PROMOTION_OUTCOMES = ("promoted", "blocked")
SITES = ("onprem", "cloud")
# astromined.readiness.result.Status values: one series per (component, site, status), 1 for the current one.
READINESS_STATUSES = ("ready", "not_ready", "not_configured")

# Steps run from well under a second (readiness probes) to hours (GPU training).
STEP_DURATION_BUCKETS = (
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)
# Downlink landed -> uplink package signed (docs/contracts.md); the SLO is stated against these bounds.
DATA_TO_MODEL_LATENCY_BUCKETS = (
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    2700.0,
    3600.0,
    5400.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric family. ``name`` is the family name as written in docs/contracts.md (counters end
    in ``_total``)."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.startswith("astromined_"):
            raise ValueError(f"metric {self.name!r}: every exporter metric starts with 'astromined_'")
        if (self.type == "counter") != self.name.endswith("_total"):
            raise ValueError(f"metric {self.name!r}: counters, and only counters, end in '_total'")
        if (self.type == "histogram") != bool(self.buckets):
            raise ValueError(f"metric {self.name!r}: histograms, and only histograms, have buckets")
        if list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"metric {self.name!r}: buckets must be strictly increasing")

    @property
    def family_name(self) -> str:
        """The name prometheus_client's metric families take (counters without ``_total``)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def series_names(self) -> tuple[str, ...]:
        """Every time-series name this family exposes, i.e. what a PromQL query may select."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


RUNS = MetricSpec(
    "astromined_runs",
    "gauge",
    "Runs in the Dagster instance by job and DagsterRunStatus name.",
    ("job", "status"),
)
RUN_FAILURES = MetricSpec(
    "astromined_run_failures_total",
    "counter",
    "Runs that ended in FAILURE.",
    ("job",),
)
QUEUED_RUN_OLDEST_AGE = MetricSpec(
    "astromined_queued_run_oldest_age_seconds",
    "gauge",
    "Age of the oldest QUEUED run in seconds (0 when none is queued).",
)
STARTED_RUN_OLDEST_AGE = MetricSpec(
    "astromined_started_run_oldest_age_seconds",
    "gauge",
    "Seconds since the oldest run of the job that is still STARTED started (0 when none of its runs is).",
    ("job",),
)
STEP_DURATION = MetricSpec(
    "astromined_step_duration_seconds",
    "histogram",
    "Step duration from STEP_START to STEP_SUCCESS or STEP_FAILURE.",
    ("job", "step"),
    STEP_DURATION_BUCKETS,
)
ASSET_LAST_MATERIALIZATION = MetricSpec(
    "astromined_asset_last_materialization_timestamp_seconds",
    "gauge",
    "Unix time of the asset's latest materialization (any partition).",
    ("asset",),
)
ASSET_FRESHNESS_STATE = MetricSpec(
    "astromined_asset_freshness_state",
    "gauge",
    "1 for the asset's current freshness state (PASS, WARN, FAIL, UNKNOWN), 0 for the others.",
    ("asset", "state"),
)
ASSET_FRESHNESS_STATE_TIMESTAMP = MetricSpec(
    "astromined_asset_freshness_state_timestamp_seconds",
    "gauge",
    "Unix time at which the asset's current freshness state began (the freshness daemon's latest change).",
    ("asset",),
)
ASSET_FRESHNESS_EVALUATED = MetricSpec(
    "astromined_asset_freshness_evaluated",
    "gauge",
    "1 if the freshness daemon has recorded a freshness state for the asset (NOT_APPLICABLE included), 0 for "
    "an asset with events in the instance that it never evaluated.",
    ("asset",),
)
ASSET_CHECK_PASSED = MetricSpec(
    "astromined_asset_check_passed",
    "gauge",
    "1 if the latest evaluation of the asset check passed, 0 if it failed.",
    ("asset", "check"),
)
INSTIGATOR_LAST_TICK_STATUS = MetricSpec(
    "astromined_instigator_last_tick_status",
    "gauge",
    "1 for the status of the sensor's or schedule's latest tick, 0 for the other statuses.",
    ("name", "type", "status"),
)
INSTIGATOR_LAST_TICK_TIMESTAMP = MetricSpec(
    "astromined_instigator_last_tick_timestamp_seconds",
    "gauge",
    "Unix time of the sensor's or schedule's latest tick.",
    ("name", "type"),
)
INSTIGATOR_FAILED_TICKS_1H = MetricSpec(
    "astromined_instigator_failed_ticks_1h",
    "gauge",
    "FAILURE ticks of the sensor or schedule in the last hour.",
    ("name", "type"),
)
DAEMON_HEARTBEAT_AGE = MetricSpec(
    "astromined_daemon_heartbeat_age_seconds",
    "gauge",
    "Seconds since the Dagster daemon's last heartbeat.",
    ("daemon",),
)
PACKETS = MetricSpec(
    "astromined_packets_total",
    "counter",
    "Packets ingested by raw_telemetry by outcome (ok, quarantined, duplicate).",
    ("outcome",),
)
PACKETS_QUARANTINED = MetricSpec(
    "astromined_packets_quarantined_total",
    "counter",
    "Quarantined packets by reason code.",
    ("reason",),
)
DRIFT_MAX_PSI = MetricSpec(
    "astromined_drift_max_psi",
    "gauge",
    "Largest PSI over features of the latest evaluated feature partition.",
)
DRIFT_FEATURES_OVER_THRESHOLD = MetricSpec(
    "astromined_drift_features_over_threshold",
    "gauge",
    "Number of features whose drift crossed the threshold in the latest evaluated feature partition.",
)
DRIFT_CLASS_MIX_SHIFT = MetricSpec(
    "astromined_drift_class_mix_shift",
    "gauge",
    "Total-variation distance of the predicted class mix vs the reference.",
)
DRIFT_DETECTED = MetricSpec(
    "astromined_drift_detected",
    "gauge",
    "1 if the latest evaluated feature partition drifted.",
)
MODEL_METRIC = MetricSpec(
    "astromined_model_metric",
    "gauge",
    "Holdout metrics of the champion, the candidate and the baseline from the latest model_evaluation.",
    ("role", "metric"),
)
MODEL_BASELINE_MARGIN = MetricSpec(
    "astromined_model_baseline_margin",
    "gauge",
    "The latest candidate's macro-F1 minus the baseline's on its holdout (margin), the 95 % paired bootstrap "
    "interval of that difference (low, high) and the share of resampled holdouts it wins (win_share).",
    ("statistic",),
)
PROMOTIONS = MetricSpec(
    "astromined_promotions_total",
    "counter",
    "Promotion gate decisions (promoted, blocked).",
    ("outcome",),
)
STEP_PLACEMENTS = MetricSpec(
    "astromined_step_placements_total",
    "counter",
    "Steps started by the multi-cluster executor, by the site they ran on (a step moved to the cloud "
    "before it started counts once, there).",
    ("site",),
)
GPU_SECONDS = MetricSpec(
    "astromined_gpu_seconds_total",
    "counter",
    "GPUs x seconds of GPU steps by the site they ran on.",
    ("site",),
)
READINESS_READY = MetricSpec(
    "astromined_readiness_ready",
    "gauge",
    "1 if the component was ready at the latest readiness check.",
    ("component",),
)
READINESS_STATUS = MetricSpec(
    "astromined_readiness_status",
    "gauge",
    "1 for the status (ready, not_ready, not_configured) of each readiness row (component, site) at its "
    "readiness asset's latest materialization, 0 for the other statuses.",
    ("component", "site", "status"),
)
READINESS_CHECKED = MetricSpec(
    "astromined_readiness_checked_timestamp_seconds",
    "gauge",
    "Unix time of the latest readiness materialization that probed the site.",
    ("site",),
)
DATA_TO_MODEL_LATENCY = MetricSpec(
    "astromined_data_to_model_latency_seconds",
    "histogram",
    "Seconds from the newest downlink file of the training data landing to the uplink package being signed.",
    (),
    DATA_TO_MODEL_LATENCY_BUCKETS,
)
EXPORTER_SCRAPE_DURATION = MetricSpec(
    "astromined_exporter_scrape_duration_seconds",
    "gauge",
    "Time the exporter spent on its latest refresh from the Dagster instance.",
)
EXPORTER_EVENTS_PROCESSED = MetricSpec(
    "astromined_exporter_events_processed_total",
    "counter",
    "Event-log records the exporter has read.",
)
EXPORTER_ERRORS = MetricSpec(
    "astromined_exporter_errors_total",
    "counter",
    "Records or sources the exporter could not turn into metrics, by kind (each is logged and skipped).",
    ("kind",),
)
EXPORTER_LAST_REFRESH = MetricSpec(
    "astromined_exporter_last_refresh_timestamp_seconds",
    "gauge",
    "Unix time at which the exporter's latest refresh finished.",
)
EXPORTER_LAST_SUCCESSFUL_REFRESH = MetricSpec(
    "astromined_exporter_last_successful_refresh_timestamp_seconds",
    "gauge",
    "Unix time at which the latest refresh that read every source finished (0 until one has).",
)

ALL_METRICS: tuple[MetricSpec, ...] = (
    RUNS,
    RUN_FAILURES,
    QUEUED_RUN_OLDEST_AGE,
    STARTED_RUN_OLDEST_AGE,
    STEP_DURATION,
    ASSET_LAST_MATERIALIZATION,
    ASSET_FRESHNESS_STATE,
    ASSET_FRESHNESS_STATE_TIMESTAMP,
    ASSET_FRESHNESS_EVALUATED,
    ASSET_CHECK_PASSED,
    INSTIGATOR_LAST_TICK_STATUS,
    INSTIGATOR_LAST_TICK_TIMESTAMP,
    INSTIGATOR_FAILED_TICKS_1H,
    DAEMON_HEARTBEAT_AGE,
    PACKETS,
    PACKETS_QUARANTINED,
    DRIFT_MAX_PSI,
    DRIFT_FEATURES_OVER_THRESHOLD,
    DRIFT_CLASS_MIX_SHIFT,
    DRIFT_DETECTED,
    MODEL_METRIC,
    MODEL_BASELINE_MARGIN,
    PROMOTIONS,
    STEP_PLACEMENTS,
    GPU_SECONDS,
    READINESS_READY,
    READINESS_STATUS,
    READINESS_CHECKED,
    DATA_TO_MODEL_LATENCY,
    EXPORTER_SCRAPE_DURATION,
    EXPORTER_EVENTS_PROCESSED,
    EXPORTER_ERRORS,
    EXPORTER_LAST_REFRESH,
    EXPORTER_LAST_SUCCESSFUL_REFRESH,
)

BY_NAME: Mapping[str, MetricSpec] = {spec.name: spec for spec in ALL_METRICS}


def metric_names() -> frozenset[str]:
    """Family names as in docs/contracts.md (counters with ``_total``, histograms without suffix)."""
    return frozenset(BY_NAME)


def series_names() -> frozenset[str]:
    """Every time-series name the exporter can expose (adds ``_bucket``/``_sum``/``_count``)."""
    return frozenset(name for spec in ALL_METRICS for name in spec.series_names())


def spec(name: str) -> MetricSpec:
    """The spec for a family or series name; a clear error for a name the exporter does not serve."""
    if name in BY_NAME:
        return BY_NAME[name]
    for candidate in ALL_METRICS:
        if name in candidate.series_names():
            return candidate
    raise KeyError(f"{name!r} is not an AstroMined exporter metric (see astromined/monitoring/catalog.py)")
