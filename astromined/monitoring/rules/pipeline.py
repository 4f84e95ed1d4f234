"""Pipeline alerts: Dagster runs, the daemon, asset freshness, telemetry quality and the exporter itself."""

from __future__ import annotations

from astromined.monitoring.alert_values import (
    DAEMON_HEARTBEAT_MAX_AGE_S,
    EXPORTER_JOB,
    EXPORTER_REFRESH_MAX_AGE_S,
    FRESHNESS_RECENT_MATERIALIZATION_DAYS,
    FRESHNESS_UNKNOWN_MAX_HOURS,
    INSTIGATOR_FAILED_TICKS_1H_MAX,
    PACKETS_QUARANTINED_RATIO_6H,
    QUARANTINE_RATE_MAX,
    QUEUED_RUN_MAX_AGE_IDLE_S,
    QUEUED_RUN_MAX_AGE_S,
    RUN_FAILURES_30M,
    RUN_STARTED_MAX_S,
    RUN_STARTED_MAX_SECONDS,
    in_words,
    percent,
)
from astromined.monitoring.rules.spec import Record, RuleFile, alert, comment, expr, held_for

# The exporter's own series: as many samples in a window as a counter series means "appeared with it".
_EXPORTER_REFRESHES = "astromined_exporter_last_refresh_timestamp_seconds"

COUNTERS_COMMENT = comment(
    """
    --- Counters: "how much did it grow in the window", robust to what a counter goes through ------
    The exporter's counters are totals re-read from the Dagster instance: a restarted exporter reports
    the same totals (lower ones when retention deleted runs, never a reset to 0), possibly under a new
    `instance` label, after a gap of failed scrapes (503 during its first refresh); a counter series is
    created at its first increment. increase() gets each of these wrong (a lower total counts as a reset
    to 0, i.e. the whole total; a first sample is no increase; a stale marker 30 minutes ago turned
    `unless ... offset 30m` into "new"). Every counter the alerts read therefore goes through the same
    three steps (docs/monitoring.md, "Counters in the rules"):
      1. `:latest` = max by the labels that matter (instance dropped) of the last sample of the last
         10 minutes: bridges failed scrapes and an exporter moving to a new instance;
      2. growth = `:latest` minus its minimum over the window: a lower total (runs deleted) is not
         growth, a total that went up after it is;
      3. a series that first appeared in the window (no sample in the hour before it) counts in full,
         unless it appeared together with the exporter itself (as many samples in the window as the
         exporter's own astromined_exporter_last_refresh_timestamp_seconds): an exporter that was away
         for over an hour, or a Prometheus that lost its data, brings back every historical total, which
         is not news; a series that appears while the exporter was already serving is.
    """
)


def counter_growth(
    label: str, counter: str, window: str, *, latest_comment: str = "", growth_comment: str = ""
) -> tuple[Record, Record]:
    """The two recording rules of one exporter counter (COUNTERS_COMMENT), both by (cluster, <label>):
    ``cluster_<label>:<counter>:latest`` and ``cluster_<label>:<counter without _total>:increase<window>``."""
    labels = f"cluster, {label}"
    latest = f"cluster_{label}:{counter}:latest"
    growth = f"cluster_{label}:{counter.removesuffix('_total')}:increase{window}"
    return (
        Record(latest, f"max by ({labels}) (last_over_time({counter}[10m]))", comment=latest_comment),
        Record(
            growth,
            expr(
                f"""
                (
                  {latest}
                  unless on ({labels})
                    max by ({labels}) (last_over_time({counter}[1h] offset {window}))
                  unless on ({labels})
                    (
                      sum by ({labels}) (count_over_time({counter}[{window}]))
                      >= on (cluster) group_left ()
                      sum by (cluster) (count_over_time({_EXPORTER_REFRESHES}[{window}]))
                    )
                )
                or
                (
                  {latest}
                  - on ({labels})
                  min_over_time({latest}[{window}])
                )
                """
            ),
            comment=growth_comment,
        ),
    )


