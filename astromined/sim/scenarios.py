"""Drift scenarios for the fleet simulator, each switched on for a date range (pure: no Dagster).

Four kinds, each a frozen dataclass with ``start``/``end`` dates (inclusive) and an
``applies(day, satellite_id)`` rule:

- ``GainDrift``: the detector gain of some satellites grows linearly day by day. Measured reflectance is
  multiplied by the gain and the apparent magnitude brightens by 2.5 log10(gain), so the radiometric
  albedo (thermal flux + magnitude) of what those satellites see rises; the thermal channel is unaffected.
- ``CompositionShift``: in some sectors the satellites preferentially observe one complex (its sampling
  weights are multiplied by ``weight``), shifting the class mix of the sector's feature rows.
- ``CalibrationStep``: a firmware update changes the calibration from ``start`` on (open-ended when
  ``end`` is None): per-band factors, or one ``ir_factor`` on the bands at or beyond 1.0 µm. Normalized
  IR reflectance, spectral slope and the 1 µm band depth move.
- ``CorruptionBurst``: the link of some satellites degrades: its fault rates replace the nominal ones and
  ``garbage_bytes`` octets of noise are inserted between packets (quarantined as ``unframed_bytes``).

``Scenarios`` holds a tuple of them, serializes to canonical JSON (the simulated landing zone's config and
its regeneration signature) and reduces the scenarios active for one (day, satellite) to ``Effects``,
which ``astromined.sim.downlink.simulate_satellite_day`` applies. docs/simulator.md describes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from astromined import fleet
from astromined.fleet_presets import DRIFT_PRESETS, drift_preset_json
from astromined.taxonomy import COMPLEXES
from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM, N_BANDS

IR_CUTOFF_UM = 1.0
IR_BANDS: tuple[int, ...] = tuple(i for i, w in enumerate(BAND_WAVELENGTHS_UM) if w >= IR_CUTOFF_UM)
# LinkConditions fields a corruption burst may override (kept here: downlink.py imports this module).
LINK_RATE_FIELDS: tuple[str, ...] = ("duplicate_rate", "bit_flip_rate", "loss_rate", "truncated_file_rate")


class ScenarioError(ValueError):
    """An invalid scenario. ``field`` names the offending field (``kind``, ``satellites``, ``end``, ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- field validation ----------------------------------------------------------------------------------


def _date(kind: str, name: str, value: Any, optional: bool = False) -> dt.date | None:
    if value is None and optional:
        return None
    if isinstance(value, dt.datetime):
        raise ScenarioError(f"{kind}.{name}", f"{value!r} is a datetime; give a date (YYYY-MM-DD)")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ScenarioError(f"{kind}.{name}", f"{value!r} is not a date (YYYY-MM-DD)")


def _ids(
    kind: str, name: str, value: Any, low: int, high: int, optional: bool = False
) -> tuple[int, ...] | None:
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise ScenarioError(f"{kind}.{name}", f"{value!r} is not a list of integers")
    if not value:
        raise ScenarioError(f"{kind}.{name}", "must not be empty" + (" (null means all)" if optional else ""))
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ScenarioError(f"{kind}.{name}", f"{item!r} is not an integer")
        if not low <= item <= high:
            raise ScenarioError(f"{kind}.{name}", f"{item} is outside {low}..{high}")
    return tuple(int(item) for item in value)


def _number(kind: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ScenarioError(f"{kind}.{name}", f"{value!r} is not a number")
    if not math.isfinite(value):
        raise ScenarioError(f"{kind}.{name}", f"{value!r} is not finite")
    return float(value)


def _positive(kind: str, name: str, value: Any) -> float:
    number = _number(kind, name, value)
    if number <= 0.0:
        raise ScenarioError(f"{kind}.{name}", f"{number} must be > 0")
    return number


def _rate(kind: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    number = _number(kind, name, value)
    if not 0.0 <= number <= 1.0:
        raise ScenarioError(f"{kind}.{name}", f"{number} is outside 0..1")
    return number


# --- scenarios -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Scenario:
    kind: ClassVar[str]
    start: dt.date
    end: dt.date | None

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_dates(self, open_ended: bool = False) -> None:
        self._set("start", _date(self.kind, "start", self.start))
        self._set("end", _date(self.kind, "end", self.end, optional=open_ended))
        if self.end is not None and self.end < self.start:
            raise ScenarioError(f"{self.kind}.end", f"{self.end} is before start {self.start}")

    def in_range(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def applies(self, day: dt.date, satellite_id: int) -> bool:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, tuple):
                return list(value)
            return value

        return {"kind": self.kind, **{f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GainDrift(_Scenario):
    """Gain of ``satellites``: 1 + k · rate_per_day on the k-th day of the range (k = 1 on start)."""

    kind: ClassVar[str] = "gain_drift"
    satellites: tuple[int, ...]
    start: dt.date
    end: dt.date
    rate_per_day: float

    def __post_init__(self) -> None:
        self._set("satellites", _ids(self.kind, "satellites", self.satellites, 1, fleet.N_SATELLITES))
        self._check_dates()
        self._set("rate_per_day", _number(self.kind, "rate_per_day", self.rate_per_day))
        if self.gain_on(self.end) <= 0.0:
            raise ScenarioError(
                f"{self.kind}.rate_per_day",
                f"{self.rate_per_day} makes the gain reach {self.gain_on(self.end):.3f} (≤ 0) by {self.end}",
            )

    def applies(self, day: dt.date, satellite_id: int) -> bool:
        return self.in_range(day) and int(satellite_id) in self.satellites

    def gain_on(self, day: dt.date) -> float:
        return 1.0 + self.rate_per_day * ((day - self.start).days + 1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompositionShift(_Scenario):
    """Satellites of ``sectors`` sample bodies of ``complex`` with ``weight`` × their usual weight."""

    kind: ClassVar[str] = "composition_shift"
    sectors: tuple[int, ...]
    start: dt.date
    end: dt.date
    complex: str
    weight: float

    def __post_init__(self) -> None:
        self._set("sectors", _ids(self.kind, "sectors", self.sectors, 0, fleet.N_SECTORS - 1))
        self._check_dates()
        if self.complex not in COMPLEXES:
            choices = ", ".join(COMPLEXES)
            raise ScenarioError(f"{self.kind}.complex", f"{self.complex!r} is not one of {choices}")
        self._set("weight", _positive(self.kind, "weight", self.weight))

    def applies(self, day: dt.date, satellite_id: int) -> bool:
        return self.in_range(day) and int(fleet.sector_of_satellite(int(satellite_id))) in self.sectors


@dataclasses.dataclass(frozen=True, kw_only=True)
class CalibrationStep(_Scenario):
    """A firmware update from ``start`` (to ``end``, or for good): measured reflectance × a factor per band.

    Give either ``factor_by_band`` (N_BANDS factors) or ``ir_factor`` (bands ≥ 1.0 µm), not both.
    ``satellites`` None means the whole fleet.
    """

    kind: ClassVar[str] = "calibration_step"
    satellites: tuple[int, ...] | None = None
    start: dt.date
    end: dt.date | None = None
    ir_factor: float | None = None
    factor_by_band: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        satellites = _ids(self.kind, "satellites", self.satellites, 1, fleet.N_SATELLITES, optional=True)
        self._set("satellites", satellites)
        self._check_dates(open_ended=True)
        if (self.ir_factor is None) == (self.factor_by_band is None):
            raise ScenarioError(f"{self.kind}.ir_factor", "give exactly one of ir_factor and factor_by_band")
        if self.ir_factor is not None:
            self._set("ir_factor", _positive(self.kind, "ir_factor", self.ir_factor))
        else:
            factors = self.factor_by_band
            if isinstance(factors, str | bytes) or not isinstance(factors, tuple | list):
                raise ScenarioError(f"{self.kind}.factor_by_band", f"{factors!r} is not a list of numbers")
            if len(factors) != N_BANDS:
                raise ScenarioError(
                    f"{self.kind}.factor_by_band", f"has {len(factors)} factors, expected {N_BANDS}"
                )
            self._set(
                "factor_by_band", tuple(_positive(self.kind, "factor_by_band", value) for value in factors)
            )

    def applies(self, day: dt.date, satellite_id: int) -> bool:
        return self.in_range(day) and (self.satellites is None or int(satellite_id) in self.satellites)

    def band_factors(self) -> np.ndarray:
        if self.factor_by_band is not None:
            return np.asarray(self.factor_by_band, dtype=np.float64)
        factors = np.ones(N_BANDS)
        factors[list(IR_BANDS)] = self.ir_factor
        return factors


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorruptionBurst(_Scenario):
    """A degraded link: given rates replace the nominal LinkConditions; noise octets go between packets.

    A rate left None keeps the link's own. ``garbage_bytes`` is the total of random octets inserted into
    each affected file, in runs at packet boundaries. ``satellites`` None means the whole fleet.
    """

    kind: ClassVar[str] = "corruption_burst"
    satellites: tuple[int, ...] | None = None
    start: dt.date
    end: dt.date
    bit_flip_rate: float | None = None
    truncated_file_rate: float | None = None
    duplicate_rate: float | None = None
    loss_rate: float | None = None
    garbage_bytes: int = 0

    def __post_init__(self) -> None:
        satellites = _ids(self.kind, "satellites", self.satellites, 1, fleet.N_SATELLITES, optional=True)
        self._set("satellites", satellites)
        self._check_dates()
        for name in LINK_RATE_FIELDS:
            self._set(name, _rate(self.kind, name, getattr(self, name)))
        garbage = self.garbage_bytes
        if isinstance(garbage, bool) or not isinstance(garbage, int | np.integer) or garbage < 0:
            raise ScenarioError(f"{self.kind}.garbage_bytes", f"{garbage!r} is not an integer ≥ 0")
        self._set("garbage_bytes", int(garbage))
        if not self.garbage_bytes and all(getattr(self, name) is None for name in LINK_RATE_FIELDS):
            raise ScenarioError(
                f"{self.kind}.garbage_bytes", f"a burst needs garbage_bytes > 0 or one of {LINK_RATE_FIELDS}"
            )

    def applies(self, day: dt.date, satellite_id: int) -> bool:
        return self.in_range(day) and (self.satellites is None or int(satellite_id) in self.satellites)

    def link_rates(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in LINK_RATE_FIELDS if getattr(self, name) is not None}


Scenario = GainDrift | CompositionShift | CalibrationStep | CorruptionBurst
KINDS: dict[str, type[_Scenario]] = {
    cls.kind: cls for cls in (GainDrift, CompositionShift, CalibrationStep, CorruptionBurst)
}


# --- what the active scenarios do to one downlink ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Effects:
    """The combined effect of the scenarios active for one (day, satellite).

    Gains and calibration factors multiply, complex weights multiply, burst rates take the largest value
    given and garbage octets add up. ``nominal`` means no effect at all.
    """

    gain: float = 1.0
    band_factors: tuple[float, ...] | None = None
    complex_weights: tuple[tuple[str, float], ...] = ()
    link_rates: tuple[tuple[str, float], ...] = ()
    garbage_bytes: int = 0

    @property
    def nominal(self) -> bool:
        return self == NOMINAL

    @property
    def burst(self) -> bool:
        return bool(self.link_rates) or self.garbage_bytes > 0

    def reflectance_factor(self) -> np.ndarray | None:
        """Multiplier per band of the measured reflectance (gain × calibration); None when there is none."""
        if self.gain == 1.0 and self.band_factors is None:
            return None
        factors = np.ones(N_BANDS) if self.band_factors is None else np.asarray(self.band_factors)
        return self.gain * factors

    def magnitude_offset(self) -> float:
        """Added to the apparent magnitude: a higher gain makes the body look brighter (smaller m)."""
        return -2.5 * math.log10(self.gain)

    def sampling_factor(self, complexes: np.ndarray) -> np.ndarray | None:
        """Multiplier of each candidate body's sampling weight, from its complex; None when there is none."""
        if not self.complex_weights:
            return None
        factor = np.ones(len(complexes))
        for name, weight in self.complex_weights:
            factor[np.asarray(complexes) == name] *= weight
        return factor


NOMINAL = Effects()


# --- the container -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenarios:
    """An ordered tuple of scenarios; empty means the nominal simulation."""

    items: tuple[Scenario, ...] = ()

    def __post_init__(self) -> None:
        items = tuple(self.items)
        for index, item in enumerate(items):
            if not isinstance(item, tuple(KINDS.values())):
                raise ScenarioError(f"scenarios[{index}]", f"{item!r} is not a scenario")
        object.__setattr__(self, "items", items)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def active(self, day: dt.date, satellite_id: int) -> tuple[Scenario, ...]:
        return tuple(s for s in self.items if s.applies(day, satellite_id))

    def on_day(self, day: dt.date) -> Scenarios:
        """The scenarios whose date range covers ``day`` (for any satellite)."""
        return Scenarios(tuple(s for s in self.items if s.in_range(day)))

    def effects(self, day: dt.date, satellite_id: int) -> Effects:
        gain = 1.0
        band_factors: np.ndarray | None = None
        weights: dict[str, float] = {}
        rates: dict[str, float] = {}
        garbage = 0
        for scenario in self.active(day, satellite_id):
            if isinstance(scenario, GainDrift):
                gain *= scenario.gain_on(day)
            elif isinstance(scenario, CalibrationStep):
                factors = scenario.band_factors()
                band_factors = factors if band_factors is None else band_factors * factors
            elif isinstance(scenario, CompositionShift):
                weights[scenario.complex] = weights.get(scenario.complex, 1.0) * scenario.weight
            elif isinstance(scenario, CorruptionBurst):
                for name, rate in scenario.link_rates().items():
                    rates[name] = max(rates.get(name, 0.0), rate)
                garbage += scenario.garbage_bytes
        return Effects(
            gain=gain,
            band_factors=None if band_factors is None else tuple(float(f) for f in band_factors),
            complex_weights=tuple(sorted(weights.items())),
            link_rates=tuple(sorted(rates.items())),
            garbage_bytes=garbage,
        )

    def to_json(self) -> str:
        """Canonical JSON: a list of objects with sorted keys, dates as YYYY-MM-DD; ``[]`` when empty."""
        return json.dumps([s.to_dict() for s in self.items], sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Scenarios:
        """Parse and validate; a ScenarioError names the entry and field (``scenarios[1].satellites``)."""
        try:
            entries = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ScenarioError("scenarios", f"not valid JSON ({exc})") from exc
        if not isinstance(entries, list):
            raise ScenarioError("scenarios", "must be a JSON list of scenario objects")
        return cls(tuple(_from_dict(index, entry) for index, entry in enumerate(entries)))


def _from_dict(index: int, entry: Any) -> Scenario:
    where = f"scenarios[{index}]"
    if not isinstance(entry, dict):
        raise ScenarioError(where, f"{entry!r} is not an object")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ScenarioError(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in entry:
        if name != "kind" and name not in fields:
            raise ScenarioError(f"{where}.{name}", f"unknown field for {kind} (fields: {', '.join(fields)})")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in entry:
            raise ScenarioError(f"{where}.{name}", f"missing (required for {kind})")
    try:
        return cls(**{name: value for name, value in entry.items() if name != "kind"})
    except ScenarioError as exc:
        # exc.field is "<kind>.<field>"; report it under the entry's position instead.
        field = exc.field.split(".", 1)[-1]
        raise ScenarioError(f"{where}.{field}", exc.message) from exc


# --- presets -------------------------------------------------------------------------------------------

# The presets are plain data in astromined.fleet_presets (the environment and resources choose one without
# loading the simulator); here they are parsed and validated, so a bad preset fails on import.
PRESETS: dict[str, Scenarios] = {name: Scenarios.from_json(drift_preset_json(name)) for name in DRIFT_PRESETS}
DEMO_DRIFT = PRESETS["demo"]
