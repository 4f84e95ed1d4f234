"""What the local simulated fleet can be set to: its scale (``ASTROMINED_SCALE``) and its drift
(``ASTROMINED_DRIFT``). Plain data, no simulator code.

Both sides use these: ``astromined.environment`` validates the variables and ``resources`` hands the
chosen preset to the simulated landing zone as config, without loading the simulator; the simulator
(``astromined.sim.scenarios``) parses and validates the same drift presets into ``Scenarios``.

A drift preset is a list of scenarios in the simulator's config form (``Scenarios.to_dict`` per
scenario, every field given); ``drift_preset_json`` renders it canonically, byte for byte what
``Scenarios.to_json`` writes, because that JSON is the simulated landing zone's regeneration signature.
docs/simulator.md describes each preset.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class Scale:
    """How much the simulated fleet downlinks per day."""

    name: str
    observations_per_satellite: int
    population_size: int


SCALES: dict[str, Scale] = {
    # Enough to train a real model in seconds: for tests and the CLI smoke path.
    "tiny": Scale("tiny", observations_per_satellite=12, population_size=4_000),
    # `make run`: ~20,000 packets (2 MB) a day across 500 satellites.
    "default": Scale("default", observations_per_satellite=40, population_size=20_000),
    # ≥ 1 GB of downlink for one day (10.5 M packets), for benchmarks.
    "benchmark": Scale("benchmark", observations_per_satellite=21_000, population_size=200_000),
    # A quarter of that day (0.26 GB), for benchmarks that need a month of days on local disk.
    "benchmark-quarter": Scale(
        "benchmark-quarter", observations_per_satellite=5_250, population_size=200_000
    ),
}

DRIFT_PRESETS: dict[str, tuple[dict[str, Any], ...]] = {
    # The nominal fleet.
    "none": (),
    # March 2025: clean until the 5th (a reference window), then one of each scenario.
    "demo": (
        {
            "kind": "corruption_burst",
            "satellites": [31, 32, 33, 34, 35],
            "start": "2025-03-06",
            "end": "2025-03-07",
            "bit_flip_rate": 0.05,
            "truncated_file_rate": 1.0,
            "duplicate_rate": 0.10,
            "loss_rate": None,
            "garbage_bytes": 1_500,
        },
        {
            "kind": "gain_drift",
            "satellites": [7, 123, 256, 389],
            "start": "2025-03-10",
            "end": "2025-03-20",
            "rate_per_day": 0.02,
        },
        {
            "kind": "composition_shift",
            "sectors": [12, 13],
            "start": "2025-03-12",
            "end": "2025-03-18",
            "complex": "M",
            "weight": 8.0,
        },
        {
            "kind": "calibration_step",
            "satellites": None,
            "start": "2025-03-22",
            "end": None,
            "ir_factor": 0.93,
            "factor_by_band": None,
        },
    ),
}


def drift_preset_json(name: str) -> str:
    """The preset as canonical scenarios JSON (sorted keys, no spaces): ``Scenarios.to_json`` of it."""
    return json.dumps(list(DRIFT_PRESETS[name]), sort_keys=True, separators=(",", ":"))
