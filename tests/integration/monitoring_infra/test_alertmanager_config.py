"""Alertmanager routing, secrets and inhibition: amtool offline checks, then a real Alertmanager on
127.0.0.1 for the inhibition rules (amtool cannot evaluate those)."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request

import pytest
import yaml
from support.monitoring_stack import (
    ALERTMANAGER_CONFIG,
    alert_rules,
    alertmanager,
    alertmanager_config_for_loopback,
    run_tool,
)
from support.tools import require_tool
from support.waiting import poll_until

# (labels, receiver): representative label sets and the one receiver each must reach.
ROUTES = [
    (
        {
            "alertname": "AstrominedPipelineRunsFailing",
            "severity": "critical",
            "team": "mlops",
            "job": "downlink_to_uplink",
        },
        "mlops-pager",
    ),
    (
        {
            "alertname": "AstrominedRunFailed",
            "severity": "critical",
            "team": "mlops",
            "job": "ingest_downlinks",
            "run_id": "8a1f",
        },
        "mlops-pager",
    ),
    (
        {
            "alertname": "AstrominedAssetStale",
            "severity": "warning",
            "team": "mlops",
            "asset": "raw_telemetry",
        },
        "mlops-slack",
    ),
    ({"alertname": "AstrominedDriftDetected", "severity": "info", "team": "mlops"}, "mlops-slack-info"),
    ({"alertname": "AstrominedExporterDown", "severity": "critical", "team": "platform"}, "platform-pager"),
    (
        {
            "alertname": "AstrominedNodeNotReady",
            "severity": "warning",
            "team": "platform",
            "cluster": "eks-a",
            "node": "gpu-07",
        },
        "platform-slack",
    ),
    ({"alertname": "SomeCapacityNote", "severity": "info", "team": "platform"}, "platform-slack-info"),
    ({"alertname": "RuleWithoutOwner", "severity": "critical"}, "platform-slack"),
]
EXPECTED_RECEIVER = {
    ("mlops", "critical"): "mlops-pager",
    ("mlops", "warning"): "mlops-slack",
    ("mlops", "info"): "mlops-slack-info",
    ("platform", "critical"): "platform-pager",
    ("platform", "warning"): "platform-slack",
    ("platform", "info"): "platform-slack-info",
}


def _route(labels: dict[str, str], receiver: str) -> None:
    amtool = require_tool("amtool")
    args = [
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *(f"{key}={value}" for key, value in labels.items()),
    ]
    result = run_tool(args)
    assert result.returncode == 0, (
        f"{labels} -> {result.stdout.strip()} (expected {receiver}) {result.stderr}"
    )
    assert result.stdout.strip() == receiver


def test_amtool_check_config():
    amtool = require_tool("amtool")
    result = run_tool([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "3 inhibit rules" in result.stdout


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[labels["alertname"] for labels, _ in ROUTES])
def test_route_reaches_its_receiver(labels, receiver):
    _route(labels, receiver)


def test_amtool_rejects_a_wrong_receiver():
    """The route check can fail: a warning must not page."""
    amtool = require_tool("amtool")
    result = run_tool(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            "--verify.receivers=mlops-pager",
            "severity=warning",
            "team=mlops",
        ]
    )
    assert result.returncode != 0


def test_every_alert_rule_routes_by_its_team_and_severity():
    seen = set()
    for rule in alert_rules():
        key = (rule["labels"]["team"], rule["labels"]["severity"])
        if key in seen:
            continue
        seen.add(key)
        _route({"alertname": rule["alert"], "severity": key[1], "team": key[0]}, EXPECTED_RECEIVER[key])
    assert seen


def test_no_secret_in_the_config():
    text = ALERTMANAGER_CONFIG.read_text()
    config = yaml.safe_load(text)
    assert "hooks.slack.com" not in text
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack, receiver["name"]
            assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/"), receiver["name"]
        for webhook in receiver.get("webhook_configs", []):
            assert not re.search(r"//[^/@]+:[^/@]+@", webhook["url"]), "credentials in a webhook URL"
            assert webhook["http_config"]["authorization"]["credentials_file"].startswith(
                "/etc/alertmanager/secrets/"
            )
    assert "global" not in config or "slack_api_url" not in config["global"]


def _post_alerts(base_url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        base_url + "/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _alert(**labels: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {
        "labels": labels,
        "annotations": {"summary": "test", "description": "test", "runbook_url": "https://example.invalid"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
    }


def test_inhibition_rules_in_a_real_alertmanager(tmp_path):
    config = alertmanager_config_for_loopback(tmp_path, "http://127.0.0.1:9/hook", "http://127.0.0.1:9/slack")
    node_down = _alert(
        alertname="AstrominedNodeNotReady",
        severity="warning",
        team="platform",
        cluster="eks-a",
        node="gpu-07",
    )
    memory_same_node = _alert(
        alertname="AstrominedPodMemoryHigh",
        severity="warning",
        team="mlops",
        cluster="eks-a",
        node="gpu-07",
        namespace="astromined",
        pod="dagster-step-1",
        container="dagster",
    )
    memory_other_node = _alert(
        alertname="AstrominedPodMemoryHigh",
        severity="warning",
        team="mlops",
        cluster="eks-a",
        node="gpu-08",
        namespace="astromined",
        pod="dagster-step-2",
        container="dagster",
    )
    burn_critical = _alert(
        alertname="AstrominedDataToModelLatencyBudgetBurn",
        severity="critical",
        team="mlops",
        slo="data-to-model-latency",
    )
    burn_warning = _alert(
        alertname="AstrominedDataToModelLatencyBudgetBurn",
        severity="warning",
        team="mlops",
        slo="data-to-model-latency",
    )
    sensor_page = _alert(
        alertname="AstrominedRunFailed",
        severity="critical",
        team="mlops",
        job="downlink_to_uplink",
        run_id="8a1f",
        step="candidate_model",
    )
    safety_net_same_job = _alert(
        alertname="AstrominedPipelineRunsFailing",
        severity="critical",
        team="mlops",
        cluster="eks-a",
        job="downlink_to_uplink",
    )
    safety_net_other_job = _alert(
        alertname="AstrominedPipelineRunsFailing",
        severity="critical",
        team="mlops",
        cluster="eks-a",
        job="ingest_downlinks",
    )
    expected_inhibited = {
        ("AstrominedPodMemoryHigh", "gpu-07"): True,
        ("AstrominedPodMemoryHigh", "gpu-08"): False,
        ("AstrominedDataToModelLatencyBudgetBurn", "warning"): True,
        ("AstrominedDataToModelLatencyBudgetBurn", "critical"): False,
        ("AstrominedPipelineRunsFailing", "downlink_to_uplink"): True,
        ("AstrominedPipelineRunsFailing", "ingest_downlinks"): False,
        ("AstrominedNodeNotReady", "gpu-07"): False,
        ("AstrominedRunFailed", "downlink_to_uplink"): False,
    }

    def key(labels: dict) -> tuple[str, str]:
        name = labels["alertname"]
        detail = {
            "AstrominedDataToModelLatencyBudgetBurn": "severity",
            "AstrominedPipelineRunsFailing": "job",
            "AstrominedRunFailed": "job",
        }.get(name, "node")
        return name, labels[detail]

    with alertmanager(tmp_path, config) as service:
        _post_alerts(
            service.base_url,
            [
                node_down,
                memory_same_node,
                memory_other_node,
                burn_critical,
                burn_warning,
                sensor_page,
                safety_net_same_job,
                safety_net_other_job,
            ],
        )

        def inhibited() -> dict[tuple[str, str], bool]:
            return {
                key(a["labels"]): bool(a["status"]["inhibitedBy"]) for a in service.get_json("/api/v2/alerts")
            }

        # Alertmanager applies inhibitions as the alerts arrive: poll until the picture is the expected one.
        poll_until(lambda: inhibited() == expected_inhibited, 60, interval_s=0.5)
        observed = inhibited()
    assert observed == expected_inhibited
