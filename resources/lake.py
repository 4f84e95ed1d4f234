"""The lake: where tables, models and uplink packages live. A local directory or an S3 bucket."""

import shutil
import time
import uuid

import dagster as dg

from astromined.storage import BlobStore, LocalBlobStore, S3BlobStore


class LakeResource(dg.ConfigurableResource):
    """Base class: assets depend on this type; each environment supplies one implementation."""

    def store(self) -> BlobStore:
        raise NotImplementedError

    def free_bytes(self) -> int | None:
        """Free space where the lake lives, when that is knowable (local disk)."""
        return None

    def sweep_orphans(self) -> list[str]:
        """Remove temp and staging files of killed writers (a local directory has them; an S3 PUT is
        atomic and leaves none). Returns what was removed."""
        return []

    def probe(self) -> tuple[bool, str]:
        """Write, read back and delete a small object: is the lake writable right now?"""
        store = self.store()
        key = f"_readiness/probe-{uuid.uuid4().hex}"
        payload = uuid.uuid4().bytes
        started = time.perf_counter()
        try:
            store.put_bytes(key, payload)
            ok = store.get_bytes(key) == payload
            store.delete(key)
        except Exception as exc:  # readiness reports any failure, it does not raise
            return False, f"{store.describe(key)}: {type(exc).__name__}: {exc}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        return ok, f"round trip {elapsed_ms:.1f} ms at {store.describe('')}"


class LocalLakeResource(LakeResource):
    root: str

    def store(self) -> LocalBlobStore:
        return LocalBlobStore(self.root)

    def sweep_orphans(self) -> list[str]:
        return self.store().sweep_orphans()

    def free_bytes(self) -> int | None:
        path = self.store().root
        while not path.exists() and path != path.parent:  # the lake dir may not exist yet
            path = path.parent
        return shutil.disk_usage(path).free


class S3LakeResource(LakeResource):
    bucket: str
    prefix: str = "lake"
    endpoint_url: str | None = None
    region_name: str | None = None

    def store(self) -> S3BlobStore:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name)
        return S3BlobStore(client, self.bucket, self.prefix)
