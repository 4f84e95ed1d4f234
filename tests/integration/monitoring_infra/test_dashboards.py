"""Dashboards as code: the committed JSON is exactly what the generator writes, every panel query uses
known metrics and declared variables, and every query runs without error on a real Prometheus."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from support.monitoring_stack import (
    DASHBOARDS_DIR,
    known_metric_names,
    metric_names_in,
    prometheus,
    render_local_prometheus_config,
)

from astromined.monitoring.dashboards import generate

# Grafana's built-in variables, replaced by what Grafana would send for a 24 h dashboard.
BUILTINS = {"__rate_interval": "2m", "__interval": "30s", "__range": "1d", "__range_s": "86400"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
EXPECTED_DASHBOARDS = {
    "pipeline-health.json",
    "data-freshness-quality.json",
    "drift.json",
    "model-quality.json",
    "hybrid-gpu-usage.json",
}


def _dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def _panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries() -> list[tuple[str, str, str, dict]]:
    """(dashboard file, panel title, expr, the dashboard's variables by name)."""
    found = []
    for name, model in _dashboards().items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        for panel in _panels(model["panels"]):
            found += [(name, panel["title"], t["expr"], variables) for t in panel.get("targets", [])]
        for variable in variables.values():
            if variable["type"] == "query":
                found.append(
                    (name, f"variable {variable['name']}", _variable_metric_query(variable), variables)
                )
    return found


def _variable_metric_query(variable: dict) -> str:
    match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
    assert match, f"variable {variable['name']}: unexpected query {variable['query']!r}"
    return f"count by ({match.group(2)}) ({match.group(1)})"


def _substitute(expr: str, variables: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        variable = variables.get(name)
        assert variable is not None, f"undeclared variable ${name} in {expr!r}"
        assert variable.get("includeAll") and variable.get("allValue"), f"${name} needs an All value"
        return variable["allValue"]

    return VARIABLE.sub(value, expr)


def test_committed_dashboards_match_the_generator():
    problems = generate.differences(DASHBOARDS_DIR)
    assert not problems, f"{problems}: run `make dashboards` and commit the JSON"
    assert set(_dashboards()) == EXPECTED_DASHBOARDS


def test_generator_check_mode_detects_a_stale_file(tmp_path):
    generate.write_all(tmp_path)
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / "drift.json"
    stale.write_text(stale.read_text().replace("Largest PSI", "Largest KS"))
    assert generate.differences(tmp_path) == ["drift.json: differs from the generator"]
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1


def test_dashboards_have_unique_uids_and_panel_ids():
    models = _dashboards()
    assert len({model["uid"] for model in models.values()}) == len(models)
    for name, model in models.items():
        ids = [panel["id"] for panel in _panels(model["panels"])]
        assert len(ids) == len(set(ids)), name
        assert all(
            p.get("datasource", {}).get("uid") == "${datasource}"
            for p in _panels(model["panels"])
            if p["type"] != "row"
        ), name


def test_panel_queries_use_known_metrics_and_declared_variables():
    known = known_metric_names()
    unknown = {}
    for name, title, expr, variables in _queries():
        _substitute(expr, variables)
        names = metric_names_in(expr)
        assert names, f"{name} / {title}: no metric in {expr!r}"
        if names - known:
            unknown[f"{name} / {title}"] = sorted(names - known)
    assert not unknown, f"panels selecting metrics nobody exports: {unknown}"


def _query_error(base_url: str, expr: str) -> str | None:
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
    return None if body.get("status") == "success" else f"{body.get('errorType')}: {body.get('error')}"


@pytest.mark.timeout(300)
def test_every_panel_query_runs_on_prometheus(tmp_path):
    """Prometheus with the real rules loaded (recording rules evaluating); empty results are fine."""
    config = render_local_prometheus_config(
        tmp_path / "prometheus.yml",
        exporter_target="127.0.0.1:9",
        alertmanager_target="127.0.0.1:9",
        interval="1s",
    )
    queries = _queries()
    assert len(queries) > 50
    with prometheus(tmp_path, config) as service:
        errors = {
            f"{name} / {title}: {expr}": error
            for name, title, expr, variables in queries
            if (error := _query_error(service.base_url, _substitute(expr, variables)))
        }
        # The check can fail: Prometheus rejects a broken expression.
        assert _query_error(service.base_url, "sum(rate(astromined_runs[5m])") is not None
    assert not errors, errors
