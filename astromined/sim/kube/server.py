"""The HTTP face of a `SimulatedCluster`: the Kubernetes REST paths the `kubernetes` client and dagster-k8s
use, answered with real JSON shapes, plus the "API down" fault (the listening socket is really closed)."""

import contextlib
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from astromined.sim.kube.objects import ApiError
from astromined.sim.kube.selectors import SelectorError
from astromined.sim.kube.watch import WatchStream, is_true

if TYPE_CHECKING:
    from astromined.sim.kube.cluster import SimulatedCluster

log = logging.getLogger(__name__)

_NAMESPACED = re.compile(
    r"^/(?:api/v1|apis/batch/v1|apis/apps/v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>pods|events|jobs|daemonsets)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status|log))?)?/?$"
)
_CLUSTER = re.compile(
    r"^/(?:api/v1/(?P<resource>namespaces|nodes)|apis/storage\.k8s\.io/v1/(?P<sresource>storageclasses))"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?/?$"
)
_GROUP_OF = {"pods": "/api/v1", "events": "/api/v1", "jobs": "/apis/batch/v1", "daemonsets": "/apis/apps/v1"}
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _resource(
    name: str, kind: str, namespaced: bool, verbs: list[str], short: list[str] | None = None
) -> dict:
    entry = {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}
    if short:
        entry["shortNames"] = short
    return entry


_READ = ["get", "list"]
CORE_RESOURCES = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        _resource("namespaces", "Namespace", False, ["create", "delete", "get", "list", "watch"], ["ns"]),
        _resource("namespaces/status", "Namespace", False, ["get"]),
        _resource("nodes", "Node", False, [*_READ, "watch"], ["no"]),
        _resource("nodes/status", "Node", False, ["get"]),
        _resource("pods", "Pod", True, ["create", "delete", "get", "list", "watch"], ["po"]),
        _resource("pods/log", "Pod", True, ["get"]),
        _resource("pods/status", "Pod", True, ["get"]),
        _resource("events", "Event", True, [*_READ, "watch"], ["ev"]),
    ],
}
BATCH_RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "batch/v1",
    "resources": [
        _resource("jobs", "Job", True, ["create", "delete", "get", "list", "watch"]),
        _resource("jobs/status", "Job", True, ["get"]),
    ],
}
BATCH_GROUP = {
    "name": "batch",
    "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
}


def _group(name: str) -> dict:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def _resource_list(group: str, resources: list[dict]) -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/v1",
        "resources": resources,
    }


