"""The local landing zone filled on demand by the deterministic fleet simulator (``make run``, tests).

The one resource that runs the simulator (an allowed exception of the import contract,
tests/unit/test_import_contract.py): the other landing zones, in ``resources/landing_zone.py``, do not
load it.
"""

import datetime as dt
import json

from astromined.calibration import FleetCalibration, calibration_key
from astromined.fleet import SATELLITE_IDS
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population, survey_catalog
from astromined.sim.scenarios import Scenarios
from astromined.storage import write_parquet
from resources.landing_zone import CATALOG_KEY, LocalLandingZoneResource, day_prefix


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
