"""A synthetic asteroid population with simplified Bus–DeMeo priors.

Inner belt: S-types dominate; outer belt: C, D and P. X-types split by albedo into E (bright),
M (moderate albedo, high radar albedo, metal-rich) and P (dark). V-types show deep 1 µm and 2 µm
bands, S-types a 1 µm band and a red slope, C-types are flat and dark. Diameters follow a power law.
A minority carries ground-truth labels from follow-up surveys.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

from astromined import fleet, physics
from astromined.taxonomy import COMPLEXES
from astromined.telemetry.packet_format import BAND_WAVELENGTHS_UM

WAVELENGTHS = np.asarray(BAND_WAVELENGTHS_UM)

# Class priors per belt zone (inner < 2.5 AU <= middle < 2.82 AU <= outer); order = COMPLEXES.
ZONE_PRIORS = {
    "inner": (0.55, 0.13, 0.02, 0.08, 0.06, 0.09, 0.07),
    "middle": (0.35, 0.30, 0.05, 0.03, 0.04, 0.09, 0.14),
    "outer": (0.10, 0.45, 0.15, 0.01, 0.02, 0.06, 0.21),
}

# Per complex: (albedo mean, albedo sd, radar albedo mean, spectral slope per µm,
#               1 µm band depth, 2 µm band depth, metal richness beta(a, b))
COMPLEX_TRAITS = {
    "S": (0.24, 0.05, 0.15, 0.25, 0.15, 0.05, (2.0, 10.0)),
    "C": (0.06, 0.015, 0.10, 0.02, 0.00, 0.00, (1.0, 20.0)),
    "D": (0.05, 0.012, 0.08, 0.50, 0.00, 0.00, (1.0, 25.0)),
    "V": (0.35, 0.07, 0.15, 0.10, 0.40, 0.30, (1.5, 12.0)),
    "E": (0.50, 0.08, 0.25, 0.06, 0.00, 0.00, (2.0, 8.0)),
    "M": (0.15, 0.03, 0.40, 0.12, 0.03, 0.00, (6.0, 3.0)),
    "P": (0.045, 0.012, 0.10, 0.10, 0.00, 0.00, (1.0, 20.0)),
}

LABELLED_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Population:
    """One row per asteroid; ``spectra`` holds each body's reflectance normalized at 0.55 µm."""

    table: pd.DataFrame
    spectra: np.ndarray  # (n_asteroids, N_BANDS)


def spectral_template(
    slope: np.ndarray, band1_depth: np.ndarray, band2_depth: np.ndarray, uv_drop: np.ndarray
) -> np.ndarray:
    """Reflectance normalized to 1 at 0.55 µm: a linear slope with Gaussian 1 µm and 2 µm bands."""
    lam = WAVELENGTHS[None, :]
    continuum = 1.0 + slope[:, None] * (lam - 0.55)
    band1 = 1.0 - band1_depth[:, None] * np.exp(-0.5 * ((lam - 0.95) / 0.12) ** 2)
    band2 = 1.0 - band2_depth[:, None] * np.exp(-0.5 * ((lam - 1.95) / 0.25) ** 2)
    uv = 1.0 - uv_drop[:, None] * np.clip((0.55 - lam) / 0.10, 0.0, None)
    spectrum = continuum * band1 * band2 * uv
    return spectrum / spectrum[:, 1:2]


@functools.lru_cache(maxsize=8)
def generate_population(n_asteroids: int, seed: int) -> Population:
    """Deterministic population for (size, seed)."""
    rng = np.random.default_rng([seed, 0x5EED])
    ids = np.arange(1, n_asteroids + 1, dtype=np.int64)
    a = rng.uniform(fleet.INNER_EDGE_AU, fleet.OUTER_EDGE_AU, n_asteroids)
    longitude = rng.uniform(0.0, 360.0, n_asteroids)
    zone = np.where(a < 2.5, "inner", np.where(a < 2.82, "middle", "outer"))

    complex_idx = np.empty(n_asteroids, dtype=np.int64)
    for name, prior in ZONE_PRIORS.items():
        members = np.flatnonzero(zone == name)
        p = np.asarray(prior) / np.sum(prior)
        complex_idx[members] = rng.choice(len(COMPLEXES), size=len(members), p=p)
    complexes = np.asarray(COMPLEXES)[complex_idx]

    traits = np.asarray([COMPLEX_TRAITS[c][:6] for c in COMPLEXES])[complex_idx]
    albedo = np.clip(rng.normal(traits[:, 0], traits[:, 1]), 0.02, 0.8)
    radar_albedo = np.clip(rng.normal(traits[:, 2], 0.25 * traits[:, 2]), 0.02, 1.0)
    slope = traits[:, 3] + rng.normal(0.0, 0.04, n_asteroids)
    band1 = np.clip(traits[:, 4] * rng.uniform(0.8, 1.2, n_asteroids), 0.0, 0.8)
    band2 = np.clip(traits[:, 5] * rng.uniform(0.8, 1.2, n_asteroids), 0.0, 0.8)
    uv_drop = np.where(complexes == "C", rng.uniform(0.03, 0.10, n_asteroids), 0.0)
    metal_ab = np.asarray([COMPLEX_TRAITS[c][6] for c in COMPLEXES])[complex_idx]
    metal_richness = rng.beta(metal_ab[:, 0], metal_ab[:, 1])

    # Cumulative size distribution N(>D) ∝ D^-2 between 1 and 300 km.
    diameter = np.clip(1.0 * (1.0 - rng.uniform(0, 1, n_asteroids)) ** (-1.0 / 2.0), 1.0, 300.0)
    rotation_period = np.exp(rng.uniform(np.log(2.2), np.log(30.0), n_asteroids))
    lightcurve_amplitude = rng.uniform(0.05, 0.9, n_asteroids) / np.sqrt(1.0 + diameter / 50.0)
    labelled = rng.uniform(0, 1, n_asteroids) < LABELLED_FRACTION

    table = pd.DataFrame(
        {
            "asteroid_id": ids,
            "semi_major_axis_au": a,
            "longitude_deg": longitude,
            "sector": fleet.sector_of_orbit(a, longitude),
            "complex": complexes,
            "albedo": albedo,
            "radar_albedo": radar_albedo,
            "diameter_km": diameter,
            "absolute_magnitude": physics.absolute_magnitude(diameter, albedo),
            "metal_richness": metal_richness,
            "rotation_period_h": rotation_period,
            "lightcurve_amplitude_mag": lightcurve_amplitude,
            "labelled": labelled,
        }
    )
    return Population(table=table, spectra=spectral_template(slope, band1, band2, uv_drop))


def survey_catalog(population: Population) -> pd.DataFrame:
    """Ground truth for the labelled minority, as follow-up surveys publish it (kept apart from telemetry)."""
    labelled = population.table.loc[population.table["labelled"]]
    return labelled[["asteroid_id", "complex", "metal_richness"]].reset_index(drop=True)
