"""The landing zone: where downlink files and the survey catalog arrive.

Production: a bucket prefix the ground stations write to. Local: a directory the fleet simulator
fills (the simulator, not a mock: real CCSDS bytes, real faults). Layout in both::

    downlinks/<YYYY-MM-DD>/sat-NNN_<received>.ccsds
    catalog/survey_labels.parquet
    calibration/fleet_response_vNNNN.json   (the fleet calibration table, one file per version)
"""

import dataclasses
import datetime as dt
import json

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
from astromined.fleet import SATELLITE_IDS
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population, survey_catalog
from astromined.sim.scenarios import Scenarios
from astromined.storage import BlobStore, LocalBlobStore, S3BlobStore, read_parquet, write_parquet

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


class SimulatedLandingZoneResource(LocalLandingZoneResource):
    """A local directory filled on demand by the deterministic fleet simulator."""

    seed: int = 42
    observations_per_satellite: int = 40
    population_size: int = 20_000
    # Drift scenarios as JSON (astromined.sim.scenarios.Scenarios.to_json); "[]" is the nominal fleet.
    scenarios_json: str = "[]"

    def _marker(self, day: dt.date) -> str:
        return f"{day_prefix(day)}_SIMULATED.json"

    def _scenarios(self) -> Scenarios:
        return Scenarios.from_json(self.scenarios_json)

    def _simulation_signature(self, day: dt.date | None = None) -> dict:
        signature = {
            "seed": self.seed,
            "observations_per_satellite": self.observations_per_satellite,
            "population_size": self.population_size,
        }
        # Only the scenarios active on the day (all of them without a day) count: switching scenarios
        # regenerates exactly the days they touch. None active simulates the nominal bytes, so the key is
        # left out and markers written without scenarios stay valid.
        scenarios = self._scenarios() if day is None else self._scenarios().on_day(day)
        if len(scenarios):
            signature["scenarios"] = json.loads(scenarios.to_json())
        return signature

    def ensure_catalog(self) -> None:
        store = self.store()
        if not store.exists(CATALOG_KEY):
            population = generate_population(self.population_size, self.seed)
            write_parquet(store, CATALOG_KEY, survey_catalog(population))

    def ensure_calibration(self) -> None:
        """Deliver the simulated fleet's lab calibration (version 1) unless it is already there."""
        store = self.store()
        lab = nominal_response(self.seed)
        if not store.exists(calibration_key(lab.version)):
            store.put_bytes(calibration_key(lab.version), lab.to_json())

    def fleet_calibration(self, day: dt.date) -> FleetCalibration:
        self.ensure_calibration()
        return super().fleet_calibration(day)

    def prepare_day(self, day: dt.date, progress=None) -> None:
        """Simulate the day's downlinks unless this exact simulation already wrote them (idempotent)."""
        self.ensure_catalog()
        self.ensure_calibration()
        store = self.store()
        marker = self._marker(day)
        signature = self._simulation_signature(day)
        if store.exists(marker) and json.loads(store.get_bytes(marker)) == signature:
            return
        for stale in store.list_keys(day_prefix(day)):
            store.delete(stale)
        population = generate_population(self.population_size, self.seed)
        scenarios = self._scenarios()
        for satellite_id in SATELLITE_IDS:
            downlink = simulate_satellite_day(
                population,
                day,
                int(satellite_id),
                self.observations_per_satellite,
                self.seed,
                scenarios=scenarios,
            )
            store.put_bytes(day_prefix(day) + downlink.file_name, downlink.data)
            if progress is not None:
                progress(1)
        store.put_bytes(marker, json.dumps(signature).encode())


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
