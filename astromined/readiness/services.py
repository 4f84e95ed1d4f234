"""Readiness probes of the object stores and of the monitoring stack (Prometheus, Alertmanager, Grafana).

Object stores are probed through a boto3 S3 client: the lake bucket must take a probe object (written, read
back and deleted), the landing zone must be listable. The monitoring services are probed over HTTP with
their own health routes. Each is one `Probe` with its own timeout; an unset URL/bucket is not configured.
"""

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from astromined.readiness.result import DEFAULT_PROBE_TIMEOUT_S, Probe

PROBE_PREFIX = "_readiness"


def s3_probes(
    client_factory: Callable[[], Any] | None,
    lake_bucket: str,
    landing_bucket: str,
    *,
    lake_prefix: str = "lake",
    landing_prefix: str = "landing",
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    site: str = "object_stores",
) -> list[Probe]:
    def lake_writable() -> tuple[bool, str]:
        client = client_factory()  # type: ignore[misc]
        key = f"{lake_prefix.strip('/')}/{PROBE_PREFIX}/{uuid.uuid4().hex}.probe"
        body = f"readiness probe {time.time():.0f}".encode()
        client.put_object(Bucket=lake_bucket, Key=key, Body=body)
        try:
            read = client.get_object(Bucket=lake_bucket, Key=key)["Body"].read()
        finally:
            client.delete_object(Bucket=lake_bucket, Key=key)
        if read != body:
            return False, f"s3://{lake_bucket}/{key} read back different bytes"
        return True, f"s3://{lake_bucket}: probe object written, read back and deleted"

    def landing_readable() -> tuple[bool, str]:
        client = client_factory()  # type: ignore[misc]
        prefix = landing_prefix.strip("/") + "/"
        answer = client.list_objects_v2(Bucket=landing_bucket, Prefix=prefix, MaxKeys=1)
        return (
            True,
            f"s3://{landing_bucket}/{prefix} listable ({answer.get('KeyCount', 0)} key(s) in the first page)",
        )

    return [
        Probe("lake_bucket", site, lake_writable if client_factory and lake_bucket else None, timeout_s),
        Probe(
            "landing_zone", site, landing_readable if client_factory and landing_bucket else None, timeout_s
        ),
    ]


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _json(url: str, timeout: float) -> Any:
    status, body = _get(url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} answered HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def prometheus_probes(
    url: str, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S, site: str = "monitoring"
) -> list[Probe]:
    base = url.rstrip("/")

    def ready() -> tuple[bool, str]:
        status, body = _get(f"{base}/-/ready", timeout_s)
        return status == 200, f"{base}/-/ready: HTTP {status} {body[:80].decode(errors='replace').strip()}"

    def targets() -> tuple[bool, str]:
        active = _json(f"{base}/api/v1/targets?state=active", timeout_s)["data"]["activeTargets"]
        if not active:
            return False, "no active scrape target"
        down = [t for t in active if t.get("health") != "up"]
        if down:
            names = ", ".join(
                f"{t.get('labels', {}).get('job', '?')}/{t.get('labels', {}).get('instance', '?')} "
                f"({t.get('health')}: {t.get('lastError') or 'no error text'})"
                for t in down[:5]
            )
            return False, f"{len(down)} of {len(active)} scrape target(s) not up: {names}"
        return True, f"all {len(active)} scrape target(s) up"

    configured = bool(url)
    return [
        Probe("prometheus", site, ready if configured else None, timeout_s),
        Probe("prometheus_targets", site, targets if configured else None, timeout_s),
    ]


def alertmanager_probes(
    url: str, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S, site: str = "monitoring"
) -> list[Probe]:
    base = url.rstrip("/")

    def ready() -> tuple[bool, str]:
        status, _ = _get(f"{base}/-/ready", timeout_s)
        if status != 200:
            return False, f"{base}/-/ready: HTTP {status}"
        receivers = [r.get("name") for r in _json(f"{base}/api/v2/receivers", timeout_s)]
        if not receivers:
            return False, "ready, but no receiver is configured"
        return True, f"ready, receivers: {', '.join(sorted(str(r) for r in receivers))}"

    return [Probe("alertmanager", site, ready if url else None, timeout_s)]


def grafana_probes(
    url: str,
    datasource_uid: str = "",
    api_token: str = "",
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    site: str = "monitoring",
) -> list[Probe]:
    """``/api/health`` (no auth: database ok); the datasource's own health check only with a token."""
    base = url.rstrip("/")

    def health() -> tuple[bool, str]:
        answer = _json(f"{base}/api/health", timeout_s)
        database = answer.get("database")
        return database == "ok", f"Grafana {answer.get('version', '?')}, database {database}"

    def datasource() -> tuple[bool, str]:
        request = urllib.request.Request(
            f"{base}/api/datasources/uid/{datasource_uid}/health",
            headers={"Accept": "application/json", "Authorization": f"Bearer {api_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            return False, f"datasource {datasource_uid}: HTTP {error.code}"
        status = answer.get("status")
        return status == "OK", f"datasource {datasource_uid}: {status} {answer.get('message', '')}".strip()

    return [
        Probe("grafana", site, health if url else None, timeout_s),
        Probe(
            "grafana_datasource",
            site,
            datasource if url and datasource_uid and api_token else None,
            timeout_s,
            not_configured_detail="not configured (needs a Grafana URL, datasource uid and API token)",
        ),
    ]
