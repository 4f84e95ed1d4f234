"""A throwaway PostgreSQL server from Debian's postgresql package, on 127.0.0.1 and a free port.

Its own cluster directory (initdb), password authentication, started and restarted with pg_ctl. As root
the server runs as the unprivileged user ``nobody`` (PostgreSQL refuses to run as root), in a directory
that user can reach (pytest's tmp_path sits under a 0700 root-owned directory); otherwise as the caller,
under the given directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from support.services import free_port

UNPRIVILEGED_USER = "nobody"


def postgres_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl (the Debian layout)."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(
            "no /usr/lib/postgresql/*/bin/initdb: install the Debian package postgresql "
            "(listed in .ci/system-tools.txt; `make system-tools`)"
        )
    return candidates[-1]


@dataclasses.dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    user: str = "dagster"
    password: str = "astromined-test-password"  # a throwaway local test cluster
    database: str = "astromined"
    run_as: str | None = None  # the OS user the server runs as (None: this process's)

    @property
    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables infra/dagster/dagster-prod.yaml's storage section reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data_dir}"
        self._run(
            self.bin_dir / "pg_ctl",
            action,
            "-D",
            self.data_dir / "cluster",
            "-o",
            options,
            "-l",
            self.data_dir / "server.log",
            "-w",
            "-t",
            "60",
            *(["-m", "fast"] if action in ("stop", "restart") else []),
        )

    def init(self) -> None:
        pwfile = self.data_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            os.chown(pwfile, pwd.getpwnam(self.run_as).pw_uid, -1)
        pwfile.chmod(0o600)
        self._run(
            self.bin_dir / "initdb",
            "-D",
            self.data_dir / "cluster",
            "-U",
            self.user,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop")

    def restart(self) -> None:
        self._pg_ctl("restart")

    def create_database(self) -> None:
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run(
            [
                self.bin_dir / "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                self.database,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no server log)"


@contextlib.contextmanager
def postgres_server(tmp_path: Path) -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    run_as = None
    cleanup: Path | None = None
    if os.geteuid() == 0:
        run_as = UNPRIVILEGED_USER
        data_dir = Path(tempfile.mkdtemp(prefix="astromined-pg-"))
        cleanup = data_dir
        os.chown(data_dir, pwd.getpwnam(run_as).pw_uid, pwd.getpwnam(run_as).pw_gid)
    else:
        data_dir = tmp_path / "postgres"
        data_dir.mkdir()
    data_dir.chmod(0o700)
    server = PostgresServer(bin_dir=bin_dir, data_dir=data_dir, port=free_port(), run_as=run_as)
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            server.stop()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
