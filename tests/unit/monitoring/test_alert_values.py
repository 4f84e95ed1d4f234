"""astromined/monitoring/alert_values.py is the one place for the monitoring values: it agrees with the
product code and the docs that state them, the dashboards carry its thresholds, and no rule or dashboard
module writes one of them by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from astromined.monitoring import alert_values, catalog
from astromined.monitoring.alert_values import ALERT_NAMES, ALERTS, SLO_ALERT, SLO_BURN_RATE_TIERS

REPO = Path(__file__).resolve().parents[3]
MONITORING_CODE = REPO / "astromined" / "monitoring"
DASHBOARDS_DIR = REPO / "infra" / "monitoring" / "dashboards"
DOCS = REPO / "docs"


def test_cluster_names_are_the_executors_contexts_and_the_deploy_overlays():
    from astromined.placement.settings import DEFAULT_CLUSTERS

    assert {context: cluster["site"] for context, cluster in DEFAULT_CLUSTERS.items()} == {
        alert_values.ONPREM_CLUSTER: "onprem",
        alert_values.CLOUD_CLUSTER: "cloud",
    }
    overlays = {path.name for path in (REPO / "infra" / "k8s" / "overlays").iterdir() if path.is_dir()}
    assert overlays == set(alert_values.CLUSTERS)


def test_quarantine_limit_is_the_asset_checks_limit():
    from assets.telemetry import RawTelemetryConfig

    assert RawTelemetryConfig().max_quarantine_rate == alert_values.QUARANTINE_RATE_MAX


def test_drift_lines_are_the_drift_sensors_defaults():
    from astromined.features.drift import DriftThresholds

    defaults = DriftThresholds()
    assert defaults.psi == alert_values.DRIFT_PSI_THRESHOLD
    assert defaults.class_mix_shift == alert_values.DRIFT_CLASS_MIX_SHIFT_THRESHOLD


def test_slo_objective_is_a_latency_bucket():
    assert float(alert_values.SLO_LATENCY_S) in catalog.DATA_TO_MODEL_LATENCY.buckets
    assert {window for tier in SLO_BURN_RATE_TIERS for w in tier.windows for window in w[:2]} <= set(
        alert_values.SLO_WINDOWS
    )


def test_contracts_doc_states_the_runbook_url():
    text = (DOCS / "contracts.md").read_text()
    assert f"`runbook_url: {alert_values.RUNBOOK_BASE_URL}<AlertName>.md`" in text


def test_monitoring_doc_alert_table_has_each_alerts_severity_and_team():
    """docs/monitoring.md's table (alert | severity | team | fires when) against alert_values."""
    rows = re.findall(
        r"^\| `(Astromined\w+)` \| ([a-z /]+) \| (\w+) \|", (DOCS / "monitoring.md").read_text(), re.MULTILINE
    )
    documented = {name: (severity, team) for name, severity, team in rows}
    expected = {name: (values.severity, values.team) for name, values in ALERTS.items()}
    expected[SLO_ALERT] = (
        " / ".join(tier.values.severity for tier in SLO_BURN_RATE_TIERS),
        SLO_BURN_RATE_TIERS[0].values.team,
    )
    assert set(documented) == ALERT_NAMES
    assert documented == expected


def _expected_routing() -> dict[str, list[tuple[str, str]]]:
    expected = {name: [(values.severity, values.team)] for name, values in ALERTS.items()}
    expected[SLO_ALERT] = [(tier.values.severity, tier.values.team) for tier in SLO_BURN_RATE_TIERS]
    expected[alert_values.RUN_FAILED_ALERT] = [
        (alert_values.RUN_FAILED.severity, alert_values.RUN_FAILED.team)
    ]
    return expected


def test_each_runbook_states_its_alerts_routing_and_rule_file():
    """The line under each runbook's title: **Severity** <severity> (<... team ...>) · **Rule** `<file>`."""
    from astromined.monitoring.rules import generate, spec

    rule_file_of = {
        rule.alert: rule_file.filename
        for rule_file in generate.rule_files()
        for rule in rule_file.rules
        if isinstance(rule, spec.Alert)
    }
    for name, routing in _expected_routing().items():
        text = (DOCS / "runbooks" / f"{name}.md").read_text()
        header = re.search(r"^\*\*Severity\*\* (.+?) · \*\*(Rule|Source)\*\*\s+(\S+)", text, re.MULTILINE)
        assert header, f"{name}.md: no **Severity** ... · **Rule** line"
        stated = [
            (severity, next(team for team in alert_values.TEAMS if team in words.split()))
            for severity, words in re.findall(r"(critical|warning|info) \(([^)]*)\)", header.group(1))
        ]
        assert stated == routing, name
        if name in rule_file_of:
            assert header.group(3).startswith(f"`infra/monitoring/prometheus/rules/{rule_file_of[name]}`"), (
                name
            )