_RUN_FAILURES = counter_growth(
    "job",
    "astromined_run_failures_total",
    "30m",
    latest_comment=COUNTERS_COMMENT,
    growth_comment="Failed runs per Dagster job over the last 30 minutes.",
)
_PACKETS = counter_growth(
    "outcome",
    "astromined_packets_total",
    "6h",
    latest_comment="Packets ingested by outcome over the last 6 hours (a day's ingest arrives in bursts).",
)
_QUARANTINED = counter_growth(
    "reason",
    "astromined_packets_quarantined_total",
    "6h",
    latest_comment="Quarantined packets by reason over the last 6 hours (the quarantine alert names the top "
    "reason).",
)
_EXPORTER_ERRORS = counter_growth(
    "kind",
    "astromined_exporter_errors_total",
    "30m",
    latest_comment="Records or sources the exporter could not read, by kind, over the last 30 minutes.",
)
if _RUN_FAILURES[1].record != RUN_FAILURES_30M:
    raise ValueError(f"the run-failure growth rule is {_RUN_FAILURES[1].record}, not {RUN_FAILURES_30M}")
_PACKETS_6H = _PACKETS[1].record
_QUARANTINED_6H = _QUARANTINED[1].record
_EXPORTER_ERRORS_30M = _EXPORTER_ERRORS[1].record

