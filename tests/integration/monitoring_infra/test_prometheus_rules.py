"""The Prometheus side of infra/monitoring/: config and rules pass promtool, every alert is unit-tested
firing and not firing, carries the contract's labels and annotations, has a runbook, and reads only
metrics that exist (the exporter's catalog, kube-state-metrics/cAdvisor, recording rules)."""

from __future__ import annotations

from collections import defaultdict

import pytest
import yaml
from support.monitoring_stack import (
    PROMETHEUS_CONFIG,
    RULE_TESTS_DIR,
    RULES_DIR,
    RUNBOOK_URL_PREFIX,
    RUNBOOKS_DIR,
    SEVERITIES,
    TEAMS,
    alert_rules,
    all_rules,
    known_metric_names,
    metric_names_in,
    render_local_prometheus_config,
    require_tool,
    rule_files,
    run_tool,
    template_queries,
)

from astromined.monitoring import alert_values

ALERT_NAMES = sorted({rule["alert"] for rule in alert_rules()})


def test_promtool_check_rules():
    promtool = require_tool("promtool")
    result = run_tool([promtool, "check", "rules", *map(str, rule_files())])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    promtool = require_tool("promtool")
    test_files = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert test_files
    result = run_tool([promtool, "test", "rules", *(path.name for path in test_files)], cwd=RULE_TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_prometheus_config_passes_promtool(tmp_path):
    """The loopback variant, rendered as the e2e test renders it, with the real rule files."""
    promtool = require_tool("promtool")
    config = render_local_prometheus_config(
        tmp_path / "prometheus.yml", exporter_target="127.0.0.1:9464", alertmanager_target="127.0.0.1:9093"
    )
    result = run_tool([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout, result.stdout


def test_production_prometheus_config_passes_promtool(tmp_path):
    """Debian's Prometheus is built without Kubernetes service discovery, so each kubernetes_sd_configs
    block is swapped for a static target before `promtool check config --syntax-only` (mounted secret
    files do not exist here); relabelling, auth, TLS and the rest are checked as written."""
    promtool = require_tool("promtool")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    sd_blocks = 0
    for section in [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]:
        for sd in section.pop("kubernetes_sd_configs", []):
            sd_blocks += 1
            assert sd["role"] in {"node", "endpoints", "pod", "service"}, sd
        section.setdefault("static_configs", [{"targets": ["127.0.0.1:9"]}])
    assert sd_blocks >= 5
    config["rule_files"] = [
        str(RULES_DIR / pattern.removeprefix("rules/")) for pattern in config["rule_files"]
    ]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = run_tool([promtool, "check", "config", "--syntax-only", str(checked)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_scrape_config_labels_every_job_with_its_cluster():
    """The `cluster` values the rules and dashboards select (alert_values.CLUSTERS) are the ones the scrape
    config writes, and the exporter's scrape job is the one AstrominedExporterDown watches."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    clusters = {}
    for job in config["scrape_configs"]:
        labels = [r["replacement"] for r in job["relabel_configs"] if r.get("target_label") == "cluster"]
        assert len(labels) == 1, job["job_name"]
        clusters[job["job_name"]] = labels[0]
    assert set(clusters.values()) == set(alert_values.CLUSTERS) == {"eks-a", "eks"}
    assert {name for name, cluster in clusters.items() if cluster == alert_values.CLOUD_CLUSTER} == {
        "kube-state-metrics-eks",
        "cadvisor-eks",
    }
    exporter = next(job for job in config["scrape_configs"] if job["job_name"] == alert_values.EXPORTER_JOB)
    assert exporter["honor_labels"] is True, (
        "the exporter's `job` label is the Dagster job (docs/contracts.md)"
    )


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_alert_follows_the_contract(alert):
    """Labels severity/team, annotations summary/description/runbook_url, and a runbook that exists."""
    for rule in (r for r in alert_rules() if r["alert"] == alert):
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in SEVERITIES, rule
        assert labels.get("team") in TEAMS, rule
        assert annotations.get("summary") and annotations.get("description"), rule
        assert annotations.get("runbook_url") == f"{RUNBOOK_URL_PREFIX}{alert}.md"
    runbook = RUNBOOKS_DIR / f"{alert}.md"
    assert runbook.is_file(), f"missing runbook {runbook}"
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n")
    for section in ("## What it means", "## Impact", "## Diagnose", "## Fix", "## Silence"):
        assert section in text, f"{runbook.name} lacks {section}"


def test_every_runbook_belongs_to_an_alert_and_is_indexed():
    """No orphan runbooks; AstrominedRunFailed is posted by the run-failure sensor, not by a rule."""
    alerts = {*ALERT_NAMES, "AstrominedRunFailed"}
    pages = {path.stem for path in RUNBOOKS_DIR.glob("*.md")} - {"README"}
    assert pages == alerts
    index = (RUNBOOKS_DIR / "README.md").read_text()
    assert all(f"[{alert}]({alert}.md)" in index for alert in alerts)


def _unit_test_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"firing": n, "not_firing": n} over every promtool test file."""
    cases: dict[str, dict[str, int]] = defaultdict(lambda: {"firing": 0, "not_firing": 0})
    for path in sorted(RULE_TESTS_DIR.glob("*.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                expected = case.get("exp_alerts") or []
                cases[case["alertname"]]["firing" if expected else "not_firing"] += 1
                for alert in expected:
                    assert alert["exp_labels"].get("alertname") == case["alertname"], (path.name, case)
                    assert {"severity", "team"} <= alert["exp_labels"].keys(), (path.name, case)
                    assert {"summary", "description", "runbook_url"} <= alert.get(
                        "exp_annotations", {}
                    ).keys()
    return cases


def test_every_alert_has_a_firing_and_a_not_firing_unit_test():
    cases = _unit_test_cases()
    missing = [
        f"{alert}: {kind}"
        for alert in ALERT_NAMES
        for kind in ("firing", "not_firing")
        if not cases[alert][kind]
    ]
    assert not missing, f"alerts without promtool test cases: {missing}"
    assert not set(cases) - set(ALERT_NAMES), f"tests for unknown alerts: {set(cases) - set(ALERT_NAMES)}"


def test_every_rule_file_has_a_unit_test_file():
    tested = set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        tested.update(p.removeprefix("../rules/") for p in yaml.safe_load(path.read_text())["rule_files"])
    assert {path.name for path in rule_files()} <= tested


def test_rules_read_only_known_metrics():
    known = known_metric_names()
    unknown = {}
    for rule in all_rules():
        names = metric_names_in(rule["expr"])
        assert names or rule["expr"].startswith("vector("), f"no metric found in {rule}"
        for annotation in rule.get("annotations", {}).values():
            for query in template_queries(annotation):
                names |= metric_names_in(query)
        if names - known:
            unknown[rule.get("alert") or rule.get("record")] = sorted(names - known)
    assert not unknown, f"rules selecting metrics nobody exports: {unknown}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (job) (increase(astromined_run_failures_total{job=~"a|b"}[30m]) > 0)',
            {"astromined_run_failures_total"},
        ),
        ("a:b:c / on (cluster) group_left () kube_pod_info offset 1d", {"a:b:c", "kube_pod_info"}),
        ('up{job="x"} == 0 or absent(up{job="x"})', {"up"}),
        (
            'histogram_quantile(0.9, sum by (le) (rate(x_bucket{le=~"3600(\\\\.0)?"}[$__rate_interval])))',
            {"x_bucket"},
        ),
        ("time() - max(astromined_x) > 1e3 and vector(1)", {"astromined_x"}),
    ],
)
def test_metric_name_extraction(expr, names):
    assert metric_names_in(expr) == names