def _panel(dashboard: str, title: str, kind: str) -> dict:
    model = json.loads((DASHBOARDS_DIR / dashboard).read_text())
    (panel,) = (p for p in model["panels"] if p.get("title") == title and p["type"] == kind)
    return panel


def _step(panel: dict, color: str) -> float:
    (value,) = (
        s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["color"] == color
    )
    return value


@pytest.mark.parametrize(
    ("dashboard", "title", "kind", "color", "value"),
    [
        ("pipeline-health.json", "Stalest daemon heartbeat", "stat", "red", "DAEMON_HEARTBEAT_MAX_AGE_S"),
        ("pipeline-health.json", "Daemon heartbeat age", "timeseries", "red", "DAEMON_HEARTBEAT_MAX_AGE_S"),
        ("pipeline-health.json", "Data-to-model latency", "timeseries", "red", "SLO_LATENCY_S"),
        ("pipeline-health.json", "Burn-rate windows", "timeseries", "red", "SLO_ERROR_BUDGET"),
        ("data-freshness-quality.json", "Quarantined packets (6 h)", "stat", "red", "QUARANTINE_RATE_MAX"),
        ("data-freshness-quality.json", "Quarantine rate (6 h)", "timeseries", "red", "QUARANTINE_RATE_MAX"),
        ("drift.json", "Largest PSI", "stat", "orange", "DRIFT_PSI_THRESHOLD"),
        ("drift.json", "Class-mix shift", "timeseries", "orange", "DRIFT_CLASS_MIX_SHIFT_THRESHOLD"),
        ("hybrid-gpu-usage.json", "On-prem GPUs requested", "stat", "red", "ONPREM_GPU_SATURATION_RATIO"),
        (
            "hybrid-gpu-usage.json",
            "GPUs requested / allocatable",
            "timeseries",
            "red",
            "ONPREM_GPU_SATURATION_RATIO",
        ),
        ("hybrid-gpu-usage.json", "Cloud GPU-hours (24 h)", "stat", "red", "CLOUD_GPU_HOURS_BUDGET_DAILY"),
    ],
)
def test_dashboard_threshold_is_the_alerts_value(dashboard, title, kind, color, value):
    assert _step(_panel(dashboard, title, kind), color) == getattr(alert_values, value)


def test_onprem_gpu_panel_selects_the_onprem_cluster():
    target = _panel("hybrid-gpu-usage.json", "On-prem GPUs requested", "stat")["targets"][0]["expr"]
    assert f'cluster="{alert_values.ONPREM_CLUSTER}"' in target


# Values only alert_values.py may spell out: a rule or dashboard module with one of these literals in it
# repeats a value by hand.
_LITERALS = {
    "runbook URL": re.compile(r"git\.astromined\.internal|/-/(blob|tree)/"),
    "cluster name": re.compile(r"""["'{=(, ]eks(-a)?["'}),. ]"""),
    "namespace matcher": re.compile(r'namespace="astromined"'),
    "exporter job": re.compile(r'job="astromined-exporter"'),
    "shared recording rule": re.compile(
        r"cluster:gpu_requests_scheduled:ratio|astromined:cloud_gpu_hours_budget:daily|"
        r"astromined:data_to_model_latency:error_ratio_rate\d|cluster_job:astromined_run_failures:increase"
    ),
}


@pytest.mark.parametrize(
    "path",
    sorted((MONITORING_CODE / "rules").glob("*.py")) + sorted((MONITORING_CODE / "dashboards").glob("*.py")),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_rule_and_dashboard_modules_write_no_shared_value_by_hand(path):
    text = path.read_text()
    found = {
        kind: pattern.search(text).group(0) for kind, pattern in _LITERALS.items() if pattern.search(text)
    }
    assert not found, f"{path.name} spells out {found}: use astromined/monitoring/alert_values.py"


def test_the_literal_scan_would_see_a_hand_written_value():
    samples = {
        "runbook URL": "https://git.astromined.internal/x",
        "cluster name": 'x{cluster="eks-a"}',
        "namespace matcher": 'kube_pod_info{namespace="astromined"}',
        "exporter job": 'up{job="astromined-exporter"}',
        "shared recording rule": "max(cluster:gpu_requests_scheduled:ratio)",
    }
    assert {kind for kind, sample in samples.items() if _LITERALS[kind].search(sample)} == set(_LITERALS)
    assert not _LITERALS["cluster name"].search("on (cluster) group_left () keys, weeks")
