"""`astromined exporter` as the long-running process an operator starts: DAGSTER_HOME in, /metrics out."""

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
from prometheus_client.parser import text_string_to_metric_families
from support.services import free_port, http_ok
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_cli_serves_metrics_from_dagster_home_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key="raw_telemetry",
                metadata={
                    "packets_ok": 7,
                    "packets_quarantined": 0,
                    "duplicates": 1,
                    "quarantine_by_reason": {},
                },
            )
        )
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ASTROMINED_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [sys.executable, "-m", "astromined.cli", "exporter", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, process.stdout.read()
            return http_ok(f"{base}/ready", timeout_s=10)

        wait_until(ready, 180, "the exporter to answer /ready", interval_s=0.5)
        status, text = _get(f"{base}/metrics")
        assert status == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("astromined_packets_total", (("outcome", "ok"),))] == 7
        assert samples[("astromined_packets_total", (("outcome", "duplicate"),))] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/metrics" in output
