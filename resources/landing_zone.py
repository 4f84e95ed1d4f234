"""The landing zone: where downlink files and the survey catalog arrive.

Production: a bucket prefix the ground stations write to. Local: a directory the fleet simulator
fills (the simulator, not a mock: real CCSDS bytes, real faults), ``resources/simulated_landing_zone.py``,
kept apart so that this module, and the product code using it, never load the simulator. Layout in all::

    downlinks/<YYYY-MM-DD>/sat-NNN_<received>.ccsds
    catalog/survey_labels.parquet
    calibration/fleet_response_vNNNN.json   (the fleet calibration table, one file per version)
"""

import dataclasses
import datetime as dt

import dagster as dg
import pandas as pd

from astromined.calibration import (
    CALIBRATION_PREFIX,
    CalibrationError,
    FleetCalibration,
    calibration_key,
    is_calibration_key,
    select_for_day,
)
from astromined.storage import BlobStore, LocalBlobStore, S3BlobStore, read_parquet

CATALOG_KEY = "catalog/survey_labels.parquet"


class LandingZoneMissingError(FileNotFoundError):
    pass


@dataclasses.dataclass(frozen=True)
class DownlinkObject:
    key: str
    name: str
    size: int


def day_prefix(day: dt.date) -> str:
    return f"downlinks/{day.isoformat()}/"


class LandingZoneResource(dg.ConfigurableResource):
    """Base class for landing zones. Subclasses supply ``store()``."""

    def store(self) -> BlobStore:
        raise NotImplementedError

    def prepare_day(self, day: dt.date) -> None:
        """Hook for local simulation; the real landing zone is filled by ground stations."""

    def list_downlinks(self, day: dt.date) -> list[DownlinkObject]:
        store = self.store()
        keys = [k for k in store.list_keys(day_prefix(day)) if not k.rsplit("/", 1)[-1].startswith("_")]
        return [DownlinkObject(key=k, name=k.rsplit("/", 1)[-1], size=store.size(k)) for k in keys]

    def read(self, key: str) -> bytes:
        return self.store().get_bytes(key)

    def newest_landed_at(self, downlinks: list[DownlinkObject]) -> float:
        """Unix time the newest of these downlink files landed (file mtime / S3 LastModified)."""
        if not downlinks:
            raise ValueError("newest_landed_at() needs at least one downlink file")
        store = self.store()
        return max(store.modified_at(d.key) for d in downlinks)

    def days_with_downlinks(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self.store().list_keys("downlinks/") if k.count("/") >= 2})

    def survey_catalog(self) -> pd.DataFrame:
        store = self.store()
        if not store.exists(CATALOG_KEY):
            raise LandingZoneMissingError(f"survey catalog not found at {store.describe(CATALOG_KEY)}")
        return read_parquet(store, CATALOG_KEY)

    def fleet_calibrations(self) -> list[FleetCalibration]:
        """Every delivered version of the fleet calibration table (a file's name must match its version)."""
        store = self.store()
        versions = []
        for key in sorted(k for k in store.list_keys(CALIBRATION_PREFIX) if is_calibration_key(k)):
            calibration = FleetCalibration.from_json(store.get_bytes(key), store.describe(key))
            if calibration_key(calibration.version) != key:
                raise CalibrationError(f"{store.describe(key)} holds version {calibration.version}")
            versions.append(calibration)
        return versions

    def fleet_calibration(self, day: dt.date) -> FleetCalibration:
        """The calibration version in force on ``day`` (latest valid_from on or before it)."""
        versions = self.fleet_calibrations()
        if not versions:
            raise LandingZoneMissingError(
                f"no fleet calibration table at {self.store().describe(CALIBRATION_PREFIX)}"
            )
        return select_for_day(versions, day)


class LocalLandingZoneResource(LandingZoneResource):
    """A directory the ground segment delivers into (an NFS mount or rsync target), in the same layout."""

    root: str

    def store(self) -> LocalBlobStore:
        return LocalBlobStore(self.root)


class S3LandingZoneResource(LandingZoneResource):
    """The ground stations' landing bucket (AWS S3 or the on-prem S3-compatible store)."""

    bucket: str
    prefix: str = "landing"
    endpoint_url: str | None = None
    region_name: str | None = None

    def store(self) -> S3BlobStore:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name)
        return S3BlobStore(client, self.bucket, self.prefix)
