"""Blob stores behind the lake and the landing zone: a local directory or an S3-compatible bucket.

Pure Python (no Dagster): resources build these from their config, and domain code such as the
model registry only sees the ``BlobStore`` protocol. Writes are atomic: the local store writes a
temporary file in the same directory and renames it; an S3 PUT is atomic per object.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from astromined.process_liveness import Liveness, liveness

T = TypeVar("T")


class BlobNotFoundError(FileNotFoundError):
    """The key does not exist in the store."""


class BlobStore(Protocol):
    def describe(self, key: str) -> str: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def size(self, key: str) -> int: ...
    def modified_at(self, key: str) -> float: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def staging_dir(self) -> Path | None: ...


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


TEMP_SUFFIX = ".tmp"
STAGING_DIR = ".staging"
# Temp files and staging folders carry their writer's pid, so the next run can tell an orphan (its writer
# was killed) from work in progress: `<name>.pid<PID>.` for temp files, `<what>-pid<PID>-` for staging.
_PID_MARK = re.compile(r"\.pid(\d+)\.|-pid(\d+)-")
# Leftovers without a pid mark (written before the mark existed) count as orphans after a day.
UNMARKED_ORPHAN_AGE_S = 24 * 3600


def _temp_prefix(name: str) -> str:
    return f".{name}.pid{os.getpid()}."


def staging_prefix(what: str) -> str:
    """Prefix for a staging folder of this process (see ``LocalBlobStore.sweep_orphans``)."""
    return f"{what}-pid{os.getpid()}-"


class LocalBlobStore:
    """A directory tree; keys are relative POSIX paths."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def describe(self, key: str) -> str:
        return str(self.path(key)) if key else str(self.root)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix`` (plain string prefix, as on S3); hidden paths are skipped."""
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(
            k for k in keys if k.startswith(prefix) and not any(part.startswith(".") for part in k.split("/"))
        )

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def staging_dir(self) -> Path:
        """Where to build large objects so that ``put_file`` is a same-filesystem rename."""
        staging = self.root / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def sweep_orphans(self, now: float | None = None) -> list[str]:
        """Delete temp files and staging folders left by writers that were killed; returns what went.

        Work in progress is kept: an entry whose writer (the pid in its name) is still that process
        stays, whatever its age. Entries without a pid mark are removed once a day old.
        """
        if not self.root.is_dir():
            return []
        now = time.time() if now is None else now
        candidates = [p for p in self.root.rglob(f".*{TEMP_SUFFIX}") if p.is_file()]
        staging = self.root / STAGING_DIR
        if staging.is_dir():
            candidates.extend(staging.iterdir())
        removed = []
        for path in sorted(candidates):
            try:
                modified = path.lstat().st_mtime
            except FileNotFoundError:
                continue  # its writer finished meanwhile
            match = _PID_MARK.search(path.name)
            if match:
                pid = int(match.group(1) or match.group(2))
                # The writer started before it wrote the entry: a live pid started later is another process.
                orphan = liveness(pid, run_started_at=modified) is not Liveness.ALIVE
            else:
                orphan = now - modified > UNMARKED_ORPHAN_AGE_S
            if orphan:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path.relative_to(self.root).as_posix())
        return removed

    def put_file(self, key: str, path: Path) -> None:
        """Move a finished local file into place atomically (rename; copy first across filesystems)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError:
            fd, tmp = tempfile.mkstemp(
                dir=target.parent, prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX
            )
            os.close(fd)
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc

    def modified_at(self, key: str) -> float:
        """Unix time the object was last written (the file's modification time)."""
        try:
            return self.path(key).stat().st_mtime
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay_s: float = 0.2,
    transient: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
) -> T:
    """Run ``action``, retrying transient faults with exponential backoff; permanent ones raise at once."""
    for attempt in range(attempts):
        try:
            return action()
        except transient:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay_s * 2**attempt)
    raise AssertionError("unreachable")


class S3BlobStore:
    """An S3 bucket/prefix (AWS S3 or an on-prem S3-compatible store via ``endpoint_url``)."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key) if key else self.prefix}"

    def _transient(self) -> tuple[type[BaseException], ...]:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import ReadTimeoutError

        return (BotoConnectionError, ReadTimeoutError, ConnectionError, TimeoutError)

    def put_bytes(self, key: str, data: bytes) -> None:
        with_retries(
            lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data),
            transient=self._transient(),
        )

    def get_bytes(self, key: str) -> bytes:
        try:
            response = with_retries(
                lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key)),
                transient=self._transient(),
            )
        except self.client.exceptions.NoSuchKey as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with_retries(
                lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)),
                transient=self._transient(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _list(self, full_prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in self._list(full))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def staging_dir(self) -> None:
        return None  # the system temp dir

    def put_file(self, key: str, path: Path) -> None:
        """Upload (multipart for large files); the object appears only when the upload completes."""
        with_retries(
            lambda: self.client.upload_file(str(path), self.bucket, self._key(key)),
            transient=self._transient(),
        )

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except self.client.exceptions.ClientError as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc

    def modified_at(self, key: str) -> float:
        """Unix time the object was last written (S3 LastModified)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            raise BlobNotFoundError(f"no object at {self.describe(key)}") from exc
        return head["LastModified"].timestamp()


# Prefix of AstroMined's own key-value entries in a Parquet file's schema metadata.
PARQUET_METADATA_PREFIX = "astromined."


def write_parquet(
    store: BlobStore, key: str, frame: pd.DataFrame, metadata: Mapping[str, str] | None = None
) -> int:
    """Write a DataFrame as one Parquet object atomically; returns the object size in bytes. ``metadata``
    travels with the data in the file's schema metadata (read back by `read_parquet_metadata`)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        extra = {f"{PARQUET_METADATA_PREFIX}{k}".encode(): str(v).encode() for k, v in metadata.items()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue()
    store.put_bytes(key, data)
    return len(data)


def read_parquet(store: BlobStore, key: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(store.get_bytes(key))).to_pandas()


def read_arrow_columns(store: BlobStore, key: str, columns: Sequence[str]) -> pa.Table:
    """Only ``columns`` of a Parquet object, as Arrow: the other columns are not decoded. Raises ValueError
    naming the object and the columns it lacks."""
    parquet = pq.ParquetFile(io.BytesIO(store.get_bytes(key)))
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise ValueError(f"{store.describe(key)} lacks column(s) {missing}")
    return parquet.read(columns=list(columns))


def read_parquet_metadata(store: BlobStore, key: str) -> dict[str, str]:
    """The entries `write_parquet` stored with ``metadata`` (empty for files written without)."""
    schema = pq.read_schema(io.BytesIO(store.get_bytes(key)))
    prefix = PARQUET_METADATA_PREFIX.encode()
    return {
        k[len(prefix) :].decode(): v.decode()
        for k, v in (schema.metadata or {}).items()
        if k.startswith(prefix)
    }
