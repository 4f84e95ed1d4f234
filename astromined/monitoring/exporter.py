"""The pipeline exporter: a long-running process serving /metrics computed from the Dagster instance.

    astromined exporter --host 0.0.0.0 --port 9464          (or python -m astromined.monitoring.exporter)

A background thread refreshes the metrics from the instance every ``refresh_interval_s`` (incremental:
see instance_reader.py); a scrape only renders the values of the latest refresh, so it stays fast
however large the instance is and never waits on the database. Until the first full refresh has
finished, /metrics answers 503: exposing half-counted counters would look like a counter reset to
Prometheus. /healthz answers 200 while the process is up; /ready 200 once metrics are served.

Python API (used by tests and the end-to-end test)::

    handle = start_exporter(instance, host="127.0.0.1", port=0)
    handle.url, handle.port, handle.refresh(), handle.stop()
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import socketserver
import sys
import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dagster import DagsterInstance
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from astromined.monitoring import catalog
from astromined.monitoring.instance_reader import InstanceReader, RefreshStats
from astromined.monitoring.metric_state import MetricState
from astromined.monitoring.options import DEFAULT_REFRESH_INTERVAL_S, add_arguments

log = logging.getLogger(__name__)


class _StateCollector(Collector):
    def __init__(self, state: MetricState):
        self._state = state

    def collect(self) -> Iterable[Metric]:
        return self._state.families()


class PipelineExporter:
    """Owns the metric state, the incremental reader and the refresh thread (no HTTP)."""

    def __init__(self, instance: DagsterInstance, *, refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S):
        if refresh_interval_s <= 0:
            raise ValueError(f"refresh_interval_s must be positive, got {refresh_interval_s}")
        self.instance = instance
        self.refresh_interval_s = refresh_interval_s
        self.state = MetricState()
        self.state.inc(catalog.EXPORTER_EVENTS_PROCESSED, (), 0)
        self.reader = InstanceReader(instance, self.state)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StateCollector(self.state))
        self.ready = threading.Event()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> RefreshStats:
        """Read what is new in the instance now (serialized with the background refresh)."""
        with self._refresh_lock:
            try:
                stats = self.reader.refresh()
            except Exception:  # never let one refresh kill the loop; the next one retries
                log.exception("exporter refresh failed")
                self.state.inc(catalog.EXPORTER_ERRORS, ("refresh",))
                raise
        if stats.runs_synced:
            self.ready.set()
        log.debug("refresh: %s", stats)
        return stats

    def start_background_refresh(self) -> None:
        if self._thread is not None:
            raise RuntimeError("background refresh already started")

        def loop() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # logged and counted in refresh()
                    self.refresh()
                self._stop.wait(self.refresh_interval_s)

        self._thread = threading.Thread(target=loop, name="astromined-exporter-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def wsgi_app(self):
        metrics = make_wsgi_app(self.registry)

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok\n"]
            if path in ("/metrics", "/ready"):
                if not self.ready.is_set():
                    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                    return [b"initial refresh from the Dagster instance in progress\n"]
                if path == "/ready":
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [b"ready\n"]
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"try /metrics, /healthz or /ready\n"]

        return app


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        log.debug("http: " + format, *args)


@dataclasses.dataclass
class ExporterHandle:
    """A running exporter: ``url`` is the /metrics URL."""

    exporter: PipelineExporter
    host: str
    port: int
    _server: WSGIServer
    _server_thread: threading.Thread
    _owned_instance: DagsterInstance | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def refresh(self) -> RefreshStats:
        return self.exporter.refresh()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server_thread.join(timeout=30)
        self.exporter.stop()
        if self._owned_instance is not None:
            self._owned_instance.dispose()
            self._owned_instance = None

    def __enter__(self) -> ExporterHandle:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def start_exporter(
    instance: DagsterInstance | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
    wait_until_ready: bool = True,
    ready_timeout_s: float = 600.0,
) -> ExporterHandle:
    """Serve /metrics on host:port (0 picks a free port) with a background refresh thread.

    Without ``instance``, opens ``DagsterInstance.get()`` (from $DAGSTER_HOME) and disposes it on stop.
    With ``wait_until_ready``, returns once the first refresh has finished.
    """
    owned = None
    if instance is None:
        instance = owned = DagsterInstance.get()
    exporter = PipelineExporter(instance, refresh_interval_s=refresh_interval_s)
    server = make_server(host, port, exporter.wsgi_app(), _ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="astromined-exporter-http", daemon=True)
    thread.start()
    handle = ExporterHandle(exporter, host, server.server_port, server, thread, owned)
    exporter.start_background_refresh()
    if wait_until_ready and not exporter.ready.wait(ready_timeout_s):
        handle.stop()
        raise TimeoutError(f"the exporter's first refresh did not finish within {ready_timeout_s} s")
    return handle


def serve(args: argparse.Namespace) -> int:
    """Run until interrupted; the instance comes from $DAGSTER_HOME (SQLite locally, Postgres in prod)."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handle = start_exporter(
        host=args.host, port=args.port, refresh_interval_s=args.refresh_interval, wait_until_ready=False
    )
    log.info("AstroMined pipeline exporter on http://%s:%d/metrics", args.host, handle.port)
    stop = threading.Event()
    try:
        import signal

        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astromined.monitoring.exporter", description=__doc__)
    add_arguments(parser)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
