"""Per-asteroid features from validated observations: the single source of truth for model inputs.

The exported uplink model embeds only the normalization; everything from raw observation values to
the model's input vector happens here (``observation_features`` → ``aggregate_by_asteroid`` →
``model_inputs``), and the on-board software runs this same module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from astromined import fleet, physics
from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM, N_BANDS, NORMALIZATION_BAND

WAVELENGTHS = np.asarray(BAND_WAVELENGTHS_UM)
RAW_REFLECTANCE = [f"reflectance_{i:02d}" for i in range(N_BANDS)]
NORMALIZED_BANDS = [i for i in range(N_BANDS) if i != NORMALIZATION_BAND]
NORMALIZED_REFLECTANCE = [f"refl_norm_{BAND_WAVELENGTHS_UM[i]:.2f}um" for i in NORMALIZED_BANDS]

# Band indices for continuum-removed band depths.
_IDX = {w: i for i, w in enumerate(BAND_WAVELENGTHS_UM)}
BAND1 = (_IDX[0.75], _IDX[0.95], _IDX[1.25])  # (left shoulder, centre, right shoulder)
BAND2 = (_IDX[1.50], _IDX[2.05], _IDX[2.45])

MODEL_FEATURES: list[str] = [
    *NORMALIZED_REFLECTANCE,
    "spectral_slope",
    "band_depth_1um",
    "band_depth_2um",
    "log_albedo",
    "radar_albedo_filled",
    "has_radar",
    "log_rotation_period_h",
    "lightcurve_amplitude_mag",
]

FEATURE_TABLE_COLUMNS: list[str] = [
    "asteroid_id",
    "sector",
    "n_observations",
    "n_satellites",
    *NORMALIZED_REFLECTANCE,
    "spectral_slope",
    "band_depth_1um",
    "band_depth_2um",
    "albedo",
    "radar_albedo",
    "rotation_period_h",
    "lightcurve_amplitude_mag",
]


def observation_features(observations: pd.DataFrame) -> pd.DataFrame:
    """Per-observation derived quantities: normalized reflectance and radiometric albedo."""
    raw = observations[RAW_REFLECTANCE].to_numpy(np.float64)
    reference = raw[:, NORMALIZATION_BAND : NORMALIZATION_BAND + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = np.where(reference > 0, raw / reference, np.nan)
    frame = pd.DataFrame(
        normalized[:, NORMALIZED_BANDS], columns=NORMALIZED_REFLECTANCE, index=observations.index
    )
    frame["asteroid_id"] = observations["asteroid_id"].to_numpy()
    frame["satellite_id"] = observations["satellite_id"].to_numpy()
    frame["sector"] = fleet.sector_of_satellite(observations["satellite_id"].to_numpy())
    frame["albedo"] = physics.albedo_from_flux_and_magnitude(
        observations["thermal_flux"].to_numpy(np.float64),
        observations["apparent_magnitude"].to_numpy(np.float64),
        observations["phase_angle_deg"].to_numpy(np.float64),
    )
    frame["radar_albedo"] = observations["radar_albedo"].to_numpy(np.float64)
    frame["rotation_period_h"] = observations["rotation_period_h"].to_numpy(np.float64)
    frame["lightcurve_amplitude_mag"] = observations["lightcurve_amplitude_mag"].to_numpy(np.float64)
    return frame


def spectral_shape(normalized: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope (per µm, least squares over all bands) and 1 µm / 2 µm continuum-removed band depths.

    ``normalized`` has one row per asteroid and all N_BANDS columns (1.0 at the normalization band).
    """
    lam = WAVELENGTHS
    centred = lam - lam.mean()
    slope = (normalized - normalized.mean(axis=1, keepdims=True)) @ centred / np.sum(centred**2)

    def depth(left: int, centre: int, right: int) -> np.ndarray:
        weight = (lam[centre] - lam[left]) / (lam[right] - lam[left])
        continuum = normalized[:, left] * (1.0 - weight) + normalized[:, right] * weight
        return 1.0 - normalized[:, centre] / continuum

    return slope, depth(*BAND1), depth(*BAND2)


def aggregate_by_asteroid(observations: pd.DataFrame) -> pd.DataFrame:
    """One row per asteroid seen: medians of per-observation quantities, counts of looks and satellites."""
    if observations.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in FEATURE_TABLE_COLUMNS}).astype(
            {"asteroid_id": "int64", "sector": "int64", "n_observations": "int64", "n_satellites": "int64"}
        )
    per_obs = observation_features(observations)
    grouped = per_obs.groupby("asteroid_id", sort=True)
    medians = grouped[
        [*NORMALIZED_REFLECTANCE, "albedo", "rotation_period_h", "lightcurve_amplitude_mag"]
    ].median()
    table = medians.reset_index()
    table["radar_albedo"] = grouped["radar_albedo"].mean().to_numpy()  # NaN when never measured
    table["n_observations"] = grouped.size().to_numpy().astype(np.int64)
    table["n_satellites"] = grouped["satellite_id"].nunique().to_numpy().astype(np.int64)
    # Satellites survey one sector each, so every look at an asteroid comes from its own sector.
    table["sector"] = grouped["sector"].min().to_numpy().astype(np.int64)

    full = np.ones((len(table), N_BANDS))
    full[:, NORMALIZED_BANDS] = table[NORMALIZED_REFLECTANCE].to_numpy()
    table["spectral_slope"], table["band_depth_1um"], table["band_depth_2um"] = spectral_shape(full)
    return table[FEATURE_TABLE_COLUMNS]


def model_inputs(features: pd.DataFrame) -> np.ndarray:
    """The model's input matrix (float32, columns = MODEL_FEATURES) from a feature table."""
    inputs = pd.DataFrame(index=features.index)
    for column in NORMALIZED_REFLECTANCE:
        inputs[column] = features[column]
    inputs["spectral_slope"] = features["spectral_slope"]
    inputs["band_depth_1um"] = features["band_depth_1um"]
    inputs["band_depth_2um"] = features["band_depth_2um"]
    inputs["log_albedo"] = np.log(np.clip(features["albedo"].to_numpy(np.float64), 1e-3, None))
    radar = features["radar_albedo"].to_numpy(np.float64)
    inputs["radar_albedo_filled"] = np.nan_to_num(radar, nan=0.0)
    inputs["has_radar"] = (~np.isnan(radar)).astype(np.float64)
    inputs["log_rotation_period_h"] = np.log(
        np.clip(features["rotation_period_h"].to_numpy(np.float64), 1e-2, None)
    )
    inputs["lightcurve_amplitude_mag"] = features["lightcurve_amplitude_mag"]
    matrix = inputs[MODEL_FEATURES].to_numpy(np.float32)
    if not np.all(np.isfinite(matrix)):
        bad_rows = np.flatnonzero(~np.all(np.isfinite(matrix), axis=1))
        ids = features["asteroid_id"].to_numpy()[bad_rows[:5]].tolist()
        raise ValueError(f"non-finite model inputs for {len(bad_rows)} asteroid(s), e.g. asteroid_id {ids}")
    return matrix
