"""The values the alert rules, the dashboards and the run-failure sensor share, each stated once.

Runbook URLs, the cluster label values, every alert's severity, team, ``for`` duration and threshold(s),
and the recording-rule names the dashboards read. The rule files (``astromined/monitoring/rules/`` →
``infra/monitoring/prometheus/rules/*.rules.yml``) and the dashboards (``astromined/monitoring/dashboards/``
→ ``infra/monitoring/dashboards/*.json``) are generated from them by ``make dashboards``; a test fails
while the committed files are stale. The promtool unit tests (``infra/monitoring/prometheus/tests/``)
state the expected values literally, on purpose: changing a value here means changing them too.

Pure Python: no Dagster, no YAML.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Literal

from astromined.placement.settings import DEFAULT_CLUSTERS

# --- links ----------------------------------------------------------------------------------------------

REPOSITORY_URL = "https://git.astromined.internal/mlops/astromined"
# Every alert's annotation runbook_url is RUNBOOK_BASE_URL + "<AlertName>.md" (docs/contracts.md).
RUNBOOK_BASE_URL = f"{REPOSITORY_URL}/-/blob/main/docs/runbooks/"
# The runbook index (docs/runbooks/README.md as a folder view), linked from every dashboard.
RUNBOOKS_INDEX_URL = f"{REPOSITORY_URL}/-/tree/main/docs/runbooks"


def runbook_url(alert: str) -> str:
    """``docs/runbooks/<alert>.md`` in the repository's web UI."""
    if not re.fullmatch(r"Astromined[A-Za-z0-9]+", alert):
        raise ValueError(f"{alert!r} is not an AstroMined alert name (Astromined<CamelCase>)")
    return f"{RUNBOOK_BASE_URL}{alert}.md"


# --- label values ---------------------------------------------------------------------------------------


def _cluster_of_site(site: str) -> str:
    """The kubeconfig context of the executor's default cluster of ``site``: Prometheus labels each
    cluster's series with the same name (``cluster``, infra/monitoring/prometheus/prometheus.yml)."""
    (context,) = (context for context, cluster in DEFAULT_CLUSTERS.items() if cluster["site"] == site)
    return context


ONPREM_CLUSTER = _cluster_of_site("onprem")  # EKS Anywhere: 27 servers x 2 V100
CLOUD_CLUSTER = _cluster_of_site("cloud")  # AWS EKS, when on-prem is full
CLUSTERS = (ONPREM_CLUSTER, CLOUD_CLUSTER)
# Where Dagster runs and steps run as Jobs in both clusters (infra/k8s/base, infra/dagster/dagster-prod.yaml).
NAMESPACE = "astromined"
# Prometheus's scrape job of the pipeline exporter (its `up` series; honor_labels keeps the Dagster `job`).
EXPORTER_JOB = "astromined-exporter"

