"""Feature engineering against hand-computed values (pure functions, no Dagster).

These tests use an ideal fleet (gain 1, zero point 0) so the expectations stay hand-computable; the
calibration itself is tested in test_calibration.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined import fleet, physics
from astromined.calibration import FleetCalibration
from astromined.features.engineering import (
    FEATURE_TABLE_COLUMNS,
    MODEL_FEATURES,
    NORMALIZED_BANDS,
    NORMALIZED_REFLECTANCE,
    RAW_REFLECTANCE,
    WAVELENGTHS,
    aggregate_by_asteroid,
    features_per_look,
    finite_model_inputs,
    model_inputs,
    observation_features,
    spectral_shape,
)
from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM, N_BANDS, NORMALIZATION_BAND

LAM = np.asarray(BAND_WAVELENGTHS_UM)
IDEAL = FleetCalibration.identity(fleet.SATELLITE_IDS)
BAND = {w: i for i, w in enumerate(BAND_WAVELENGTHS_UM)}


def observation(
    asteroid_id: int,
    satellite_id: int,
    reflectance,
    *,
    thermal_flux: float = 1e-9,
    apparent_magnitude: float = 15.0,
    phase_angle_deg: float = 10.0,
    radar_albedo: float = np.nan,
    rotation_period_h: float = 6.0,
    lightcurve_amplitude_mag: float = 0.2,
) -> dict:
    row = {"asteroid_id": asteroid_id, "satellite_id": satellite_id}
    row.update(dict(zip(RAW_REFLECTANCE, np.asarray(reflectance, dtype=np.float64), strict=True)))
    row.update(
        thermal_flux=thermal_flux,
        apparent_magnitude=apparent_magnitude,
        phase_angle_deg=phase_angle_deg,
        radar_albedo=radar_albedo,
        rotation_period_h=rotation_period_h,
        lightcurve_amplitude_mag=lightcurve_amplitude_mag,
    )
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def linear_spectrum(slope: float, at_055: float = 1.0) -> np.ndarray:
    return at_055 + slope * (LAM - 0.55)


# --- layout -----------------------------------------------------------------------------------


def test_band_layout_and_feature_names():
    assert BAND_WAVELENGTHS_UM[NORMALIZATION_BAND] == 0.55
    assert len(NORMALIZED_REFLECTANCE) == N_BANDS - 1
    assert "refl_norm_0.55um" not in NORMALIZED_REFLECTANCE
    assert NORMALIZED_REFLECTANCE[0] == "refl_norm_0.45um"
    assert NORMALIZED_REFLECTANCE[-1] == "refl_norm_2.45um"
    assert NORMALIZATION_BAND not in NORMALIZED_BANDS
    assert len(set(MODEL_FEATURES)) == len(MODEL_FEATURES) == N_BANDS - 1 + 8
    assert len(set(FEATURE_TABLE_COLUMNS)) == len(FEATURE_TABLE_COLUMNS)
    np.testing.assert_array_equal(WAVELENGTHS, LAM)


# --- observation_features ---------------------------------------------------------------------


def test_normalized_reflectance_is_reflectance_over_the_055_band():
    r1 = np.linspace(0.10, 0.32, N_BANDS)  # R(0.55) = 0.12
    r2 = np.full(N_BANDS, 0.05)
    r2[BAND[0.95]] = 0.04
    obs = frame(observation(7, 3, r1), observation(7, 53, r2))
    out = observation_features(obs, IDEAL)

    assert list(out.index) == list(obs.index)
    expected1 = r1 / r1[NORMALIZATION_BAND]
    expected2 = r2 / 0.05
    for band, column in zip(NORMALIZED_BANDS, NORMALIZED_REFLECTANCE, strict=True):
        assert out[column].iloc[0] == pytest.approx(expected1[band], rel=1e-12)
        assert out[column].iloc[1] == pytest.approx(expected2[band], rel=1e-12)
    assert out["refl_norm_0.45um"].iloc[0] == pytest.approx(0.10 / 0.12)
    assert out["refl_norm_0.95um"].iloc[1] == pytest.approx(0.8)
    assert out["refl_norm_0.65um"].iloc[1] == pytest.approx(1.0)


def test_non_positive_reference_band_gives_nan_not_inf():
    r = np.full(N_BANDS, 0.2)
    r[NORMALIZATION_BAND] = 0.0
    r_neg = np.full(N_BANDS, 0.2)
    r_neg[NORMALIZATION_BAND] = -0.1
    out = observation_features(frame(observation(1, 1, r), observation(1, 1, r_neg)), IDEAL)
    assert out[NORMALIZED_REFLECTANCE].isna().all().all()


def test_observation_features_carry_ids_sector_and_passthrough_columns():
    r = np.full(N_BANDS, 0.2)
    obs = frame(
        observation(11, 1, r, radar_albedo=0.3, rotation_period_h=4.5, lightcurve_amplitude_mag=0.7),
        observation(12, 51, r),
        observation(13, 500, r),
    )
    out = observation_features(obs, IDEAL)
    assert out["asteroid_id"].tolist() == [11, 12, 13]
    assert out["satellite_id"].tolist() == [1, 51, 500]
    # 50 sectors, satellites assigned round-robin: 1 and 51 share sector 0, 500 is sector 49.
    assert out["sector"].tolist() == [0, 0, 49]
    assert out["sector"].tolist() == list(fleet.sector_of_satellite(np.array([1, 51, 500])))
    assert out["radar_albedo"].iloc[0] == 0.3
    assert np.isnan(out["radar_albedo"].iloc[1])
    assert out["rotation_period_h"].iloc[0] == 4.5
    assert out["lightcurve_amplitude_mag"].iloc[0] == 0.7


# --- radiometric albedo ----------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    diameter_km=st.floats(0.05, 900.0),
    albedo=st.floats(0.01, 0.9),
    heliocentric_au=st.floats(1.0, 5.0),
    range_km=st.floats(1e3, 8e8),
    phase_deg=st.floats(0.0, 60.0),
)
def test_albedo_recovered_from_flux_and_magnitude(diameter_km, albedo, heliocentric_au, range_km, phase_deg):
    h = physics.absolute_magnitude(diameter_km, albedo)
    magnitude = physics.apparent_magnitude(h, heliocentric_au, range_km, phase_deg)
    flux = physics.thermal_flux(diameter_km, albedo, heliocentric_au, range_km)
    recovered = physics.albedo_from_flux_and_magnitude(flux, magnitude, phase_deg)
    assert recovered == pytest.approx(albedo, rel=1e-6)


def test_albedo_recovery_known_bodies_vectorised_and_through_observation_features():
    diameter = np.array([1.0, 25.0, 250.0, 3.2])
    albedo = np.array([0.05, 0.15, 0.25, 0.45])
    r_au = np.array([2.2, 2.7, 3.1, 1.9])
    range_km = np.array([5e4, 2e6, 1.5e8, 7e5])
    phase = np.array([0.0, 12.0, 25.0, 40.0])
    magnitude = physics.apparent_magnitude(
        physics.absolute_magnitude(diameter, albedo), r_au, range_km, phase
    )
    flux = physics.thermal_flux(diameter, albedo, r_au, range_km)
    np.testing.assert_allclose(
        physics.albedo_from_flux_and_magnitude(flux, magnitude, phase), albedo, rtol=1e-6
    )

    rows = [
        observation(i + 1, 1, np.full(N_BANDS, 0.1), thermal_flux=f, apparent_magnitude=m, phase_angle_deg=a)
        for i, (f, m, a) in enumerate(zip(flux, magnitude, phase, strict=True))
    ]
    np.testing.assert_allclose(observation_features(frame(*rows), IDEAL)["albedo"], albedo, rtol=1e-6)


def test_brighter_at_same_flux_means_higher_albedo():
    flux = np.array([1e-9, 1e-9])
    magnitude = np.array([16.0, 15.0])
    low, high = physics.albedo_from_flux_and_magnitude(flux, magnitude, np.zeros(2))
    assert high > low > 0


# --- spectral_shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [-0.3, 0.0, 0.12, 0.5, 1.7])
def test_slope_of_linear_spectrum_is_its_slope_and_band_depths_vanish(slope):
    spectrum = linear_spectrum(slope)
    s, d1, d2 = spectral_shape(spectrum[None, :])
    assert s[0] == pytest.approx(slope, abs=1e-12)
    # The continuum of a straight line is the line itself.
    assert d1[0] == pytest.approx(0.0, abs=1e-12)
    assert d2[0] == pytest.approx(0.0, abs=1e-12)


def test_flat_spectrum_has_zero_slope_and_zero_depths():
    s, d1, d2 = spectral_shape(np.ones((3, N_BANDS)))
    np.testing.assert_allclose(s, 0.0, atol=1e-12)
    np.testing.assert_allclose(d1, 0.0, atol=1e-12)
    np.testing.assert_allclose(d2, 0.0, atol=1e-12)


def test_band_depth_of_a_dip_on_a_flat_continuum():
    spectrum = np.ones(N_BANDS)
    spectrum[BAND[0.95]] = 0.8
    spectrum[BAND[2.05]] = 0.7
    _, d1, d2 = spectral_shape(spectrum[None, :])
    assert d1[0] == pytest.approx(0.2)
    assert d2[0] == pytest.approx(0.3)


def test_band_depth_of_a_dip_on_a_sloped_continuum():
    # R = 1 + 0.5 (λ - 0.55): shoulders R(0.75) = 1.10 and R(1.25) = 1.35. The 0.95 µm centre sits 0.4
    # of the way from 0.75 to 1.25, so the continuum there is 0.6·1.10 + 0.4·1.35 = 1.20. With
    # R(0.95) = 0.90 the depth is 1 - 0.90/1.20 = 0.25. The 2 µm band is untouched: depth 0.
    spectrum = linear_spectrum(0.5)
    spectrum[BAND[0.95]] = 0.90
    _, d1, d2 = spectral_shape(spectrum[None, :])
    assert d1[0] == pytest.approx(0.25, abs=1e-12)
    assert d2[0] == pytest.approx(0.0, abs=1e-12)


def test_band_depth_2um_with_unequal_shoulders():
    # Shoulders R(1.50) = 1.2, R(2.45) = 1.0; centre 2.05 is (2.05-1.50)/(2.45-1.50) = 0.55/0.95 along.
    spectrum = np.ones(N_BANDS)
    spectrum[BAND[1.50]] = 1.2
    spectrum[BAND[2.05]] = 0.6
    weight = 0.55 / 0.95
    continuum = 1.2 * (1 - weight) + 1.0 * weight
    _, _, d2 = spectral_shape(spectrum[None, :])
    assert d2[0] == pytest.approx(1 - 0.6 / continuum, rel=1e-12)


def test_slope_is_the_least_squares_fit():
    rng = np.random.default_rng(3)
    spectra = 1.0 + rng.normal(0, 0.1, size=(5, N_BANDS))
    s, _, _ = spectral_shape(spectra)
    expected = [np.polyfit(LAM, row, 1)[0] for row in spectra]
    np.testing.assert_allclose(s, expected, rtol=1e-10)


# --- aggregate_by_asteroid --------------------------------------------------------------------


def two_asteroids() -> pd.DataFrame:
    base = linear_spectrum(0.2, at_055=0.1)  # normalized: 1 + 2 (λ - 0.55)
    dipped = base.copy()
    dipped[BAND[0.95]] *= 0.5
    return frame(
        # asteroid 10: three looks from satellites 1, 51, 51 (all sector 0)
        observation(10, 1, base, radar_albedo=np.nan, rotation_period_h=5.0, lightcurve_amplitude_mag=0.1),
        observation(
            10, 51, base * 2.0, radar_albedo=0.3, rotation_period_h=7.0, lightcurve_amplitude_mag=0.3
        ),
        observation(10, 51, dipped, radar_albedo=0.5, rotation_period_h=6.0, lightcurve_amplitude_mag=0.9),
        # asteroid 3: two looks from satellite 4 (sector 3), never radar-measured
        observation(3, 4, np.full(N_BANDS, 0.2), rotation_period_h=2.0, lightcurve_amplitude_mag=0.2),
        observation(3, 4, np.full(N_BANDS, 0.4), rotation_period_h=4.0, lightcurve_amplitude_mag=0.4),
    )


def test_aggregate_counts_sector_and_order():
    table = aggregate_by_asteroid(two_asteroids(), IDEAL)
    assert list(table.columns) == FEATURE_TABLE_COLUMNS
    assert table["asteroid_id"].tolist() == [3, 10]  # sorted by asteroid id
    assert table["n_observations"].tolist() == [2, 3]
    assert table["n_satellites"].tolist() == [1, 2]
    assert table["sector"].tolist() == [3, 0]
    for column in ("asteroid_id", "sector", "n_observations", "n_satellites"):
        assert table[column].dtype == np.int64


def test_aggregate_medians_and_radar_mean():
    table = aggregate_by_asteroid(two_asteroids(), IDEAL).set_index("asteroid_id")
    # Asteroid 10: normalized spectra are 1 + 2(λ-0.55) twice and once with the 0.95 band halved.
    assert table.loc[10, "refl_norm_0.95um"] == pytest.approx(1 + 2 * 0.4)
    assert table.loc[10, "refl_norm_2.45um"] == pytest.approx(1 + 2 * 1.9)
    assert table.loc[10, "rotation_period_h"] == pytest.approx(6.0)
    assert table.loc[10, "lightcurve_amplitude_mag"] == pytest.approx(0.3)
    assert table.loc[10, "radar_albedo"] == pytest.approx(0.4)  # mean of measured looks only
    assert table.loc[10, "spectral_slope"] == pytest.approx(2.0)
    assert table.loc[10, "band_depth_1um"] == pytest.approx(0.0, abs=1e-12)
    # Asteroid 3: two flat spectra; median of two values is their mean.
    assert table.loc[3, "refl_norm_0.45um"] == pytest.approx(1.0)
    assert table.loc[3, "rotation_period_h"] == pytest.approx(3.0)
    assert table.loc[3, "lightcurve_amplitude_mag"] == pytest.approx(0.3)
    assert table.loc[3, "spectral_slope"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(table.loc[3, "radar_albedo"])


def test_aggregate_albedo_is_median_of_radiometric_albedos():
    albedos = [0.1, 0.2, 0.6]
    rows = []
    for a in albedos:
        m = physics.apparent_magnitude(physics.absolute_magnitude(10.0, a), 2.5, 1e6, 5.0)
        f = physics.thermal_flux(10.0, a, 2.5, 1e6)
        rows.append(
            observation(
                1, 1, np.full(N_BANDS, 0.1), thermal_flux=f, apparent_magnitude=m, phase_angle_deg=5.0
            )
        )
    table = aggregate_by_asteroid(frame(*rows), IDEAL)
    assert table["albedo"].iloc[0] == pytest.approx(0.2, rel=1e-6)


def test_aggregate_spectral_features_come_from_the_median_spectrum():
    rng = np.random.default_rng(0)
    rows = [observation(5, 9, rng.uniform(0.05, 0.3, N_BANDS)) for _ in range(4)]
    obs = frame(*rows)
    table = aggregate_by_asteroid(obs, IDEAL)
    per_obs = observation_features(obs, IDEAL)
    full = np.ones((1, N_BANDS))
    full[0, NORMALIZED_BANDS] = per_obs[NORMALIZED_REFLECTANCE].median().to_numpy()
    slope, d1, d2 = spectral_shape(full)
    assert table["spectral_slope"].iloc[0] == pytest.approx(slope[0])
    assert table["band_depth_1um"].iloc[0] == pytest.approx(d1[0])
    assert table["band_depth_2um"].iloc[0] == pytest.approx(d2[0])


def test_aggregate_of_empty_input_is_an_empty_table_with_the_right_columns():
    empty = pd.DataFrame(columns=list(two_asteroids().columns))
    for observations in (empty, pd.DataFrame()):
        table = aggregate_by_asteroid(observations, IDEAL)
        assert table.empty
        assert list(table.columns) == FEATURE_TABLE_COLUMNS
        assert table["asteroid_id"].dtype == np.int64
        assert table["n_observations"].dtype == np.int64
        inputs = model_inputs(table)
        assert inputs.shape == (0, len(MODEL_FEATURES))
        assert inputs.dtype == np.float32


# --- model_inputs -----------------------------------------------------------------------------


def feature_row(asteroid_id: int, **overrides) -> dict:
    row = {c: 1.0 for c in FEATURE_TABLE_COLUMNS}
    row.update(
        asteroid_id=asteroid_id,
        sector=0,
        n_observations=1,
        n_satellites=1,
        spectral_slope=0.1,
        band_depth_1um=0.05,
        band_depth_2um=0.02,
        albedo=0.2,
        radar_albedo=np.nan,
        rotation_period_h=6.0,
        lightcurve_amplitude_mag=0.3,
    )
    row.update(overrides)
    return row


def test_model_inputs_columns_and_transforms():
    table = pd.DataFrame(
        [
            feature_row(1, albedo=0.2, radar_albedo=np.nan, rotation_period_h=6.0),
            feature_row(2, albedo=0.0, radar_albedo=0.45, rotation_period_h=0.0, **{"refl_norm_0.45um": 0.9}),
        ]
    )
    x = model_inputs(table)
    assert x.dtype == np.float32
    assert x.shape == (2, len(MODEL_FEATURES))
    col = {name: i for i, name in enumerate(MODEL_FEATURES)}
    assert x[0, col["log_albedo"]] == pytest.approx(np.log(0.2), rel=1e-6)
    assert x[1, col["log_albedo"]] == pytest.approx(np.log(1e-3), rel=1e-6)  # clipped, not -inf
    assert x[0, col["radar_albedo_filled"]] == 0.0
    assert x[0, col["has_radar"]] == 0.0
    assert x[1, col["radar_albedo_filled"]] == pytest.approx(0.45)
    assert x[1, col["has_radar"]] == 1.0
    assert x[0, col["log_rotation_period_h"]] == pytest.approx(np.log(6.0), rel=1e-6)
    assert x[1, col["log_rotation_period_h"]] == pytest.approx(np.log(1e-2), rel=1e-6)
    assert x[1, col["refl_norm_0.45um"]] == pytest.approx(0.9)
    assert x[0, col["spectral_slope"]] == pytest.approx(0.1)
    assert x[0, col["band_depth_1um"]] == pytest.approx(0.05)
    assert x[0, col["band_depth_2um"]] == pytest.approx(0.02)
    assert x[0, col["lightcurve_amplitude_mag"]] == pytest.approx(0.3)


def test_model_inputs_from_aggregated_observations_are_finite():
    x = model_inputs(aggregate_by_asteroid(two_asteroids(), IDEAL))
    assert x.shape == (2, len(MODEL_FEATURES))
    assert np.isfinite(x).all()


@pytest.mark.parametrize(
    "overrides",
    [
        {"refl_norm_0.95um": np.nan},
        {"spectral_slope": np.inf},
        {"lightcurve_amplitude_mag": -np.inf},
        {"albedo": np.nan},
    ],
)
def test_model_inputs_rejects_non_finite_values_naming_the_asteroid(overrides):
    table = pd.DataFrame([feature_row(1), feature_row(424242, **overrides), feature_row(3)])
    with pytest.raises(ValueError, match=r"424242") as info:
        model_inputs(table)
    assert "1 asteroid(s)" in str(info.value)


def test_model_inputs_reports_each_bad_asteroid():
    table = pd.DataFrame(
        [feature_row(7, albedo=np.nan), feature_row(8), feature_row(9, spectral_slope=np.nan)]
    )
    with pytest.raises(ValueError, match=r"2 asteroid\(s\).*\[7, 9\]"):
        model_inputs(table)


# --- features_per_look ------------------------------------------------------------------------------

_spectra = st.lists(st.floats(min_value=0.05, max_value=3.0), min_size=N_BANDS, max_size=N_BANDS)


@settings(max_examples=40, deadline=None)
@given(
    looks=st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, fleet.N_SATELLITES), _spectra, st.floats(0.05, 40.0)),
        min_size=1,
        max_size=12,
    )
)
def test_each_look_is_its_own_row_computed_as_an_asteroid_seen_once(looks):
    obs = frame(*[observation(a, s, r, rotation_period_h=p) for a, s, r, p in looks])
    per_look = features_per_look(obs, IDEAL)

    assert list(per_look.columns) == FEATURE_TABLE_COLUMNS
    assert per_look["asteroid_id"].tolist() == [a for a, _, _, _ in looks]  # the input's order
    assert (per_look["n_observations"] == 1).all() and (per_look["n_satellites"] == 1).all()
    for i in range(len(obs)):
        alone = aggregate_by_asteroid(obs.iloc[[i]], IDEAL)
        pd.testing.assert_frame_equal(
            per_look.iloc[[i]].reset_index(drop=True), alone, check_exact=False, rtol=1e-12
        )


def test_a_look_lacking_a_measurement_is_not_finite_where_its_asteroid_row_is():
    flat = np.ones(N_BANDS)
    obs = frame(
        observation(3, 1, flat, rotation_period_h=np.nan), observation(3, 2, flat, rotation_period_h=5.0)
    )
    per_look = features_per_look(obs, IDEAL)
    assert finite_model_inputs(per_look).tolist() == [False, True]
    assert finite_model_inputs(aggregate_by_asteroid(obs, IDEAL)).tolist() == [True]
    with pytest.raises(
        ValueError, match=r"non-finite model inputs for 1 asteroid\(s\), e.g. asteroid_id \[3\]"
    ):
        model_inputs(per_look)
