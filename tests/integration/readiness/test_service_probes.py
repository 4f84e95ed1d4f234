"""Object-store and monitoring readiness probes against real services on loopback: moto's S3 server,
Prometheus and Alertmanager (the binaries the monitoring tests use); Grafana against a stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from support import monitoring_stack as stack
from support.services import aws_test_environment, free_port, moto_s3_server
from support.waiting import poll_until

from astromined.readiness.result import Status, run_probes
from astromined.readiness.services import alertmanager_probes, grafana_probes, prometheus_probes, s3_probes


def _rows(probes) -> dict:
    return {r.component: r for r in run_probes(probes)}


# ---- S3 (moto) --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_url(tmp_path_factory) -> Iterator[str]:
    with aws_test_environment(), moto_s3_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


def _client_factory(url: str):
    return lambda: boto3.client("s3", endpoint_url=url, region_name="us-east-1")


def test_s3_lake_writable_and_landing_readable(s3_url: str):
    client = _client_factory(s3_url)()
    client.create_bucket(Bucket="lake-ok")
    client.create_bucket(Bucket="landing-ok")
    client.put_object(Bucket="landing-ok", Key="landing/2026-12-01/a.tar", Body=b"x")
    rows = _rows(s3_probes(_client_factory(s3_url), "lake-ok", "landing-ok"))
    assert rows["lake_bucket"].status is Status.READY, rows["lake_bucket"].detail
    assert "written, read back and deleted" in rows["lake_bucket"].detail
    assert rows["landing_zone"].status is Status.READY
    assert "1 key(s)" in rows["landing_zone"].detail
    # the probe object is gone again
    assert client.list_objects_v2(Bucket="lake-ok").get("KeyCount", 0) == 0


@pytest.mark.fault("bad-config", "the lake and landing buckets do not exist")
def test_s3_missing_bucket(s3_url: str):
    rows = _rows(s3_probes(_client_factory(s3_url), "no-such-lake", "no-such-landing"))
    assert rows["lake_bucket"].status is Status.NOT_READY
    assert "NoSuchBucket" in rows["lake_bucket"].detail
    assert rows["landing_zone"].status is Status.NOT_READY
    assert "NoSuchBucket" in rows["landing_zone"].detail


def test_s3_not_configured():
    rows = _rows(s3_probes(None, "", ""))
    assert {r.status for r in rows.values()} == {Status.NOT_CONFIGURED}


# ---- Prometheus and Alertmanager (real binaries) ----------------------------------------------------------


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE readiness_probe_up gauge\nreadiness_probe_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def metrics_target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _prometheus_config(path: Path, targets: dict[str, str]) -> Path:
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']"
        for job, target in targets.items()
    )
    path.write_text(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}\n")
    return path


def _settled(url: str) -> dict:
    """Probe until Prometheus has discovered and scraped every target once (health no longer 'unknown');
    the rows of the last probe (the test's assertions say what is wrong if it never settled)."""
    last: dict = {}

    def settled() -> bool:
        last.update(_rows(prometheus_probes(url)))
        detail = last["prometheus_targets"].detail
        return "unknown" not in detail and "no active" not in detail

    poll_until(settled, 60, interval_s=0.5)
    return last


def test_prometheus_ready_and_targets_up(tmp_path: Path, metrics_target: str):
    config = _prometheus_config(tmp_path / "prometheus.yml", {"astromined-exporter": metrics_target})
    with stack.prometheus(tmp_path, config) as prometheus:
        rows = _settled(prometheus.base_url)
    assert rows["prometheus"].status is Status.READY
    assert rows["prometheus_targets"].status is Status.READY, rows["prometheus_targets"].detail
    assert rows["prometheus_targets"].detail == "all 1 scrape target(s) up"


@pytest.mark.fault("kill", "a scrape target is down: the targets row names it, Prometheus itself is ready")
def test_prometheus_target_down(tmp_path: Path, metrics_target: str):
    dead = f"127.0.0.1:{free_port()}"
    config = _prometheus_config(
        tmp_path / "prometheus.yml", {"astromined-exporter": metrics_target, "dcgm-exporter": dead}
    )
    with stack.prometheus(tmp_path, config) as prometheus:
        rows = _settled(prometheus.base_url)
    assert rows["prometheus"].status is Status.READY
    assert rows["prometheus_targets"].status is Status.NOT_READY
    assert f"1 of 2 scrape target(s) not up: dcgm-exporter/{dead} (down" in rows["prometheus_targets"].detail


def test_alertmanager_ready_with_receivers(tmp_path: Path):
    config = stack.alertmanager_config_for_loopback(
        tmp_path, "http://127.0.0.1:9/hook", "http://127.0.0.1:9/s"
    )
    with stack.alertmanager(tmp_path, config) as alertmanager:
        rows = _rows(alertmanager_probes(alertmanager.base_url))
        url = alertmanager.base_url
    assert rows["alertmanager"].status is Status.READY, rows["alertmanager"].detail
    assert "receivers:" in rows["alertmanager"].detail
    # stopped: the row fails quickly, naming the refused connection
    down = _rows(alertmanager_probes(url, timeout_s=5))["alertmanager"]
    assert down.status is Status.NOT_READY
    assert "Connection refused" in down.detail


# ---- Grafana ----------------------------------------------------------------------------------------------


class _GrafanaHealthOnly(BaseHTTPRequestHandler):
    """NOT a Grafana server (none exists on this machine): a loopback stand-in serving only Grafana's
    unauthenticated health route ``/api/health`` with Grafana's JSON shape; every other path is 404."""

    database = "ok"

    def do_GET(self) -> None:
        if self.path != "/api/health":
            self.send_error(404)
            return
        body = json.dumps({"commit": "stand-in", "database": self.database, "version": "11.3.0"}).encode()
        self.send_response(200 if self.database == "ok" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def grafana_stand_in() -> Iterator[tuple[str, type]]:
    handler = type("Handler", (_GrafanaHealthOnly,), {"database": "ok"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_grafana_health_against_health_only_stand_in(grafana_stand_in):
    url, _ = grafana_stand_in
    rows = _rows(grafana_probes(url))
    assert rows["grafana"].status is Status.READY
    assert rows["grafana"].detail == "Grafana 11.3.0, database ok"
    # without a datasource uid and API token the datasource row is not configured, not a failure
    assert rows["grafana_datasource"].status is Status.NOT_CONFIGURED


@pytest.mark.fault("kill", "Grafana's database is down: /api/health answers 503")
def test_grafana_database_down(grafana_stand_in):
    url, handler = grafana_stand_in
    handler.database = "failing"
    rows = _rows(grafana_probes(url))
    assert rows["grafana"].status is Status.NOT_READY
    assert "HTTP 503" in rows["grafana"].detail


def test_grafana_datasource_row_fails_where_the_route_is_missing(grafana_stand_in):
    url, _ = grafana_stand_in
    rows = _rows(grafana_probes(url, datasource_uid="prometheus", api_token="t"))
    assert rows["grafana_datasource"].status is Status.NOT_READY
    assert "HTTP 404" in rows["grafana_datasource"].detail
