"""Real services on loopback for the tests: a free port, start-and-wait-until-ready, moto's S3 server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.waiting import wait_until

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
# Never read a developer's real AWS configuration, never go through a proxy to reach loopback.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
AWS_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it; a service started next binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url: str, timeout_s: float = 2) -> bool:
    """Whether ``url`` answers 200 now (False while nothing listens, on an error status or a timeout)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except OSError:  # URLError, HTTPError, ConnectionError, TimeoutError
        return False


@contextlib.contextmanager
def aws_test_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_TEST_ENV.items():
            patch.setenv(name, value)
        for name in AWS_UNSET:
            patch.delenv(name, raising=False)
        yield


@contextlib.contextmanager
def loopback_service(
    command: list[str],
    ready_url: str,
    log_path: Path,
    timeout_s: float = 90,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> Iterator[subprocess.Popen]:
    """Start a real service on 127.0.0.1 (its output in ``log_path``), wait until ``ready_url`` answers 200,
    and stop its whole process group afterwards: ``stop_signal``, then SIGKILL after 20 s."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited with {process.returncode}:\n{log_tail()}")
        return http_ok(ready_url)

    def awaited() -> str:
        return f"{command[0]} to answer at {ready_url}:\n{log_tail()}"

    try:
        wait_until(ready, timeout_s, awaited, interval_s=0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, stop_signal)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


@contextlib.contextmanager
def moto_s3_server(log_dir: Path) -> Iterator[str]:
    """moto's S3 HTTP server on a free loopback port; yields its URL, stops it afterwards."""
    assert MOTO_SERVER.exists(), f"{MOTO_SERVER} missing: install the test extras (moto[server])"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)]
    with loopback_service(command, url + "/", log_dir / "moto_server.log", timeout_s=60):
        yield url
