"""The Prometheus rule files are generated from Python: the committed YAML is exactly the generator's
output, reads back to the rules as written in Python, and takes severity, team, ``for``, runbook URL and
thresholds from astromined/monitoring/alert_values.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astromined.monitoring import alert_values
from astromined.monitoring.alert_values import ALERT_NAMES, ALERTS, SLO_ALERT, SLO_BURN_RATE_TIERS
from astromined.monitoring.rules import generate, spec

RULES_DIR = Path(__file__).resolve().parents[3] / "infra" / "monitoring" / "prometheus" / "rules"


def _committed_rules() -> list[dict]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_committed_rule_files_match_the_generator():
    assert generate.DEFAULT_OUT_DIR == RULES_DIR
    problems = generate.differences(RULES_DIR)
    assert not problems, f"{problems}: run `make dashboards` and commit the YAML"
    assert sorted(p.name for p in RULES_DIR.glob("*.yml")) == sorted(generate.render_all())


def test_check_mode_names_a_stale_a_missing_and_a_foreign_file(tmp_path):
    generate.write_all(tmp_path)
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / "astromined-pipeline.rules.yml"
    stale.write_text(stale.read_text().replace("> 300", "> 600", 1))
    (tmp_path / "kubernetes.rules.yml").unlink()
    (tmp_path / "hand-written.rules.yml").write_text("groups: []\n")
    assert generate.differences(tmp_path) == [
        "astromined-pipeline.rules.yml: differs from the generator",
        "kubernetes.rules.yml: missing",
        "hand-written.rules.yml: not produced by the generator",
    ]
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1


def test_rendered_yaml_reads_back_to_the_rules_as_written():
    """Folded descriptions, `|` expressions and comments change nothing a YAML parser sees."""
    rendered = generate.render_all()
    for rule_file in generate.rule_files():
        text = rendered[rule_file.filename]
        assert yaml.safe_load(text) == rule_file.document(), rule_file.filename
        assert text.startswith("# GENERATED from astromined/monitoring/rules/"), text[:120]


def test_every_alert_takes_its_routing_and_runbook_from_alert_values():
    alerts = [rule for rule in _committed_rules() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == ALERT_NAMES
    tiers = iter(SLO_BURN_RATE_TIERS)
    for rule in alerts:
        values = next(tiers).values if rule["alert"] == SLO_ALERT else ALERTS[rule["alert"]]
        assert rule["labels"]["severity"] == values.severity, rule["alert"]
        assert rule["labels"]["team"] == values.team, rule["alert"]
        assert rule.get("for") == values.for_, rule["alert"]
        assert rule["annotations"]["runbook_url"] == alert_values.runbook_url(rule["alert"])
    assert next(tiers, None) is None, "an SLO burn-rate tier has no rule"
    # One rule per alert, except the SLO alert's one per tier.
    names = [rule["alert"] for rule in alerts]
    assert {name: names.count(name) for name in names if names.count(name) > 1} == {
        SLO_ALERT: len(SLO_BURN_RATE_TIERS)
    }


def test_thresholds_reach_the_expressions_and_the_texts():
    """A value changed in alert_values.py changes the expression and the words that state it."""
    by_name = {rule.get("alert") or rule.get("record"): rule for rule in _committed_rules()}
    heartbeat = by_name["AstrominedDaemonHeartbeatStale"]
    assert heartbeat["expr"].endswith(f"> {alert_values.DAEMON_HEARTBEAT_MAX_AGE_S}")
    assert "for over 5 minutes" in heartbeat["annotations"]["summary"]
    quarantine = by_name["AstrominedQuarantineRateHigh"]
    assert quarantine["expr"] == f"{alert_values.PACKETS_QUARANTINED_RATIO_6H} > 0.02"
    assert quarantine["annotations"]["description"].startswith("More than 2 % of the packets")
    assert by_name[alert_values.RUN_STARTED_MAX_SECONDS]["expr"] == "vector(14400)"
    assert by_name[alert_values.CLOUD_GPU_HOURS_BUDGET]["expr"] == "vector(24)"
    saturated = by_name["AstrominedOnPremGPUsSaturated"]["expr"]
    assert f'{{cluster="{alert_values.ONPREM_CLUSTER}"}} >= 0.9' in saturated
    assert "Neither eks-a nor eks passed" in by_name["AstrominedNoGPUSiteReady"]["annotations"]["description"]
    burn = [rule for rule in _committed_rules() if rule.get("alert") == SLO_ALERT]
    assert "error_ratio_rate1h > (14.4 * 0.01)" in burn[0]["expr"]
    assert "at least 6 times too fast" in burn[0]["annotations"]["description"]
    assert "error_ratio_rate3d > (1 * 0.01)" in burn[1]["expr"]


def test_shared_recording_rule_names_are_recorded():
    """The names alert_values gives the dashboards are the names the rules record."""
    recorded = {rule["record"] for rule in _committed_rules() if "record" in rule}
    shared = {
        alert_values.RUN_FAILURES_30M,
        alert_values.PACKETS_QUARANTINED_RATIO_6H,
        alert_values.PROMOTIONS_1D,
        alert_values.GPU_ALLOCATABLE,
        alert_values.GPU_REQUESTS_SCHEDULED,
        alert_values.GPU_REQUESTS_SCHEDULED_RATIO,
        alert_values.GPU_HOURS_1D,
        alert_values.CLOUD_GPU_HOURS_BUDGET,
        alert_values.RUN_STARTED_MAX_SECONDS,
        *(alert_values.slo_error_ratio(window) for window in alert_values.SLO_WINDOWS),
    }
    assert shared <= recorded, shared - recorded


def test_an_alert_without_values_is_refused():
    with pytest.raises(KeyError, match=r"AstrominedNoSuchAlert.*alert_values\.py"):
        spec.alert("AstrominedNoSuchAlert", "up == 0", summary="s", description="d")
    with pytest.raises(ValueError, match="severity and team come from alert_values"):
        spec.alert(
            "AstrominedExporterDown", "up == 0", summary="s", description="d", extra_labels={"team": "x"}
        )


def test_rendering_writes_comments_above_their_rule_and_wraps_long_ones():
    rule_file = spec.RuleFile(
        "x.rules.yml",
        "x.rules",
        rules=(
            spec.Record("a:b:c", "vector(1)", comment="first line\n  indented line"),
            spec.Record("a:b:d", "vector(2)", comment="word " * 40),
        ),
        header="what this file is",
    )
    text = spec.render(rule_file, "somewhere.py")
    assert text.splitlines()[:2] == [
        "# GENERATED from somewhere.py by `make dashboards`: do not edit.",
        "# what this file is",
    ]
    assert "      # first line\n      #   indented line\n      - record: a:b:c\n" in text
    assert all(len(line) <= 110 for line in text.splitlines())
    assert yaml.safe_load(text) == rule_file.document()


@pytest.mark.parametrize(
    ("value", "words"),
    [(300, "5 minutes"), ("5m", "5 minutes"), (3600, "1 hour"), (21600, "6 hours"), ("30d", "30 days")],
)
def test_values_in_words(value, words):
    assert alert_values.in_words(value) == words


def test_percent_and_durations():
    assert alert_values.percent(0.02) == "2 %"
    assert alert_values.percent(0.9) == "90 %"
    assert alert_values.percent(1 - 0.01) == "99 %"
    assert alert_values.duration_seconds("2h") == 7200
    with pytest.raises(ValueError, match="one-unit Prometheus duration"):
        alert_values.duration_seconds("1h30m")
    with pytest.raises(ValueError, match="severity must be one of"):
        alert_values.AlertValues("page", "mlops")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an AstroMined alert name"):
        alert_values.runbook_url("../README")