EXTRA_GROUPS = {
    "apps": _resource_list("apps", [_resource("daemonsets", "DaemonSet", True, _READ, ["ds"])]),
    "storage.k8s.io": _resource_list(
        "storage.k8s.io", [_resource("storageclasses", "StorageClass", False, _READ, ["sc"])]
    ),
    "authorization.k8s.io": _resource_list(
        "authorization.k8s.io",
        [_resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"])],
    ),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, api: "ApiServer"):
        self.api = api
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self.api.connections_lock:
            self.api.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self.api.connections_lock:
            self.api.connections.discard(request)
        super().shutdown_request(request)


class ApiServer:
    """Serves one cluster on host:port; `stop_listening`/`start_listening` implement the API-down switch."""

    def __init__(self, cluster: "SimulatedCluster", host: str, port: int):
        self.cluster = cluster
        self.host = host
        self.port = port
        self.down = False
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.start_listening()

    def start_listening(self) -> None:
        if self._httpd is not None:
            return
        self._httpd = _Server((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self.down = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-api-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop_listening(self) -> None:
        self.down = True
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self.connections_lock:
            connections = list(self.connections)
            self.connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def stop(self) -> None:
        self.stop_listening()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body of a small answer waits for
    # the client's delayed ACK (~40 ms on Linux). Go's net/http, and so kube-apiserver, sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.server.api.cluster.name, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        api = self.server.api
        if api.down:
            self.close_connection = True
            return
        latency = api.cluster.faults.api_latency
        if latency:
            time.sleep(latency)
        body = self._read_body()
        try:
            status, content_type, payload = self._route(method, body)
        except ApiError as error:
            status, content_type, payload = (
                error.code,
                "application/json",
                json.dumps(error.status()).encode(),
            )
        except SelectorError as error:
            status, content_type = 400, "application/json"
            payload = json.dumps(ApiError(400, "BadRequest", str(error)).status()).encode()
        except Exception as error:
            log.exception("simulated API %s %s failed", method, self.path)
            status, content_type = 500, "application/json"
            payload = json.dumps(
                ApiError(500, "InternalError", f"simulator error: {error!r}").status()
            ).encode()
        if api.down:
            self.close_connection = True
            return
        if isinstance(payload, WatchStream):
            self._stream(payload)
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, stream: WatchStream) -> None:
        """A watch: one HTTP chunk per batch of events, until the stream ends (timeout, API down, cluster
        stopped) or the client goes away."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for batch in stream:
                if batch:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(batch), batch))
                    self.wfile.flush()
            if self.server.api.down:
                self.close_connection = True
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client closed the connection, or the API-down switch closed it
            self.close_connection = True

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None

    def _route(self, method: str, body: Any) -> tuple[int, str, bytes | WatchStream]:
        cluster = self.server.api.cluster
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        static = self._static(path)
        if static is not None:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
            return 200, "application/json", json.dumps(static).encode()
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, "text/plain", b"ok"
        if path.rstrip("/") == ACCESS_REVIEWS:
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
            return 201, "application/json", cluster.rest.access_review(body)
        match = _NAMESPACED.match(path)
        if match and not path.startswith(_GROUP_OF[match["resource"]] + "/"):
            match = None
        if match is None:
            match = _CLUSTER.match(path)
        if match is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        groups = match.groupdict()
        resource, namespace, name, sub = (
            groups.get("resource") or groups.get("sresource"),
            groups.get("ns"),
            groups["name"],
            groups.get("sub"),
        )
        if method == "GET" and name is None and is_true(query.get("watch")):
            api = self.server.api
            return (
                200,
                "application/json",
                cluster.rest.watch(resource, namespace, query, lambda: not api.down),
            )
        if method == "GET" and name is None:
            return 200, "application/json", cluster.rest.list_objects(resource, namespace, query)
        if method == "POST" and name is None:
            if resource in ("daemonsets", "storageclasses"):
                raise ApiError(405, "MethodNotAllowed", f"the simulator does not allow creating {resource}")
            if namespace is None and resource in ("pods", "jobs", "events"):
                raise ApiError(405, "MethodNotAllowed", f"create {resource} needs a namespace in the path")
            created = cluster.rest.create_object(resource, namespace, body)
            return 201, "application/json", created
        if name is not None and namespace is None and resource in ("pods", "jobs", "events", "daemonsets"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET" and sub == "log":
            return 200, "text/plain", cluster.rest.log(namespace or "", name or "", query)
        if method == "GET" and name is not None:
            return 200, "application/json", cluster.rest.get_object(resource, namespace, name)
        if method == "DELETE" and name is not None and sub is None:
            options = dict(body or {})
            for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
                if key in query:
                    options[key] = query[key]
            return 200, "application/json", cluster.rest.delete_object(resource, namespace, name, options)
        raise ApiError(405, "MethodNotAllowed", f"the simulator does not support {method} on {path}")

    def _static(self, path: str) -> Any:
        cluster = self.server.api.cluster
        path = path.rstrip("/") or "/"
        if path == "/version":
            version = cluster.spec.kubernetes_version
            major, minor, _ = version.lstrip("v").split(".")
            return {
                "major": major,
                "minor": minor,
                "gitVersion": f"{version}-astromined-sim",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-11-29T00:00:00Z",
                "goVersion": "go1.22.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {
                        "clientCIDR": "0.0.0.0/0",
                        "serverAddress": f"{self.server.api.host}:{self.server.api.port}",
                    }
                ],
            }
        if path == "/apis":
            groups = [BATCH_GROUP, *(_group(name) for name in EXTRA_GROUPS)]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == "/apis/batch":
            return {"kind": "APIGroup", "apiVersion": "v1", **BATCH_GROUP}
        for name, resources in EXTRA_GROUPS.items():
            if path == f"/apis/{name}":
                return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}
            if path == f"/apis/{name}/v1":
                return resources
        if path == "/api/v1":
            return CORE_RESOURCES
        if path == "/apis/batch/v1":
            return BATCH_RESOURCES
        return None
