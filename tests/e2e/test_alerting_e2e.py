"""Alerting end to end: a Dagster run fails, and the page reaches the on-call receiver.

Real processes on 127.0.0.1: the pipeline exporter (in-process, over a test Dagster instance),
Prometheus (Debian package) with the repository's alert rules and the loopback variant of its config at
1-second scrape/evaluation intervals, Alertmanager (Debian package) with the production
alertmanager.yml whose endpoints are moved to a small HTTP receiver in this test. No `for:` duration
is overridden: AstrominedPipelineRunsFailing fires on the first scrape that shows the failure.
"""

from __future__ import annotations

import http.server
import json
import threading

import dagster as dg
import pytest
from support import monitoring_stack as stack
from support.tools import require_tool
from support.waiting import wait_until

JOB_NAME = "ingest_downlinks_e2e"


@dg.asset
def corrupted_downlink() -> None:
    raise RuntimeError("simulated: the downlink file ends inside the primary header")


class _Receiver(http.server.ThreadingHTTPServer):
    """Records every JSON body Alertmanager posts, by path (/hook: webhook receivers, /slack: Slack)."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str) -> list[dict]:
        with self.lock:
            return [body for p, body in self.received if p == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with self.server.lock:
            self.server.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _wait_for(what: str, condition, timeout_s: float, *services):
    """wait_until, with the services' log tails in the failure."""

    def message() -> str:
        return "\n".join([what, *(f"--- {s.name} log ---\n{s.log_tail()}" for s in services)])

    return wait_until(condition, timeout_s, message, interval_s=0.5)


def _firing(receiver: _Receiver, alertname: str) -> list[dict]:
    return [
        alert
        for body in receiver.bodies("/hook")
        for alert in body.get("alerts", [])
        if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
    ]


@pytest.mark.timeout(600)
def test_failed_run_pages_mlops_with_a_runbook(tmp_path, receiver):
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    from astromined.monitoring.exporter import start_exporter

    defs = dg.Definitions(
        assets=[corrupted_downlink], jobs=[dg.define_asset_job(JOB_NAME, [corrupted_downlink])]
    )
    am_config = stack.alertmanager_config_for_loopback(
        tmp_path, f"{receiver.url}/hook", f"{receiver.url}/slack"
    )
    with (
        dg.instance_for_test() as instance,
        start_exporter(instance, refresh_interval_s=0.5) as exporter,
        stack.alertmanager(tmp_path, am_config) as alertmanager,
    ):
        prom_config = stack.render_local_prometheus_config(
            tmp_path / "prometheus.yml",
            exporter_target=f"127.0.0.1:{exporter.port}",
            alertmanager_target=alertmanager.base_url.removeprefix("http://"),
            interval="1s",
        )
        with stack.prometheus(tmp_path, prom_config) as prometheus:
            # Prometheus scrapes the exporter before anything fails: nothing fires.
            _wait_for(
                "Prometheus to scrape the exporter",
                lambda: prometheus.get_json("/api/v1/query", {"query": 'up{job="astromined-exporter"} == 1'})[
                    "data"
                ]["result"],
                120,
                prometheus,
            )
            alerts = prometheus.get_json("/api/v1/alerts")["data"]["alerts"]
            assert not [a for a in alerts if a["state"] == "firing"], alerts

            result = defs.resolve_job_def(JOB_NAME).execute_in_process(
                instance=instance, raise_on_error=False
            )
            assert not result.success
            [run] = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.FAILURE and run.job_name == JOB_NAME

            [alert] = _wait_for(
                "AstrominedPipelineRunsFailing at the webhook receiver",
                lambda: _firing(receiver, "AstrominedPipelineRunsFailing"),
                180,
                prometheus,
                alertmanager,
            )

    assert alert["labels"]["alertname"] == "AstrominedPipelineRunsFailing"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["team"] == "mlops"
    assert alert["labels"]["job"] == JOB_NAME
    assert alert["labels"]["cluster"] == "local"
    runbook_url = alert["annotations"]["runbook_url"]
    assert runbook_url.startswith(stack.RUNBOOK_URL_PREFIX)
    runbook = stack.RUNBOOKS_DIR / runbook_url.removeprefix(stack.RUNBOOK_URL_PREFIX)
    assert runbook.is_file(), runbook
    assert runbook.read_text().startswith("# AstrominedPipelineRunsFailing\n")
    assert JOB_NAME in alert["annotations"]["description"]

    # The page went to the mlops pager route (webhook + Slack), grouped by alertname/cluster/namespace/job.
    [page] = [b for b in receiver.bodies("/hook") if alert in b["alerts"]][:1]
    assert page["receiver"] == "mlops-pager"
    assert page["groupLabels"] == {
        "alertname": "AstrominedPipelineRunsFailing",
        "cluster": "local",
        "job": JOB_NAME,
    }
    slack_texts = [json.dumps(body) for body in receiver.bodies("/slack")]
    assert any(runbook_url in text and "#astromined-alerts" in text for text in slack_texts), slack_texts
