"""Photometric and radiometric relations shared by the simulator and the feature code.

A deliberately simple model: linear phase function, isothermal-latitude-free thermal flux. What
matters is that both sides use the same relations, so the albedo recovered from thermal flux and
magnitude (the classic radiometric method) is consistent with how the fleet measures.
"""

from __future__ import annotations

import numpy as np

SOLAR_CONSTANT_W_M2 = 1361.0
AU_KM = 1.495978707e8
PHASE_INTEGRAL = 0.39
EMISSIVITY = 0.9
PHASE_COEFFICIENT_MAG_PER_DEG = 0.035
# D [km] = 1329 / sqrt(p_V) * 10^(-H/5)
DIAMETER_CONSTANT_KM = 1329.0


def absolute_magnitude(diameter_km: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    return 5.0 * np.log10(DIAMETER_CONSTANT_KM / (np.asarray(diameter_km) * np.sqrt(albedo)))


def apparent_magnitude(
    absolute_mag: np.ndarray, heliocentric_au: np.ndarray, range_km: np.ndarray, phase_deg: np.ndarray
) -> np.ndarray:
    return (
        absolute_mag
        + 5.0 * np.log10(heliocentric_au * (np.asarray(range_km) / AU_KM))
        + PHASE_COEFFICIENT_MAG_PER_DEG * np.asarray(phase_deg)
    )


def thermal_flux(
    diameter_km: np.ndarray, albedo: np.ndarray, heliocentric_au: np.ndarray, range_km: np.ndarray
) -> np.ndarray:
    """Thermal flux [W/m²] at the satellite: absorbed sunlight re-emitted, diluted over the range."""
    absorbed = SOLAR_CONSTANT_W_M2 / np.square(heliocentric_au) * (1.0 - PHASE_INTEGRAL * albedo)
    return EMISSIVITY * absorbed * np.square(np.asarray(diameter_km) / (2.0 * np.asarray(range_km)))


def albedo_from_flux_and_magnitude(
    flux: np.ndarray, magnitude: np.ndarray, phase_deg: np.ndarray
) -> np.ndarray:
    """Invert thermal_flux and apparent_magnitude for the geometric albedo.

    Heliocentric distance and range cancel: flux = K (1 - q p) / p with
    K = ε S₀ D₀² 10^(-2(m - βα)/5) / (4 AU²), so p = 1 / (flux / K + q).
    """
    reduced = np.asarray(magnitude, dtype=np.float64) - PHASE_COEFFICIENT_MAG_PER_DEG * np.asarray(phase_deg)
    k = (
        EMISSIVITY
        * SOLAR_CONSTANT_W_M2
        * DIAMETER_CONSTANT_KM**2
        * np.power(10.0, -0.4 * reduced)
        / (4.0 * AU_KM**2)
    )
    return 1.0 / (np.asarray(flux, dtype=np.float64) / k + PHASE_INTEGRAL)
