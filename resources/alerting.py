"""Alertmanager: where the run-failure sensor pages, straight through its API (so a failure pages even
when Prometheus is down).

``AlertmanagerResource.post_alerts`` POSTs to ``<url>/api/v2/alerts`` and retries transient failures
(connection errors, timeouts, HTTP 429 and 5xx) with exponential backoff; any other answer (a 400 for a
malformed alert, a 404 for a wrong URL) fails at once. Either way the error names the URL and the
Alertmanager's reply, and the sensor tick fails, so Dagster tries again on the next tick.
"""

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import requests

ALERTS_PATH = "/api/v2/alerts"
LOCAL_ALERTMANAGER_URL = "http://127.0.0.1:9093"
LOCAL_DAGSTER_UI_URL = "http://127.0.0.1:3000"


class AlertDeliveryError(RuntimeError):
    """Alertmanager did not accept the alerts (after retries, for transient failures)."""


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


class AlertmanagerResource(dg.ConfigurableResource):
    """An Alertmanager reachable over HTTP, plus the Dagster UI base URL that alerts link to."""

    url: str = LOCAL_ALERTMANAGER_URL
    # Base URL of the Dagster web UI, for the alert's run_url annotation (``<dagster_ui_url>/runs/<id>``).
    dagster_ui_url: str = LOCAL_DAGSTER_UI_URL
    timeout_s: float = 5.0
    max_attempts: int = 4
    backoff_s: float = 0.5

    def alerts_url(self) -> str:
        return self.url.rstrip("/") + ALERTS_PATH

    def run_url(self, run_id: str) -> str:
        return f"{self.dagster_ui_url.rstrip('/')}/runs/{run_id}"

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """POST alerts (Alertmanager API v2 ``postableAlerts``) with retries on transient failures."""
        if self.max_attempts < 1:
            raise ValueError(f"AlertmanagerResource.max_attempts must be ≥ 1, got {self.max_attempts}")
        target = self.alerts_url()
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = requests.post(target, json=list(alerts), timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.ok:
                    return
                problem = f"HTTP {response.status_code}: {response.text.strip()[:500]}"
                if not _is_transient(response.status_code):
                    raise AlertDeliveryError(f"Alertmanager at {target} rejected the alert ({problem})")
            if attempt < self.max_attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise AlertDeliveryError(
            f"Alertmanager at {target} unreachable after {self.max_attempts} attempts (last: {problem})"
        )

    def get_alerts(self, **label_filters: str) -> list[dict[str, Any]]:
        """Active alerts matching the label equality filters (for operators and tests)."""
        params = [("filter", f'{name}="{value}"') for name, value in label_filters.items()]
        response = requests.get(self.alerts_url(), params=params, timeout=self.timeout_s)
        if not response.ok:
            raise AlertDeliveryError(
                f"Alertmanager at {self.alerts_url()} answered HTTP {response.status_code}: "
                f"{response.text[:500]}"
            )
        return response.json()


def alert_timestamp(when: dt.datetime) -> str:
    """RFC 3339 in UTC, as Alertmanager expects for startsAt / endsAt."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