RULES = RuleFile(
    "astromined-pipeline.rules.yml",
    "astromined-pipeline.rules",
    header=comment(
        """
        Pipeline alerts: Dagster runs, the daemon, asset freshness, telemetry quality and the exporter itself.
        Metric names: docs/contracts.md (served by astromined/monitoring/). Unit tests: ../tests/.
        Every alert: labels severity + team, annotations summary + description + runbook_url (docs/runbooks/).
        """
    ),
    rules=(
        *_RUN_FAILURES,
        *_PACKETS,
        *_QUARANTINED,
        Record(
            PACKETS_QUARANTINED_RATIO_6H,
            expr(
                f"""
                sum by (cluster) ({_PACKETS_6H}{{outcome="quarantined"}})
                /
                sum by (cluster) ({_PACKETS_6H})
                """
            ),
            comment="Share of ingested packets quarantined over the last 6 hours (NaN, i.e. no alert, "
            "without ingest).",
        ),
        *_EXPORTER_ERRORS,
        Record(
            RUN_STARTED_MAX_SECONDS,
            f"vector({RUN_STARTED_MAX_S})",
            comment=comment(
                """
                The longest a run may stay STARTED before AstrominedRunHung fires, in seconds (alert_values.py
                RUN_STARTED_MAX_S): the alert and its runbook read this series.
                """
            ),
        ),
        alert(
            "AstrominedPipelineRunsFailing",
            f"{RUN_FAILURES_30M} > 0",
            summary="Runs of the Dagster job {{ $labels.job }} are failing.",
            description=(
                "At least one run of the Dagster job {{ $labels.job }} ended in FAILURE in the last 30 "
                "minutes, so a day's telemetry, features or model did not reach the uplink package. The "
                "run-failure sensor posts each failed run (AstrominedRunFailed, with run_id and step); this "
                "alert is the safety net that holds even when the sensor or the daemon is not running."
            ),
        ),
        alert(
            "AstrominedDaemonHeartbeatStale",
            "max by (cluster, daemon) (astromined_daemon_heartbeat_age_seconds) > "
            + str(DAEMON_HEARTBEAT_MAX_AGE_S),
            summary="The Dagster daemon {{ $labels.daemon }} has not sent a heartbeat for over "
            + in_words(DAEMON_HEARTBEAT_MAX_AGE_S)
            + ".",
            description=(
                "The {{ $labels.daemon }} daemon's latest heartbeat is {{ $value | humanizeDuration }} old. "
                "Without it schedules (daily_retrain, readiness_every_5_minutes), sensors (downlink "
                "arrivals, drift, run failures) or the run queue stop silently."
            ),
        ),
        alert(
            "AstrominedAssetStale",
            'max by (cluster, asset) (astromined_asset_freshness_state{state="FAIL"}) == 1',
            summary="Asset {{ $labels.asset }} is stale (freshness FAIL).",
            description=(
                "The freshness policy of {{ $labels.asset }} has been failing for "
                + held_for("AstrominedAssetStale")
                + ": its latest materialization is older than the policy allows, so everything downstream "
                "of it (and finally the uplink package) works on old data."
            ),
        ),
        alert(
            "AstrominedQuarantineRateHigh",
            f"{PACKETS_QUARANTINED_RATIO_6H} > {QUARANTINE_RATE_MAX}",
            summary="{{ $value | humanizePercentage }} of the telemetry packets ingested in the last 6 h "
            "were quarantined.",
            description=(
                f"More than {percent(QUARANTINE_RATE_MAX)} of the packets raw_telemetry ingested in the last "
                "6 hours were quarantined (the same limit as the quarantine_rate_below_threshold asset "
                'check). Most frequent reason: {{ with query "topk(1, sum by (reason) ('
                + _QUARANTINED_6H
                + ' > 0))" }}{{ with . | first }}{{ .Labels.reason }}{{ end }}{{ else }}unknown{{ end }}.'
            ),
        ),
        alert(
            "AstrominedExporterDown",
            f'up{{job="{EXPORTER_JOB}"}} == 0 or absent(up{{job="{EXPORTER_JOB}"}})',
            summary="Prometheus cannot scrape the AstroMined pipeline exporter.",
            description=(
                f"The {EXPORTER_JOB} target has been down or missing for "
                f"{held_for('AstrominedExporterDown')}. Every pipeline alert (run failures, freshness, "
                "drift, latency SLO) is blind until it is back."
            ),
        ),
        alert(
            "AstrominedExporterStale",
            "time() - max by (cluster) (astromined_exporter_last_successful_refresh_timestamp_seconds) > "
            + str(EXPORTER_REFRESH_MAX_AGE_S),
            summary="The AstroMined pipeline exporter serves stale metrics.",
            description=(
                "The exporter is scraped, but its latest refresh that read every source of the Dagster "
                "instance (run table, event log, run queue, freshness, ticks, heartbeats) was "
                "{{ if gt $value 1e9 }}never{{ else }}{{ $value | humanizeDuration }} ago{{ end }}. Every "
                "pipeline alert sees frozen values until it refreshes again (the database is unreachable, "
                "or the refresh thread is stuck)."
            ),
        ),
        alert(
            "AstrominedExporterErrors",
            f"sum by (cluster, kind) ({_EXPORTER_ERRORS_30M}) > 0",
            summary="The pipeline exporter could not read {{ $labels.kind }} ({{ $value }} errors in 30 "
            "minutes).",
            description=(
                "The exporter skipped or could not read {{ $value }} {{ $labels.kind }} record(s) or "
                "source(s) in the last 30 minutes (astromined_exporter_errors_total"
                '{kind="{{ $labels.kind }}"}). The metrics (and the alerts and dashboards on them) miss '
                "what was skipped; its log names the run, record and metadata key at fault."
            ),
        ),
        alert(
            "AstrominedRunsStuckInQueue",
            expr(
                f"""
                (
                  max by (cluster) (astromined_queued_run_oldest_age_seconds) > {QUEUED_RUN_MAX_AGE_IDLE_S}
                  unless on (cluster)
                  sum by (cluster) (astromined_runs{{status=~"STARTING|STARTED|CANCELING"}}) > 0
                )
                or
                max by (cluster) (astromined_queued_run_oldest_age_seconds) > {QUEUED_RUN_MAX_AGE_S}
                """
            ),
            summary="A Dagster run has been waiting in the run queue for {{ $value | humanizeDuration }}.",
            description=(
                "The oldest QUEUED run has waited {{ $value | humanizeDuration }}: over "
                f"{in_words(QUEUED_RUN_MAX_AGE_IDLE_S)} while no run is in progress (the queue is not being "
                "served: QueuedRunCoordinator daemon, a run or tag concurrency limit held by runs that no "
                f"longer exist), or over {in_words(QUEUED_RUN_MAX_AGE_S)} in any case."
            ),
        ),
        alert(
            "AstrominedRunHung",
            expr(
                f"""
                max by (cluster, job) (astromined_started_run_oldest_age_seconds)
                > on () group_left ()
                {RUN_STARTED_MAX_SECONDS}
                """
            ),
            summary="A run of the Dagster job {{ $labels.job }} has been STARTED for "
            "{{ $value | humanizeDuration }}.",
            description=(
                "The oldest STARTED run of {{ $labels.job }} started {{ $value | humanizeDuration }} ago, "
                'longer than any run should take ({{ with query "'
                + RUN_STARTED_MAX_SECONDS
                + '" }}{{ . | first | value | humanizeDuration }}{{ end }}). Its run worker is probably gone '
                "(killed, evicted) while the run still holds its concurrency slots (the gpu pool of "
                "candidate_model): later runs wait behind it."
            ),
        ),
        alert(
            "AstrominedInstigatorTicksFailing",
            expr(
                f"""
                max by (cluster, name, type) (astromined_instigator_last_tick_status{{status="FAILURE"}}) == 1
                or
                max by (cluster, name, type) (astromined_instigator_failed_ticks_1h) >= {INSTIGATOR_FAILED_TICKS_1H_MAX}
                """  # noqa: E501 - one line of PromQL
            ),
            summary="The {{ $labels.type }} {{ $labels.name }} is failing its ticks.",
            description=(
                "For "
                + held_for("AstrominedInstigatorTicksFailing")
                + " the latest tick of the {{ $labels.type }} {{ $labels.name }} has failed, or it failed "
                f"at least {INSTIGATOR_FAILED_TICKS_1H_MAX} ticks in the last hour "
                '({{ with printf "max(astromined_instigator_failed_ticks_1h{name=%q, type=%q})" '
                "$labels.name $labels.type | query }}{{ . | first | value }}{{ else }}unknown{{ end }} "
                "failed). Whatever it triggers (downlink ingest, drift retraining, run-failure pages, the "
                "daily retrain) is not happening."
            ),
        ),
        alert(
            "AstrominedAssetFreshnessNotEvaluated",
            expr(
                f"""
                (
                  max by (cluster, asset) (astromined_asset_freshness_evaluated) == 0
                  and on (cluster, asset)
                  time() - max by (cluster, asset) (astromined_asset_last_materialization_timestamp_seconds) < {FRESHNESS_RECENT_MATERIALIZATION_DAYS} * 86400
                )
                or
                (
                  time() - max by (cluster, asset) (astromined_asset_freshness_state_timestamp_seconds) > {FRESHNESS_UNKNOWN_MAX_HOURS} * 3600
                  and on (cluster, asset)
                  max by (cluster, asset) (astromined_asset_freshness_state{{state="UNKNOWN"}}) == 1
                )
                """  # noqa: E501 - one line of PromQL each
            ),
            summary="The freshness of asset {{ $labels.asset }} is not being evaluated.",
            description=(
                "{{ if eq $value 0.0 }}The freshness daemon has never evaluated {{ $labels.asset }}, which "
                f"was materialized in the last {in_words(FRESHNESS_RECENT_MATERIALIZATION_DAYS * 86400)}"
                "{{ else }}The freshness policy of {{ $labels.asset }} has had no verdict (UNKNOWN: never "
                "materialized) for {{ $value | humanizeDuration }}{{ end }}, so AstrominedAssetStale cannot "
                "fire for it: a stale {{ $labels.asset }} would go unnoticed."
            ),
        ),
    ),
)
