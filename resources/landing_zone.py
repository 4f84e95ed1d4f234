"""The landing zone: where downlink files and the survey catalog arrive.

Production: a bucket prefix the ground stations write to. Local: a directory the fleet simulator
fills (the simulator, not a mock: real CCSDS bytes, real faults). Layout in both::

    downlinks/<YYYY-MM-DD>/sat-NNN_<received>.ccsds
    catalog/survey_labels.parquet
"""

import dataclasses
import datetime as dt
import json

import dagster as dg
import pandas as pd

from astromined.fleet import SATELLITE_IDS
from astromined.sim.downlink import simulate_satellite_day
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

    def days_with_downlinks(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self.store().list_keys("downlinks/") if k.count("/") >= 2})

    def survey_catalog(self) -> pd.DataFrame:
        store = self.store()
        if not store.exists(CATALOG_KEY):
            raise LandingZoneMissingError(f"survey catalog not found at {store.describe(CATALOG_KEY)}")
        return read_parquet(store, CATALOG_KEY)


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

    def prepare_day(self, day: dt.date, progress=None) -> None:
        """Simulate the day's downlinks unless this exact simulation already wrote them (idempotent)."""
        self.ensure_catalog()
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
