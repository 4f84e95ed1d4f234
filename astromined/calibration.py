"""The fleet calibration table: each satellite's nominal detector response, delivered by the instrument team.

Every satellite's spectrometer has its own per-band gain (measured reflectance = true reflectance × gain,
a few per cent around 1) and its own photometric zero point (measured magnitude = true magnitude +
zero point). The instrument team measures both in the lab before launch and delivers them as a versioned
calibration file; a recalibration campaign delivers a new version with the date it is valid from. The
ground segment never edits a delivered version: a correction is a new version.

File (JSON, one per version, in the landing zone next to the survey catalog)::

    calibration/fleet_response_v0001.json
    {"format": "astromined.fleet_calibration/1", "version": 1, "valid_from": "2024-07-01",
     "source": "...", "bands_um": [0.45, ...],
     "satellites": [{"satellite_id": 1, "zero_point_mag": 0.031, "gain": [1.012, ...]}, ...]}

For an observation day the pipeline uses the version with the latest ``valid_from`` on or before that day
(the newest version wins a tie), as astronomical calibration databases do. ``calibrate`` applies the
inverse response, so features do not depend on which satellite looked. Unknown changes after the lab
measurement (gain drift, a firmware calibration step) are not in any version: the drift sensor finds
those.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM, N_BANDS

FORMAT = "astromined.fleet_calibration/1"
CALIBRATION_PREFIX = "calibration/"
_KEY = re.compile(r"calibration/fleet_response_v(?P<version>[0-9]{4})\.json")


class CalibrationError(ValueError):
    """A calibration file is malformed, or no calibration covers what is asked of it."""


def calibration_key(version: int) -> str:
    return f"{CALIBRATION_PREFIX}fleet_response_v{version:04d}.json"


def is_calibration_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


@dataclasses.dataclass(frozen=True, eq=False)
class FleetCalibration:
    """One version of the fleet's nominal response: rows sorted by satellite id."""

    version: int
    valid_from: dt.date
    satellite_ids: np.ndarray  # (n,) int64, sorted, unique
    gains: np.ndarray  # (n, N_BANDS) float64, > 0
    zero_points_mag: np.ndarray  # (n,) float64
    source: str = ""

    def __post_init__(self) -> None:
        ids = np.asarray(self.satellite_ids, dtype=np.int64)
        gains = np.asarray(self.gains, dtype=np.float64)
        zero_points = np.asarray(self.zero_points_mag, dtype=np.float64)
        where = f"fleet calibration v{self.version}"
        if ids.ndim != 1 or len(ids) == 0:
            raise CalibrationError(f"{where}: no satellites")
        if gains.shape != (len(ids), N_BANDS):
            raise CalibrationError(f"{where}: gain must be {len(ids)} × {N_BANDS}, got {gains.shape}")
        if zero_points.shape != ids.shape:
            raise CalibrationError(f"{where}: {len(zero_points)} zero points for {len(ids)} satellites")
        unique, counts = np.unique(ids, return_counts=True)
        if len(unique) != len(ids):
            duplicated = unique[counts > 1].tolist()
            raise CalibrationError(f"{where}: satellite(s) listed twice: {duplicated[:10]}")
        bad_gain = ~(np.isfinite(gains) & (gains > 0)).all(axis=1)
        if bad_gain.any():
            raise CalibrationError(
                f"{where}: gain must be finite and > 0; not for satellite(s) {ids[bad_gain][:10].tolist()}"
            )
        bad_zero_point = ~np.isfinite(zero_points)
        if bad_zero_point.any():
            raise CalibrationError(
                f"{where}: non-finite zero point for satellite(s) {ids[bad_zero_point][:10].tolist()}"
            )
        order = np.argsort(ids)
        for field, values in (("satellite_ids", ids), ("gains", gains), ("zero_points_mag", zero_points)):
            frozen = values[order]
            frozen.setflags(write=False)  # versions are immutable (and shared through caches)
            object.__setattr__(self, field, frozen)

    @classmethod
    def identity(cls, satellite_ids: Iterable[int], version: int = 0) -> FleetCalibration:
        """Gain 1 and zero point 0 everywhere: an ideal fleet (for tests and comparisons)."""
        ids = np.asarray(sorted(set(satellite_ids)), dtype=np.int64)
        return cls(version, dt.date.min, ids, np.ones((len(ids), N_BANDS)), np.zeros(len(ids)), "identity")

    def rows_for(self, satellite_ids: np.ndarray) -> np.ndarray:
        """Row index into this table of each satellite id; raises naming the satellites it lacks."""
        ids = np.asarray(satellite_ids, dtype=np.int64)
        rows = np.clip(np.searchsorted(self.satellite_ids, ids), 0, len(self.satellite_ids) - 1)
        missing = self.satellite_ids[rows] != ids
        if missing.any():
            raise CalibrationError(
                f"fleet calibration v{self.version} has no entry for satellite(s) "
                f"{sorted(set(ids[missing].tolist()))[:10]}"
            )
        return rows

    def calibrate(
        self, satellite_ids: np.ndarray, reflectance: np.ndarray, magnitude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inverse response per observation: (reflectance / gain, magnitude − zero point)."""
        rows = self.rows_for(satellite_ids)
        return (
            np.asarray(reflectance, np.float64) / self.gains[rows],
            np.asarray(magnitude, np.float64) - self.zero_points_mag[rows],
        )

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "valid_from": self.valid_from.isoformat(),
            "source": self.source,
            "bands_um": list(BAND_WAVELENGTHS_UM),
            "satellites": [
                {"satellite_id": int(s), "zero_point_mag": float(z), "gain": [float(g) for g in gain]}
                for s, z, gain in zip(self.satellite_ids, self.zero_points_mag, self.gains, strict=True)
            ],
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, name: str = "fleet calibration") -> FleetCalibration:
        """Parse and check a calibration file; errors name the file and the field at fault."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{name}: not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise CalibrationError(f"{name}: field 'format' must be {FORMAT!r}")
        try:
            bands = [float(b) for b in document["bands_um"]]
            if bands != list(BAND_WAVELENGTHS_UM):
                raise CalibrationError(
                    f"field 'bands_um' {bands} differs from the packet format's bands "
                    f"{list(BAND_WAVELENGTHS_UM)}"
                )
            satellites = document["satellites"]
            for index, entry in enumerate(satellites):
                if len(entry["gain"]) != N_BANDS:
                    raise CalibrationError(
                        f"satellites[{index}].gain has {len(entry['gain'])} values, not {N_BANDS}"
                    )
            return cls(
                version=int(document["version"]),
                valid_from=dt.date.fromisoformat(document["valid_from"]),
                satellite_ids=np.asarray([int(e["satellite_id"]) for e in satellites], dtype=np.int64),
                gains=np.asarray([[float(g) for g in e["gain"]] for e in satellites], dtype=np.float64),
                zero_points_mag=np.asarray([float(e["zero_point_mag"]) for e in satellites]),
                source=str(document.get("source", "")),
            )
        except CalibrationError as exc:
            raise CalibrationError(f"{name}: {exc}") from exc
        except KeyError as exc:
            raise CalibrationError(f"{name}: missing field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{name}: bad value: {exc}") from exc


def select_for_day(calibrations: Iterable[FleetCalibration], day: dt.date) -> FleetCalibration:
    """The version in force on ``day``: latest ``valid_from`` on or before it, the newest version on a tie."""
    candidates = list(calibrations)
    valid = [c for c in candidates if c.valid_from <= day]
    if not valid:
        known = sorted((c.version, c.valid_from.isoformat()) for c in candidates)
        raise CalibrationError(f"no fleet calibration is valid on {day}; versions (valid from): {known}")
    return max(valid, key=lambda c: (c.valid_from, c.version))
