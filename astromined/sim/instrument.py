"""The simulated fleet's nominal detector response, and the lab calibration delivered with it.

Each satellite gets a fixed per-band gain (1 + 3 % spread, within 0.9–1.1) and a photometric zero point
(0.05 mag spread, within ±0.15 mag), drawn from their own random stream of the fleet seed: the same
seed always builds the same instruments, and the nominal observation stream is untouched. The simulator
applies this response to every measurement; the lab calibration (version 1 of the fleet calibration
table) reports it exactly, valid from the fleet's launch.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from astromined import fleet
from astromined.calibration import FleetCalibration
from astromined.telemetry.packet_format import N_BANDS

GAIN_SPREAD = 0.03
GAIN_LIMITS = (0.9, 1.1)
ZERO_POINT_SPREAD_MAG = 0.05
ZERO_POINT_LIMIT_MAG = 0.15
# Before the first daily partition (the mission starts 2025-01-01): the lab calibration covers every day.
FLEET_LAUNCH = dt.date(2024, 7, 1)
LAB_CALIBRATION_VERSION = 1
_INSTRUMENT_STREAM = 0xCA1B


@functools.lru_cache(maxsize=8)
def nominal_response(seed: int) -> FleetCalibration:
    """The fleet's detector response for a simulation seed (deterministic; cached)."""
    rng = np.random.default_rng([seed, _INSTRUMENT_STREAM])
    ids = fleet.SATELLITE_IDS.astype(np.int64)
    gains = np.clip(1.0 + GAIN_SPREAD * rng.standard_normal((len(ids), N_BANDS)), *GAIN_LIMITS)
    zero_points = np.clip(
        ZERO_POINT_SPREAD_MAG * rng.standard_normal(len(ids)), -ZERO_POINT_LIMIT_MAG, ZERO_POINT_LIMIT_MAG
    )
    return FleetCalibration(
        version=LAB_CALIBRATION_VERSION,
        valid_from=FLEET_LAUNCH,
        satellite_ids=ids,
        gains=gains,
        zero_points_mag=zero_points,
        source=f"pre-launch lab calibration of the simulated fleet (seed {seed})",
    )
