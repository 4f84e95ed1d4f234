"""Paths, PromQL name checks and real Prometheus / Alertmanager processes on 127.0.0.1 for the tests of
infra/monitoring/ and tests/e2e/test_alerting_e2e.py."""

from __future__ import annotations

import contextlib
import json
import re
import string
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from support.services import free_port, http_ok
from support.tools import require_tool
from support.waiting import poll_until

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "infra" / "monitoring"
PROMETHEUS_DIR = MONITORING / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_LOCAL_TEMPLATE = PROMETHEUS_DIR / "prometheus-local.yml.tmpl"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = MONITORING / "dashboards"
RUNBOOKS_DIR = REPO / "docs" / "runbooks"
RUNBOOK_URL_PREFIX = "https://git.astromined.internal/mlops/astromined/-/blob/main/docs/runbooks/"

SEVERITIES = {"critical", "warning", "info"}
TEAMS = {"mlops", "platform"}

# Standard kube-state-metrics and cAdvisor series the rules and dashboards may read (docs/contracts.md).
KUBE_METRICS = frozenset(
    {
        "kube_node_status_condition",
        "kube_node_status_allocatable",
        "kube_node_info",
        "kube_pod_info",
        "kube_pod_status_phase",
        "kube_pod_status_unschedulable",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "container_memory_working_set_bytes",
        "container_cpu_usage_seconds_total",
    }
)
# Series Prometheus itself writes for every target.
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def run_tool(args: list[str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


# --- rules --------------------------------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def all_rules() -> list[dict]:
    """Every rule of every group, with ``_file`` naming its file."""
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend({**rule, "_file": path.name} for rule in group["rules"])
    return rules


def alert_rules() -> list[dict]:
    return [rule for rule in all_rules() if "alert" in rule]


def recording_rule_names() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


# --- PromQL names -------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "atan2",
    }
)
_GRAFANA_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")


def metric_names_in(expr: str) -> set[str]:
    """The metric (and recording-rule) names a PromQL expression selects.

    Strings, label matchers, ranges and label lists are removed first; what is left that is not a
    function call, a keyword or a number is a metric name."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("1", text)
    previous = None
    while previous != text:
        previous = text
        text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def known_metric_names() -> set[str]:
    """Exporter series (the exporter's catalog), kube metrics, recording rules, Prometheus's own."""
    from astromined.monitoring import catalog

    return set(catalog.series_names()) | KUBE_METRICS | PROMETHEUS_SYNTHETIC | recording_rule_names()


def template_queries(text: str) -> list[str]:
    """PromQL queries inside alert annotation templates: {{ with query "..." }}."""
    return [query.replace('\\"', '"') for query in re.findall(r'query\s+"((?:[^"\\]|\\.)*)"', text)]


# --- local Prometheus and Alertmanager ------------------------------------------------------------------


def render_local_prometheus_config(
    dest: Path,
    *,
    exporter_target: str,
    alertmanager_target: str,
    interval: str = "1s",
    rules_dir: Path = RULES_DIR,
) -> Path:
    """prometheus-local.yml.tmpl with loopback targets (the documented envsubst variables)."""
    text = string.Template(PROMETHEUS_LOCAL_TEMPLATE.read_text()).substitute(
        SCRAPE_INTERVAL=interval,
        EVALUATION_INTERVAL=interval,
        EXPORTER_TARGET=exporter_target,
        ALERTMANAGER_TARGET=alertmanager_target,
        RULES_DIR=str(rules_dir),
    )
    dest.write_text(text)
    return dest


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def get_json(self, path: str, params: dict | None = None) -> dict:
        url = self.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def _start(name: str, args: list[str], base_url: str, log_path: Path, timeout_s: float) -> Service:
    log_file = log_path.open("w")
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=log_path.parent)
    log_file.close()
    service = Service(name, process, base_url, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        return http_ok(base_url + "/-/ready", timeout_s=5)

    if poll_until(ready, timeout_s, interval_s=0.2):
        return service
    service.stop()
    raise RuntimeError(f"{name} not ready within {timeout_s} s:\n{service.log_tail()}")


@contextlib.contextmanager
def prometheus(workdir: Path, config: Path, timeout_s: float = 120) -> Iterator[Service]:
    """Prometheus on 127.0.0.1 with its data under ``workdir``."""
    binary = require_tool("prometheus")
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    service = _start("prometheus", args, f"http://127.0.0.1:{port}", workdir / "prometheus.log", timeout_s)
    try:
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def alertmanager(workdir: Path, config: Path, timeout_s: float = 120) -> Iterator[Service]:
    """Alertmanager on 127.0.0.1, clustering off, its state under ``workdir``."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    service = _start(
        "alertmanager", args, f"http://127.0.0.1:{port}", workdir / "alertmanager.log", timeout_s
    )
    try:
        yield service
    finally:
        service.stop()


def alertmanager_config_for_loopback(dest_dir: Path, webhook_url: str, slack_url: str) -> Path:
    """The production alertmanager.yml with only its endpoints moved to loopback: every webhook receiver
    posts to ``webhook_url``, every Slack receiver reads ``slack_url`` from a mounted-file stand-in, the
    pager token file exists; routing, grouping, inhibition and templates stay as they are."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    secrets = dest_dir / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    slack_file = secrets / "slack-webhook-url"
    slack_file.write_text(slack_url + "\n")
    token_file = secrets / "pager-token"
    token_file.write_text("test-token\n")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
            webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(slack_file)
    config["templates"] = [str(ALERTMANAGER_CONFIG.parent / pattern) for pattern in config["templates"]]
    path = dest_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
