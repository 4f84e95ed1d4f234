"""The run-failure sensor pages a REAL Alertmanager on loopback; delivery retries and errors."""

import datetime as dt
import http.server
import threading

import dagster as dg
import pytest
from support.services import free_port, loopback_service
from support.tools import require_tool

import assets.features
import assets.telemetry
from astromined.automation.jobs import INGEST_JOB_NAME, ingest_day_job
from astromined.automation.run_failure import ALERT_NAME, RUNBOOK_URL, SENSOR_NAME, run_failure_alert_sensor
from resources.alerting import AlertDeliveryError, AlertmanagerResource
from resources.lake import LocalLakeResource
from resources.landing_zone import LocalLandingZoneResource

ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 0s
receivers:
  - name: blackhole
"""
DAY = "2026-06-01"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    root = tmp_path_factory.mktemp("alertmanager")
    config = root / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    port = free_port()
    command = [
        require_tool("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={root / 'data'}",
        "--cluster.listen-address=",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with loopback_service(command, url + "/-/ready", root / "alertmanager.log"):
        yield AlertmanagerResource(url=url, dagster_ui_url="http://127.0.0.1:3000", backoff_s=0.05)


def _failed_ingest_run(instance, tmp_path):
    """A real failure of the real ingest job: the landing zone has no downlinks for the day."""
    definitions = dg.Definitions(
        assets=[assets.telemetry.raw_telemetry, assets.features.asteroid_features],
        jobs=[ingest_day_job],
        resources={
            "lake": LocalLakeResource(root=str(tmp_path / "lake")),
            "landing_zone": LocalLandingZoneResource(root=str(tmp_path / "landing")),
        },
    )
    result = definitions.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        partition_key=DAY, instance=instance, raise_on_error=False
    )
    assert not result.success
    return result.run_id


def test_failed_run_pages_alertmanager(alertmanager, tmp_path):
    with dg.instance_for_test() as instance:
        run_id = _failed_ingest_run(instance, tmp_path)
        run = instance.get_run_by_id(run_id)
        [failure] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name=SENSOR_NAME,
            dagster_event=failure.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"alertmanager": alertmanager},
        ).for_run_failure()
        run_failure_alert_sensor(context)

    [alert] = alertmanager.get_alerts(alertname=ALERT_NAME, run_id=run_id)
    assert alert["labels"] == {
        "alertname": ALERT_NAME,
        "severity": "critical",
        "team": "mlops",
        "job": INGEST_JOB_NAME,
        "run_id": run_id,
        "step": "raw_telemetry",
    }
    annotations = alert["annotations"]
    assert annotations["runbook_url"] == RUNBOOK_URL
    assert annotations["run_url"] == f"http://127.0.0.1:3000/runs/{run_id}"
    assert INGEST_JOB_NAME in annotations["summary"] and "raw_telemetry" in annotations["summary"]
    assert f"no downlink files for partition {DAY}" in annotations["description"]
    assert alert["status"]["state"] == "active"
    ends = dt.datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert ends > dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # stays up until someone acts


def test_malformed_alert_is_rejected_at_once(alertmanager):
    with pytest.raises(AlertDeliveryError, match=r"rejected the alert .*HTTP 400"):
        alertmanager.post_alerts([{"labels": {}, "annotations": {}}])


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    failures_left = 2
    posts = 0

    def do_POST(self):
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_transient_errors_are_retried_with_backoff():
    server = http.server.HTTPServer(("127.0.0.1", 0), _FlakyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        AlertmanagerResource(url=url, backoff_s=0.01, max_attempts=4).post_alerts([{"labels": {"a": "b"}}])
        assert _FlakyHandler.posts == 3  # two 503s, then accepted
    finally:
        server.shutdown()


def test_unreachable_alertmanager_fails_the_tick_clearly():
    url = f"http://127.0.0.1:{free_port()}"
    resource = AlertmanagerResource(url=url, backoff_s=0.01, max_attempts=2, timeout_s=2)
    with pytest.raises(AlertDeliveryError, match=f"{url}/api/v2/alerts unreachable after 2 attempts"):
        resource.post_alerts([{"labels": {"alertname": ALERT_NAME}}])