Severity = Literal["critical", "warning", "info"]
Team = Literal["mlops", "platform"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
TEAMS: tuple[Team, ...] = ("mlops", "platform")

# --- thresholds -----------------------------------------------------------------------------------------
# Named after what they limit; the alert that reads each one is in its comment.

# AstrominedDaemonHeartbeatStale: a Dagster daemon heartbeat older than this.
DAEMON_HEARTBEAT_MAX_AGE_S = 300
# AstrominedExporterStale: the exporter's latest successful refresh older than this.
EXPORTER_REFRESH_MAX_AGE_S = 300
# AstrominedQuarantineRateHigh: share of the packets ingested in 6 h that were quarantined; the same limit
# as raw_telemetry's quarantine_rate_below_threshold check (RawTelemetryConfig.max_quarantine_rate).
QUARANTINE_RATE_MAX = 0.02
# AstrominedRunsStuckInQueue: the oldest QUEUED run older than the first while no run is in progress, or
# older than the second in any case.
QUEUED_RUN_MAX_AGE_IDLE_S = 1800
QUEUED_RUN_MAX_AGE_S = 21600
# AstrominedRunHung (through the recording rule RUN_STARTED_MAX_SECONDS): the longest a run may stay
# STARTED. Well above the longest legitimate run (a full retrain whose GPU step waited for a pool slot),
# well below "the next day's run is blocked too".
RUN_STARTED_MAX_S = 14400
# AstrominedInstigatorTicksFailing: failed ticks of one sensor or schedule in the last hour.
INSTIGATOR_FAILED_TICKS_1H_MAX = 3
# AstrominedAssetFreshnessNotEvaluated: an asset materialized in the last N days that the freshness daemon
# never evaluated, or a freshness policy UNKNOWN for longer than N hours.
FRESHNESS_RECENT_MATERIALIZATION_DAYS = 7
FRESHNESS_UNKNOWN_MAX_HOURS = 26
# AstrominedOnPremGPUsSaturated: share of on-prem GPUs requested by scheduled, unfinished pods.
ONPREM_GPU_SATURATION_RATIO = 0.9
# AstrominedCloudGPUHoursOverBudget (through the recording rule CLOUD_GPU_HOURS_BUDGET): GPU-hours on AWS
# EKS per rolling 24 hours. 24 GPU-hours ~ one p3.2xlarge around the clock.
CLOUD_GPU_HOURS_BUDGET_DAILY = 24
# AstrominedPodMemoryHigh: a container's working set over its memory limit.
POD_MEMORY_LIMIT_RATIO = 0.9
# AstrominedReadinessStale: no readiness probe of a site for this long (the schedule runs every 5 minutes).
READINESS_MAX_AGE_S = 1800
# Drift dashboard lines: the defaults of astromined.features.drift.DriftThresholds (psi, class_mix_shift).
DRIFT_PSI_THRESHOLD = 0.2
DRIFT_CLASS_MIX_SHIFT_THRESHOLD = 0.05

# --- the words for values (alert descriptions, dashboard texts) -----------------------------------------

_UNITS = (("d", 86400, "day"), ("h", 3600, "hour"), ("m", 60, "minute"), ("s", 1, "second"))


def duration_seconds(duration: str) -> int:
    """Seconds of a one-unit Prometheus duration such as ``5m``, ``1h`` or ``3d``."""
    match = re.fullmatch(r"([1-9][0-9]*)([smhd])", duration)
    if not match:
        raise ValueError(f"{duration!r} is not a one-unit Prometheus duration such as 5m, 1h, 3d")
    return int(match.group(1)) * next(size for unit, size, _ in _UNITS if unit == match.group(2))


def in_words(seconds: float | str) -> str:
    """``300`` or ``"5m"`` → ``"5 minutes"``; ``3600`` → ``"1 hour"``; the largest unit that divides it."""
    total = duration_seconds(seconds) if isinstance(seconds, str) else seconds
    if total <= 0 or total != int(total):
        raise ValueError(f"{seconds!r}: a positive whole number of seconds")
    for _, size, word in _UNITS:
        if total % size == 0:
            count = int(total // size)
            return f"{count} {word}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable: every whole number of seconds is divisible by 1")


def percent(ratio: float) -> str:
    """``0.02`` → ``"2 %"`` (the house style of the alert texts)."""
    return f"{round(ratio * 100, 6):g} %"


# --- the data-to-model latency SLO ----------------------------------------------------------------------
# 99 % of uplink packages signed within 1 hour of their day's newest downlink landing, over 30 days.

SLO_ALERT = "AstrominedDataToModelLatencyBudgetBurn"
SLO_LABEL = "data-to-model-latency"
SLO_LATENCY_S = 3600  # a bucket bound of catalog.DATA_TO_MODEL_LATENCY_BUCKETS
SLO_ERROR_BUDGET = 0.01  # share of packages allowed to be late
SLO_PERIOD = "30d"
# The SLI's "good" bucket; the exporter writes le="3600.0", a text-format conversion may write "3600".
SLO_BUCKET_MATCHER = f'le=~"{SLO_LATENCY_S}(\\\\.0)?"'


@dataclasses.dataclass(frozen=True)
class AlertValues:
    """How an alert is routed (``severity``, ``team``) and how long its condition must hold (``for_``, a
    Prometheus duration; ``None``: it fires at the first evaluation)."""

    severity: Severity
    team: Team
    for_: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES or self.team not in TEAMS:
            raise ValueError(f"{self}: severity must be one of {SEVERITIES}, team one of {TEAMS}")
        if self.for_ is not None:
            duration_seconds(self.for_)


@dataclasses.dataclass(frozen=True)
class BurnRateTier:
    """One severity of the multi-window, multi-burn-rate SLO alert (Google SRE workbook, ch. 5): it fires
    when the error ratio exceeds ``rate`` x the error budget over both the long and the short window of
    any of its ``windows`` (long, short, rate)."""

    values: AlertValues
    windows: tuple[tuple[str, str, float], ...]


SLO_BURN_RATE_TIERS = (
    BurnRateTier(AlertValues("critical", "mlops", "2m"), (("1h", "5m", 14.4), ("6h", "30m", 6))),
    BurnRateTier(AlertValues("warning", "mlops", "15m"), (("1d", "2h", 3), ("3d", "6h", 1))),
)
# Every window an error-ratio recording rule exists for, shortest first.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

# --- every other alert ----------------------------------------------------------------------------------

ALERTS: Mapping[str, AlertValues] = {
    # pipeline (astromined-pipeline.rules.yml)
    "AstrominedPipelineRunsFailing": AlertValues("critical", "mlops"),
    "AstrominedDaemonHeartbeatStale": AlertValues("critical", "mlops", "5m"),
    "AstrominedAssetStale": AlertValues("warning", "mlops", "5m"),
    "AstrominedQuarantineRateHigh": AlertValues("warning", "mlops"),
    "AstrominedExporterDown": AlertValues("critical", "platform", "5m"),
    "AstrominedExporterStale": AlertValues("critical", "platform", "5m"),
    "AstrominedExporterErrors": AlertValues("warning", "mlops"),
    "AstrominedRunsStuckInQueue": AlertValues("warning", "mlops", "10m"),
    "AstrominedRunHung": AlertValues("critical", "mlops", "10m"),
    "AstrominedInstigatorTicksFailing": AlertValues("warning", "mlops", "10m"),
    "AstrominedAssetFreshnessNotEvaluated": AlertValues("warning", "mlops", "30m"),
    # models (astromined-models.rules.yml)
    "AstrominedDriftDetected": AlertValues("warning", "mlops"),
    "AstrominedPromotionBlocked": AlertValues("warning", "mlops"),
    # hybrid GPU (astromined-gpu.rules.yml)
    "AstrominedOnPremGPUsSaturated": AlertValues("warning", "platform", "30m"),
    "AstrominedCloudGPUHoursOverBudget": AlertValues("warning", "mlops"),
    # readiness (astromined-readiness.rules.yml)
    "AstrominedReadinessComponentNotReady": AlertValues("warning", "platform", "15m"),
    "AstrominedNoGPUSiteReady": AlertValues("critical", "mlops", "5m"),
    "AstrominedReadinessStale": AlertValues("warning", "mlops", "5m"),
    # Kubernetes (kubernetes.rules.yml)
    "AstrominedStepPodPending": AlertValues("warning", "mlops", "15m"),
    "AstrominedStepPodUnschedulable": AlertValues("warning", "platform", "20m"),
    "AstrominedPodMemoryHigh": AlertValues("warning", "mlops", "10m"),
    "AstrominedNodeNotReady": AlertValues("warning", "platform", "10m"),
}
# Every alert of the rule files (the SLO alert has one rule per burn-rate tier).
ALERT_NAMES = frozenset({*ALERTS, SLO_ALERT})
# Posted by the run-failure sensor straight to Alertmanager (astromined/automation/run_failure.py), once
# per failed run: an event, no `for`.
RUN_FAILED_ALERT = "AstrominedRunFailed"
RUN_FAILED = AlertValues("critical", "mlops")

# --- recording rules the dashboards read ----------------------------------------------------------------

RUN_FAILURES_30M = "cluster_job:astromined_run_failures:increase30m"
PACKETS_QUARANTINED_RATIO_6H = "cluster:astromined_packets_quarantined:ratio_increase6h"
PROMOTIONS_1D = "cluster_outcome:astromined_promotions:increase1d"
GPU_ALLOCATABLE = "cluster:gpu_allocatable:sum"
GPU_REQUESTS_SCHEDULED = "cluster:gpu_requests_scheduled:sum"
GPU_REQUESTS_SCHEDULED_RATIO = "cluster:gpu_requests_scheduled:ratio"
GPU_HOURS_1D = "site:astromined_gpu_hours:increase1d"
CLOUD_GPU_HOURS_BUDGET = "astromined:cloud_gpu_hours_budget:daily"
RUN_STARTED_MAX_SECONDS = "astromined:run_started_max_seconds:config"


def slo_error_ratio(window: str) -> str:
    """The recording rule of the SLO's error ratio (share of late packages) over ``window``."""
    if window not in SLO_WINDOWS:
        raise ValueError(f"no SLO error-ratio rule for {window!r}; windows: {SLO_WINDOWS}")
    return f"astromined:data_to_model_latency:error_ratio_rate{window}"
