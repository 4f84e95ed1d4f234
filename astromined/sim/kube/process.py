"""The simulator's container runtime: a pod's first container as a local process group, its output as the
pod log, and the environment the kubelet would give it."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_LIMIT_BYTES = 10 * 2**20  # the kubelet's default containerLogMaxSize; older lines are dropped first
_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def default_base_env() -> dict[str, str]:
    """This process's environment with the running interpreter's bin directory first on PATH, so a pod's
    `dagster` or `python` is the virtualenv's."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *[p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir]]
    )
    return env


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined references are replaced, `$$` is a literal `$`, the rest
    stays."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables[name] if name in variables else match.group(0)

    return _REFERENCE.sub(replace, text)


def field_ref_value(path: str, pod: Mapping[str, Any]) -> str | None:
    """The value of a downward-API `fieldRef`, or None when the simulator cannot resolve it."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    return None


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], base_env: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The process environment (base env, HOSTNAME, then the container's `env` in order) and a warning for
    each value the simulator could not resolve (`envFrom`, secret/configMap references)."""
    env = dict(base_env)
    env["HOSTNAME"] = pod["metadata"]["name"]
    declared: dict[str, str] = {}
    warnings = []
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        kind = "configMapRef" if "configMapRef" in source else "secretRef"
        warnings.append(
            f"envFrom {kind} {ref.get('name')!r} not resolved: the simulator has no ConfigMaps/Secrets"
        )
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            declared[name] = expand(str(item.get("value", "")), declared)
            continue
        value_from = item["valueFrom"] or {}
        if "fieldRef" in value_from:
            value = field_ref_value(value_from["fieldRef"].get("fieldPath", ""), pod)
            if value is not None:
                declared[name] = value
                continue
        kind = next(iter(value_from), "valueFrom")
        warnings.append(f"env {name}: valueFrom {kind} not resolved by the simulator; variable left unset")
    env.update(declared)
    return env, warnings


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """`command + args` with `$(VAR)` expansion. The simulator has no images, so an empty `command` (the
    image's ENTRYPOINT) means `args` are the command line, which is how dagster-k8s step jobs are written."""
    return [
        expand(str(part), env) for part in [*(container.get("command") or []), *(container.get("args") or [])]
    ]


def timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


class PodLog:
    """A container's stdout+stderr as timestamped lines, capped at `LOG_LIMIT_BYTES` (oldest dropped)."""

    def __init__(self, limit: int = LOG_LIMIT_BYTES):
        self._lines: deque[tuple[str, str, float]] = deque()
        self._size = 0
        self._limit = limit
        self._lock = threading.Lock()

    def append(self, text: str) -> None:
        stamp = timestamp()
        with self._lock:
            self._lines.append((stamp, text, datetime.now(UTC).timestamp()))
            self._size += len(text)
            while self._size > self._limit and len(self._lines) > 1:
                self._size -= len(self._lines.popleft()[1])

    def render(
        self,
        *,
        tail_lines: int | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
        since_seconds: int | None = None,
    ) -> bytes:
        with self._lock:
            lines = list(self._lines)
        if since_seconds is not None:
            cutoff = datetime.now(UTC).timestamp() - since_seconds
            lines = [line for line in lines if line[2] >= cutoff]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        text = "".join(f"{stamp} {body}" if timestamps else body for stamp, body, _ in lines)
        data = text.encode("utf-8")
        return data[:limit_bytes] if limit_bytes is not None else data


class ContainerProcess:
    """A running container: a process group whose output goes to a `PodLog`; `on_exit(exit_code)` is called
    from a reader thread when it ends. Exit codes of signalled processes are 128 + signal, as in a
    container."""

    def __init__(
        self, argv: list[str], env: Mapping[str, str], cwd: str, log: PodLog, on_exit: Callable[[int], None]
    ):
        self.popen = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._log = log
        self._on_exit = on_exit
        self._reader = threading.Thread(target=self._pump, name=f"sim-kubelet-{self.pid}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            self._log.append(raw.decode("utf-8", errors="replace"))
        self.popen.stdout.close()
        code = self.popen.wait()
        self._on_exit(128 - code if code < 0 else code)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def running(self) -> bool:
        return self.popen.poll() is None
