"""The fleet simulator: a day of downlink files per satellite, deterministic per (day, satellite, seed).

Each satellite observes asteroids in its sector at random ranges and phase angles; measurement noise
grows with range and phase angle. Nominal link conditions add a few retransmitted duplicates, flipped
bits (CRC failures), lost packets (sequence gaps) and now and then a truncated file tail.

Drift scenarios (astromined.sim.scenarios) switched on for a (day, satellite) change what is observed
(composition shift), how it is measured (gain drift, calibration step) or the link (corruption burst).
With none active, the bytes are exactly those of the nominal simulation: scenario effects are applied only
when present and never draw from the nominal random stream (garbage octets come from their own stream).

Every measurement passes through the satellite's nominal detector response (astromined.sim.instrument:
per-band reflectance gain, magnitude zero point; fixed per seed), which the fleet calibration table
delivered with the fleet reports and the feature code removes. Scenario effects come on top of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from astromined import fleet, physics
from astromined.sim.instrument import nominal_response
from astromined.sim.population import Population
from astromined.sim.scenarios import NOMINAL, Effects, Scenarios
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.downlink_files import downlink_file_name
from astromined.telemetry.encode import encode_packets


@dataclasses.dataclass(frozen=True)
class LinkConditions:
    """Per-packet fault rates of a nominal downlink."""

    duplicate_rate: float = 0.005
    bit_flip_rate: float = 0.001
    loss_rate: float = 0.002
    truncated_file_rate: float = 0.01


@dataclasses.dataclass(frozen=True)
class Downlink:
    satellite_id: int
    file_name: str
    received_at: dt.datetime
    data: bytes


def _day_start(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


# Seeds the random stream of a corruption burst's garbage octets, apart from the nominal stream.
_GARBAGE_STREAM = 0x6A7BA6E
# The top five bits of a primary header's first octet (version, type, secondary header flag, APID bits).
_HEADER_FIRST_OCTET_MASK = 0xF8
_HEADER_FIRST_OCTET = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)


def _insert_garbage(
    raw: bytearray, garbage_bytes: int, avoid: np.ndarray, rng: np.random.Generator
) -> bytearray:
    """Insert ``garbage_bytes`` random octets, in runs of 1..199, at boundaries between packets.

    No garbage octet could start a packet header, so the decoder can never lock onto noise and reports
    every run as ``unframed_bytes``. Runs go neither before the first packet nor around the last (file
    truncation cuts the last one, which the decoder would then fold into the run), nor in front of a
    packet in ``avoid`` (one with a flipped bit: the decoder would resume after it, with the same effect).
    """
    n_packets = len(raw) // fmt.PACKET_SIZE
    boundaries = np.setdiff1d(np.arange(1, n_packets - 1), avoid)
    if garbage_bytes <= 0 or len(boundaries) == 0:
        return raw
    lengths = []
    remaining = garbage_bytes
    while remaining > 0:
        lengths.append(min(remaining, int(rng.integers(1, 2 * fmt.PACKET_SIZE))))
        remaining -= lengths[-1]
    where = np.sort(rng.choice(boundaries, size=len(lengths)))
    noise = rng.integers(0, 256, garbage_bytes, dtype=np.uint8)
    header_like = (noise & _HEADER_FIRST_OCTET_MASK) == _HEADER_FIRST_OCTET
    noise[header_like] ^= 0x80
    out = bytearray()
    previous, used = 0, 0
    for boundary, length in zip(where, lengths, strict=True):
        out += raw[previous * fmt.PACKET_SIZE : int(boundary) * fmt.PACKET_SIZE]
        out += noise[used : used + length].tobytes()
        previous, used = int(boundary), used + length
    out += raw[previous * fmt.PACKET_SIZE :]
    return out


# Relative reflectance noise per band (1 sigma): photon noise, which grows as the target fades, on top of a
# floor (flat-fielding, calibration residuals), and at most SPECTRAL_NOISE_MAX. See ``spectral_noise``.
SPECTRAL_NOISE_FLOOR = 0.005
SPECTRAL_NOISE_AT_REFERENCE = 0.03
SPECTRAL_NOISE_REFERENCE_MAG = 0.0
SPECTRAL_NOISE_MAX = 0.07


def spectral_noise(apparent_magnitude: np.ndarray) -> np.ndarray:
    """Relative reflectance noise of one observation of a target of this apparent magnitude.

    Photon-limited: the signal-to-noise ratio goes as the square root of the collected flux, so the relative
    noise grows by 10^(0.2 Δm) per Δm magnitudes fainter (×2.5 per 2 mag), added in quadrature to a floor.
    A small, dark, distant body at a high phase angle is measured far worse than a large bright nearby one,
    which a model reading the spectrum has to take into account; range and phase act through the magnitude.
    The instrument lengthens its exposure for the faintest targets so that no look is worse than
    SPECTRAL_NOISE_MAX (7 %: the worst case the feature table's bounds are derived for,
    astromined.features.validation).
    """
    photon = SPECTRAL_NOISE_AT_REFERENCE * 10.0 ** (0.2 * (apparent_magnitude - SPECTRAL_NOISE_REFERENCE_MAG))
    return np.minimum(np.hypot(SPECTRAL_NOISE_FLOOR, photon), SPECTRAL_NOISE_MAX)


def simulate_satellite_day(
    population: Population,
    day: dt.date,
    satellite_id: int,
    observations: int,
    seed: int,
    link: LinkConditions | None = None,
    scenarios: Scenarios | None = None,
) -> Downlink:
    """Encode one satellite's observations of one day into the bytes of its downlink file.

    ``scenarios`` active for (day, satellite) are applied; an active corruption burst's rates replace
    those of ``link``.
    """
    link = link or LinkConditions()
    effects: Effects = NOMINAL if scenarios is None else scenarios.effects(day, satellite_id)
    if effects.link_rates:
        link = dataclasses.replace(link, **dict(effects.link_rates))
    rng = np.random.default_rng([seed, day.toordinal(), satellite_id])
    table = population.table
    sector = int(fleet.sector_of_satellite(satellite_id))
    members = np.flatnonzero(table["sector"].to_numpy() == sector)
    if len(members) == 0:
        members = np.arange(len(table))
    weights = np.sqrt(table["diameter_km"].to_numpy()[members])
    preference = effects.sampling_factor(table["complex"].to_numpy()[members])
    if preference is not None:
        weights = weights * preference
    chosen = members[rng.choice(len(members), size=observations, p=weights / weights.sum())]

    start = _day_start(day)
    times = np.sort(rng.uniform(start, start + 86_400.0 - 1.0, observations))
    range_km = np.exp(rng.uniform(np.log(500.0), np.log(50_000.0), observations))
    phase = rng.uniform(2.0, 40.0, observations)

    albedo = table["albedo"].to_numpy()[chosen]
    diameter = table["diameter_km"].to_numpy()[chosen]
    helio = table["semi_major_axis_au"].to_numpy()[chosen]
    magnitude = physics.apparent_magnitude(
        table["absolute_magnitude"].to_numpy()[chosen], helio, range_km, phase
    )
    noise_scale = spectral_noise(magnitude)
    reflectance = population.spectra[chosen] * albedo[:, None]
    reflectance = reflectance * (1.0 + noise_scale[:, None] * rng.standard_normal(reflectance.shape))
    response = nominal_response(seed)
    response_row = int(response.rows_for(np.asarray([satellite_id]))[0])
    reflectance = reflectance * response.gains[response_row][None, :]
    drift = effects.reflectance_factor()  # unknown to the calibration: detector gain drift × calibration step
    if drift is not None:
        reflectance = reflectance * drift[None, :]

    payload = np.zeros(observations, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = table["asteroid_id"].to_numpy()[chosen]
    payload["range_km"] = range_km
    payload["phase_angle_deg"] = phase
    measured_magnitude = (
        magnitude + rng.normal(0.0, 0.03, observations) + response.zero_points_mag[response_row]
    )
    if effects.gain != 1.0:
        measured_magnitude = measured_magnitude + effects.magnitude_offset()
    payload["apparent_magnitude"] = measured_magnitude
    payload["reflectance"] = np.clip(reflectance, 0.0, 2.0)
    flux = physics.thermal_flux(diameter, albedo, helio, range_km)
    payload["thermal_flux"] = flux * (
        1.0 + 0.03 * (1.0 + range_km / 50_000.0) * rng.standard_normal(observations)
    )
    radar_measured = range_km < 5_000.0
    radar = table["radar_albedo"].to_numpy()[chosen] * (1.0 + 0.1 * rng.standard_normal(observations))
    payload["radar_albedo"] = np.where(radar_measured, np.clip(radar, 0.0, 1.5), np.nan)
    payload["lightcurve_amplitude_mag"] = np.clip(
        table["lightcurve_amplitude_mag"].to_numpy()[chosen] + rng.normal(0.0, 0.03, observations), 0.0, 3.0
    )
    payload["rotation_period_h"] = table["rotation_period_h"].to_numpy()[chosen] * (
        1.0 + rng.normal(0.0, 0.01, observations)
    )
    payload["sensor_temperature_k"] = rng.normal(180.0, 3.0, observations)
    payload["quality_flags"] = np.where(noise_scale > 0.04, fmt.QUALITY_LOW_SNR, 0)

    first_sequence = (day.toordinal() * observations) % fmt.SEQUENCE_COUNT_MODULO
    sequence = first_sequence + np.arange(observations)
    packets = encode_packets(np.full(observations, satellite_id), sequence, times, payload)

    kept = packets[rng.uniform(0, 1, observations) >= link.loss_rate]
    duplicated = rng.uniform(0, 1, len(kept)) < link.duplicate_rate
    # Join bytes, not arrays: np.concatenate would convert the big-endian dtype to native order.
    raw = bytearray(kept.tobytes() + kept[duplicated].tobytes())
    flips = np.flatnonzero(rng.uniform(0, 1, len(kept) + int(duplicated.sum())) < link.bit_flip_rate)
    for packet_index in flips:
        # Flip one bit inside the payload of the chosen packet so its CRC no longer matches.
        octet = int(packet_index) * fmt.PACKET_SIZE + int(rng.integers(12, fmt.CRC_OFFSET))
        raw[octet] ^= 1 << int(rng.integers(0, 8))
    if effects.garbage_bytes:
        garbage_rng = np.random.default_rng([seed, day.toordinal(), satellite_id, _GARBAGE_STREAM])
        raw = _insert_garbage(raw, effects.garbage_bytes, flips, garbage_rng)
    if len(raw) > fmt.PACKET_SIZE and rng.uniform() < link.truncated_file_rate:
        raw = raw[: len(raw) - int(rng.integers(1, fmt.PACKET_SIZE))]

    light_delay_s = float(rng.uniform(600.0, 1_500.0))
    received = dt.datetime.fromtimestamp(start + 86_400.0 + light_delay_s, tz=dt.UTC).replace(microsecond=0)
    return Downlink(
        satellite_id=satellite_id,
        file_name=downlink_file_name(satellite_id, received),
        received_at=received,
        data=bytes(raw),
    )
