"""Drift scenarios through configuration: ASTROMINED_DRIFT → build_resources → the simulated landing zone.

Kept apart from test_scenarios.py because importing the resources package loads Dagster and torch.
"""

from __future__ import annotations

import datetime as dt
import json

from astromined import fleet
from astromined.environment import load_settings
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.sim.scenarios import DEMO_DRIFT, Scenarios
from resources import build_resources
from resources.simulated_landing_zone import SimulatedLandingZoneResource


def test_landing_zone_passes_scenarios_and_regenerates_only_affected_days(tmp_path) -> None:
    settings = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_DRIFT": "demo"})
    assert build_resources(settings)["landing_zone"].scenarios_json == DEMO_DRIFT.to_json()

    def zone(scenarios: Scenarios) -> SimulatedLandingZoneResource:
        return SimulatedLandingZoneResource(
            root=str(tmp_path / "lz"),
            observations_per_satellite=2,
            population_size=600,
            scenarios_json=scenarios.to_json(),
        )

    nominal, demo = zone(Scenarios()), zone(DEMO_DRIFT)
    clean_day, burst_day = dt.date(2025, 3, 1), dt.date(2025, 3, 6)
    store = demo.store()

    # A day no scenario covers keeps what the nominal simulation wrote: same signature, no rewrite.
    assert demo._simulation_signature(clean_day) == nominal._simulation_signature(clean_day)
    nominal_marker = json.dumps(nominal._simulation_signature(clean_day)).encode()
    store.put_bytes(f"downlinks/{clean_day}/_SIMULATED.json", nominal_marker)
    store.put_bytes(f"downlinks/{clean_day}/_kept", b"")  # a regeneration would delete it
    demo.prepare_day(clean_day)
    assert store.exists(f"downlinks/{clean_day}/_kept")

    # The burst day is simulated with the scenarios; switching back to nominal would regenerate it.
    demo.prepare_day(burst_day)
    files = {o.name[:7]: demo.read(o.key) for o in demo.list_downlinks(burst_day)}
    assert len(files) == fleet.N_SATELLITES
    population = generate_population(600, 42)
    for satellite, scenarios in ((31, DEMO_DRIFT), (30, None)):
        expected = simulate_satellite_day(population, burst_day, satellite, 2, 42, scenarios=scenarios)
        assert files[f"sat-{satellite:03d}"] == expected.data
    assert files["sat-031"] != simulate_satellite_day(population, burst_day, 31, 2, 42).data
    marker = json.loads(store.get_bytes(f"downlinks/{burst_day}/_SIMULATED.json"))
    assert marker == demo._simulation_signature(burst_day) != nominal._simulation_signature(burst_day)
    assert [s["kind"] for s in marker["scenarios"]] == ["corruption_burst"]
