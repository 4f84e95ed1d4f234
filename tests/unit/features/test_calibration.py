"""The fleet calibration table and its use in the features: hand-computed values, the file format, version
selection, and satellites with different responses agreeing once calibrated."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from astromined import fleet, physics
from astromined.calibration import (
    CalibrationError,
    FleetCalibration,
    calibration_key,
    is_calibration_key,
    select_for_day,
)
from astromined.features.engineering import (
    NORMALIZED_BANDS,
    NORMALIZED_REFLECTANCE,
    RAW_REFLECTANCE,
    aggregate_by_asteroid,
    observation_features,
)
from astromined.sim import instrument
from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population, spectral_template
from astromined.telemetry.decode import decode_file
from astromined.telemetry.ingest import day_window
from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM, N_BANDS

BAND = {w: i for i, w in enumerate(BAND_WAVELENGTHS_UM)}
IDEAL = FleetCalibration.identity(fleet.SATELLITE_IDS)
CLEAN = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)


def two_satellite_table(version: int = 3, valid_from: dt.date = dt.date(2025, 1, 1)) -> FleetCalibration:
    gains = np.ones((2, N_BANDS))
    gains[0, BAND[0.45]] = 1.10  # satellite 4
    gains[0, BAND[0.55]] = 0.95
    gains[1, :] = 1.02  # satellite 9: a grey gain, the same in every band
    return FleetCalibration(version, valid_from, np.array([9, 4]), gains[::-1], np.array([-0.05, 0.1]))


def row(
    asteroid_id: int, satellite_id: int, reflectance, magnitude: float, flux: float, phase: float
) -> dict:
    values = {"asteroid_id": asteroid_id, "satellite_id": satellite_id}
    values.update(zip(RAW_REFLECTANCE, np.asarray(reflectance, dtype=np.float64), strict=True))
    values.update(
        thermal_flux=flux,
        apparent_magnitude=magnitude,
        phase_angle_deg=phase,
        radar_albedo=np.nan,
        rotation_period_h=5.0,
        lightcurve_amplitude_mag=0.2,
    )
    return values


# --- the table ------------------------------------------------------------------------------------------


def test_rows_are_sorted_by_satellite_and_immutable() -> None:
    table = two_satellite_table()
    assert table.satellite_ids.tolist() == [4, 9]
    assert table.gains[0, BAND[0.45]] == 1.10 and table.gains[1, 0] == 1.02
    assert table.zero_points_mag.tolist() == [0.1, -0.05]
    with pytest.raises(ValueError):
        table.gains[0, 0] = 2.0


def test_calibrate_divides_by_the_gain_and_subtracts_the_zero_point() -> None:
    table = two_satellite_table()
    reflectance = np.full((3, N_BANDS), 0.2)
    calibrated, magnitude = table.calibrate(np.array([4, 9, 4]), reflectance, np.array([15.0, 16.0, 17.0]))
    assert calibrated[0, BAND[0.45]] == pytest.approx(0.2 / 1.10)
    assert calibrated[0, BAND[0.55]] == pytest.approx(0.2 / 0.95)
    assert calibrated[0, BAND[0.65]] == pytest.approx(0.2)
    np.testing.assert_allclose(calibrated[1], 0.2 / 1.02)
    np.testing.assert_allclose(magnitude, [14.9, 16.05, 16.9])


def test_a_satellite_without_calibration_is_named() -> None:
    with pytest.raises(CalibrationError, match=r"v3 has no entry for satellite\(s\) \[5, 77\]"):
        two_satellite_table().rows_for(np.array([4, 77, 5, 9, 77]))
    observations = pd.DataFrame([row(1, 77, np.full(N_BANDS, 0.1), 15.0, 1e-9, 5.0)])
    with pytest.raises(CalibrationError, match=r"\[77\]"):
        aggregate_by_asteroid(observations, two_satellite_table())


@pytest.mark.parametrize(
    ("gains", "zero_points", "ids", "message"),
    [
        (np.ones((2, N_BANDS - 1)), np.zeros(2), [1, 2], "gain must be 2 × 12"),
        (np.vstack([np.ones(N_BANDS), np.r_[0.0, np.ones(N_BANDS - 1)]]), np.zeros(2), [1, 2], r"\[2\]"),
        (np.ones((2, N_BANDS)), np.array([0.0, np.nan]), [1, 2], r"non-finite zero point .* \[2\]"),
        (np.ones((2, N_BANDS)), np.zeros(2), [3, 3], r"listed twice: \[3\]"),
    ],
)
def test_a_malformed_table_is_rejected(gains, zero_points, ids, message) -> None:
    with pytest.raises(CalibrationError, match=message):
        FleetCalibration(1, dt.date(2025, 1, 1), np.array(ids), gains, zero_points)


# --- the file -------------------------------------------------------------------------------------------


def test_json_round_trip_and_key() -> None:
    table = instrument.nominal_response(42)
    again = FleetCalibration.from_json(table.to_json(), "v1.json")
    assert (again.version, again.valid_from, again.source) == (1, instrument.FLEET_LAUNCH, table.source)
    np.testing.assert_array_equal(again.satellite_ids, table.satellite_ids)
    np.testing.assert_array_equal(again.gains, table.gains)
    np.testing.assert_array_equal(again.zero_points_mag, table.zero_points_mag)
    assert calibration_key(1) == "calibration/fleet_response_v0001.json"
    assert is_calibration_key(calibration_key(12)) and not is_calibration_key("calibration/notes.json")


def _edited(change) -> bytes:
    document = json.loads(two_satellite_table().to_json())
    change(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (_edited(lambda d: d.update(format="other/2")), "field 'format'"),
        (_edited(lambda d: d["bands_um"].reverse()), "field 'bands_um'"),
        (_edited(lambda d: d["satellites"][1]["gain"].pop()), r"satellites\[1\]\.gain has 11 values"),
        (_edited(lambda d: d["satellites"][0].pop("zero_point_mag")), "missing field 'zero_point_mag'"),
        (_edited(lambda d: d.update(valid_from="someday")), "bad value"),
        (
            _edited(lambda d: d["satellites"][0]["gain"].__setitem__(2, -1.0)),
            r"> 0; not for satellite\(s\) \[4\]",
        ),
    ],
)
def test_a_bad_file_is_rejected_naming_the_file_and_field(data: bytes, message: str) -> None:
    with pytest.raises(CalibrationError, match=rf"^lake/calibration/x\.json: .*{message}"):
        FleetCalibration.from_json(data, "lake/calibration/x.json")


def test_the_version_in_force_has_the_latest_valid_from_and_the_newest_version_on_a_tie() -> None:
    launch = two_satellite_table(1, dt.date(2024, 7, 1))
    firmware = two_satellite_table(2, dt.date(2026, 3, 1))
    corrected_launch = two_satellite_table(3, dt.date(2024, 7, 1))
    versions = [launch, firmware, corrected_launch]
    assert select_for_day(versions, dt.date(2025, 6, 1)) is corrected_launch
    assert select_for_day(versions, dt.date(2026, 3, 1)) is firmware
    assert select_for_day([launch], dt.date(2030, 1, 1)) is launch
    with pytest.raises(CalibrationError, match=r"no fleet calibration is valid on 2024-06-30"):
        select_for_day(versions, dt.date(2024, 6, 30))


# --- the simulated fleet's response ---------------------------------------------------------------------


def test_the_simulated_response_is_fixed_per_seed_and_a_few_per_cent_around_one() -> None:
    build = instrument.nominal_response.__wrapped__
    a, b = build(42), build(42)
    np.testing.assert_array_equal(a.gains, b.gains)
    np.testing.assert_array_equal(a.zero_points_mag, b.zero_points_mag)
    assert not np.array_equal(build(43).gains, a.gains)
    assert a.satellite_ids.tolist() == fleet.SATELLITE_IDS.tolist()
    assert 0.02 < a.gains.std() < 0.04 and abs(a.gains.mean() - 1.0) < 0.005
    assert a.gains.min() >= 0.9 and a.gains.max() <= 1.1
    assert 0.03 < a.zero_points_mag.std() < 0.07 and np.abs(a.zero_points_mag).max() <= 0.15


# --- calibrated features --------------------------------------------------------------------------------


def test_observation_features_remove_the_response_by_hand() -> None:
    # Satellite 4: gain 1.10 at 0.45 µm and 0.95 at 0.55 µm, zero point +0.1 mag. A grey body of
    # reflectance 0.2 reads 0.22 at 0.45 µm and 0.19 at 0.55 µm: uncalibrated, 0.45/0.55 = 0.22/0.19.
    measured = np.full(N_BANDS, 0.2)
    measured[BAND[0.45]] = 0.2 * 1.10
    measured[BAND[0.55]] = 0.2 * 0.95
    magnitude = physics.apparent_magnitude(physics.absolute_magnitude(10.0, 0.2), 2.5, 1e6, 5.0)
    flux = physics.thermal_flux(10.0, 0.2, 2.5, 1e6)
    observations = pd.DataFrame([row(1, 4, measured, magnitude + 0.1, flux, 5.0)])

    calibrated = observation_features(observations, two_satellite_table()).iloc[0]
    raw = observation_features(observations, IDEAL).iloc[0]
    assert calibrated["refl_norm_0.45um"] == pytest.approx(1.0, rel=1e-12)
    assert calibrated["refl_norm_0.65um"] == pytest.approx(1.0, rel=1e-12)
    assert raw["refl_norm_0.45um"] == pytest.approx(0.22 / 0.19, rel=1e-12)
    assert raw["refl_norm_0.65um"] == pytest.approx(0.2 / 0.19, rel=1e-12)
    assert calibrated["albedo"] == pytest.approx(0.2, rel=1e-9)
    # Uncalibrated, the body looks 0.1 mag fainter at the same thermal flux: a lower albedo.
    assert raw["albedo"] < 0.19


def test_two_satellites_with_different_responses_agree_once_calibrated() -> None:
    fleet_response = instrument.nominal_response(42)
    satellites = np.array([1, 51])  # both survey sector 0
    rows = fleet_response.rows_for(satellites)
    assert np.abs(fleet_response.gains[rows[0]] / fleet_response.gains[rows[1]] - 1).max() > 0.03
    true_spectrum = spectral_template(np.array([0.25]), np.array([0.15]), np.array([0.05]), np.zeros(1))[0]
    albedo, geometry = 0.24, (10.0, 2.4, 2e4, 12.0)  # diameter km, heliocentric AU, range km, phase deg
    magnitude = physics.apparent_magnitude(physics.absolute_magnitude(geometry[0], albedo), *geometry[1:])
    flux = physics.thermal_flux(geometry[0], albedo, geometry[1], geometry[2])
    observations = pd.DataFrame(
        [
            row(
                7,
                s,
                true_spectrum * albedo * fleet_response.gains[r],
                magnitude + fleet_response.zero_points_mag[r],
                flux,
                geometry[3],
            )
            for s, r in zip(satellites, rows, strict=True)
        ]
    )

    calibrated = observation_features(observations, fleet_response)
    np.testing.assert_allclose(
        calibrated[NORMALIZED_REFLECTANCE].iloc[0], calibrated[NORMALIZED_REFLECTANCE].iloc[1], rtol=1e-12
    )
    np.testing.assert_allclose(
        calibrated[NORMALIZED_REFLECTANCE].iloc[0], true_spectrum[NORMALIZED_BANDS], rtol=1e-12
    )
    np.testing.assert_allclose(calibrated["albedo"], albedo, rtol=1e-9)
    raw = observation_features(observations, IDEAL)
    spread = raw[NORMALIZED_REFLECTANCE].iloc[0] / raw[NORMALIZED_REFLECTANCE].iloc[1] - 1
    assert np.abs(spread).max() > 0.03
    table = aggregate_by_asteroid(observations, fleet_response).iloc[0]
    assert table["n_satellites"] == 2
    np.testing.assert_allclose(
        table[NORMALIZED_REFLECTANCE].to_numpy(np.float64), true_spectrum[NORMALIZED_BANDS], rtol=1e-12
    )


def test_simulated_satellites_agree_with_the_truth_only_after_calibration() -> None:
    """Through the simulator's bytes: per satellite, the median ratio of measured to true normalized
    reflectance (and albedo) is 1 within the noise when calibrated, off by several per cent when not."""
    seed, day = 5, dt.date(2031, 5, 17)
    population = generate_population(1_000, seed)
    frames = []
    for satellite in (1, 51, 101, 151, 201):  # one sector: the same asteroids through five instruments
        downlink = simulate_satellite_day(population, day, satellite, 150, seed, link=CLEAN)
        frames.append(decode_file(downlink.data, downlink.file_name, *day_window(day)).observations)
    observations = pd.concat(frames, ignore_index=True)
    truth = population.table.set_index("asteroid_id")

    def worst_satellite_bias(calibration: FleetCalibration) -> float:
        features = observation_features(observations, calibration)
        ids = features["asteroid_id"].to_numpy()
        ratios = pd.DataFrame(
            features[NORMALIZED_REFLECTANCE].to_numpy() / population.spectra[ids - 1][:, NORMALIZED_BANDS]
        )
        ratios["albedo"] = features["albedo"].to_numpy() / truth.loc[ids, "albedo"].to_numpy()
        per_satellite = ratios.groupby(features["satellite_id"].to_numpy()).median()
        return float(np.abs(per_satellite.to_numpy() - 1.0).max())

    assert worst_satellite_bias(instrument.nominal_response(seed)) < 0.02
    assert worst_satellite_bias(IDEAL) > 0.05
