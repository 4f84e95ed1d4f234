"""A synthetic asteroid population: Bus–DeMeo complexes, each a mixture of its sub-types.

The classifier predicts the complex (S, C, D, V, E, M, P), but a complex is not one kind of surface: it is
a family of Bus–DeMeo sub-types whose spectra and albedos differ, so a complex occupies several separate,
differently shaped regions of feature space rather than one Gaussian blob. With one blob per complex the
classes were separated by nearly linear boundaries and a logistic regression was close to the best any
model could do; real taxonomy is not like that (DeMeo et al. 2009; DeMeo & Carry 2013 for albedos):

- S-complex: S (red slope, 1 µm and weak 2 µm band), Sq (less red, deeper bands: fresher ordinary-chondrite
  surfaces), Sr/Sv (deep 1 µm and 2 µm pyroxene bands, approaching V), Sa/A-like olivine (very red, a deep
  *broad* 1 µm band centred near 1.05 µm, no 2 µm band: as red as a D-type but bright) and K/L (moderate
  albedo, shallow band, near the M-types).
- C-complex: B (blue, negative slope, brighter than other C), C/Cb (flat, UV drop) and Ch/Cgh (the 0.7 µm
  phyllosilicate hydration band, UV drop).
- X-complex, split by albedo: E (Xe: bright, a 0.49 µm band, seen as a drop at 0.45 µm), M (Xm, and Xk
  with a weak 0.9 µm band; radar-bright, metal-rich) and P (Xc: nearly flat, no UV drop, no hydration band,
  so it sits among the C sub-types; X/P: moderately red, dark).
- D (very red, featureless, dark) and V (deep pyroxene bands, bright) are single types.

Inner belt: S-types dominate; outer belt: C, D and P. Radar albedo and metal richness are complex-level
(M-types radar-bright and metal-rich). Diameters follow a power law. A minority carries ground-truth labels
from follow-up surveys.
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

# Per complex: (radar albedo mean, metal richness beta(a, b)).
COMPLEX_TRAITS = {
    "S": (0.15, (2.0, 10.0)),
    "C": (0.10, (1.0, 20.0)),
    "D": (0.08, (1.0, 25.0)),
    "V": (0.15, (1.5, 12.0)),
    "E": (0.25, (2.0, 8.0)),
    "M": (0.40, (6.0, 3.0)),
    "P": (0.10, (1.0, 20.0)),
}


@dataclasses.dataclass(frozen=True)
class Subtype:
    """One Bus–DeMeo sub-type: its share of its complex, albedo and spectral template parameters."""

    name: str
    share: float
    albedo: float  # geometric albedo mean
    albedo_sd: float
    slope: float  # continuum slope per µm
    band1_depth: float = 0.0  # the 1 µm (olivine / pyroxene) band
    band1_centre_um: float = 0.95
    band1_width_um: float = 0.12
    band2_depth: float = 0.0  # the 2 µm pyroxene band
    hydration_depth: float = 0.0  # the 0.7 µm phyllosilicate band
    uv_drop: tuple[float, float] = (0.0, 0.0)  # uniform range of the drop below 0.55 µm


SUBTYPES: dict[str, tuple[Subtype, ...]] = {
    "S": (
        Subtype("S", 0.50, 0.24, 0.05, 0.25, band1_depth=0.15, band2_depth=0.05),
        Subtype("Sq", 0.20, 0.26, 0.05, 0.10, band1_depth=0.22, band2_depth=0.08),
        Subtype("Sr", 0.14, 0.30, 0.06, 0.16, band1_depth=0.30, band1_centre_um=0.92, band2_depth=0.16),
        Subtype("Sa", 0.08, 0.21, 0.05, 0.55, band1_depth=0.35, band1_centre_um=1.05, band1_width_um=0.20),
        Subtype("K", 0.08, 0.14, 0.03, 0.12, band1_depth=0.08, band1_centre_um=1.0, band1_width_um=0.15),
    ),
    "C": (
        Subtype("B", 0.20, 0.10, 0.025, -0.10, uv_drop=(0.0, 0.02)),
        Subtype("C", 0.45, 0.055, 0.012, 0.0, uv_drop=(0.05, 0.12)),
        Subtype("Ch", 0.35, 0.05, 0.01, 0.08, hydration_depth=0.06, uv_drop=(0.06, 0.14)),
    ),
    "D": (Subtype("D", 1.0, 0.05, 0.012, 0.50),),
    "V": (Subtype("V", 1.0, 0.35, 0.07, 0.10, band1_depth=0.40, band1_centre_um=0.93, band2_depth=0.30),),
    "E": (Subtype("Xe", 1.0, 0.50, 0.08, 0.06, uv_drop=(0.04, 0.10)),),
    "M": (
        Subtype("Xm", 0.60, 0.15, 0.03, 0.12, band1_depth=0.03),
        Subtype("Xk", 0.40, 0.13, 0.03, 0.15, band1_depth=0.07, band1_centre_um=0.90, band1_width_um=0.10),
    ),
    "P": (
        Subtype("Xc", 0.40, 0.07, 0.012, 0.0),
        Subtype("X", 0.60, 0.045, 0.012, 0.16),
    ),
}

LABELLED_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Population:
    """One row per asteroid; ``spectra`` holds each body's reflectance normalized at 0.55 µm."""

    table: pd.DataFrame
    spectra: np.ndarray  # (n_asteroids, N_BANDS)


def spectral_template(
    slope: np.ndarray,
    band1_depth: np.ndarray,
    band2_depth: np.ndarray,
    uv_drop: np.ndarray,
    band1_centre_um: np.ndarray | float = 0.95,
    band1_width_um: np.ndarray | float = 0.12,
    hydration_depth: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Reflectance normalized to 1 at 0.55 µm: a linear continuum times Gaussian absorption bands.

    The 1 µm band's centre and width vary by mineralogy (pyroxene ~0.92 µm and narrow, olivine ~1.05 µm and
    broad); the 2 µm band is pyroxene's; the 0.7 µm band is the hydrated-silicate feature of Ch/Cgh types;
    ``uv_drop`` lowers the reflectance below 0.55 µm linearly (C-types' UV absorption, Xe's 0.49 µm band).
    """
    lam = WAVELENGTHS[None, :]
    centre1 = np.broadcast_to(np.asarray(band1_centre_um, dtype=np.float64), np.shape(slope))[:, None]
    width1 = np.broadcast_to(np.asarray(band1_width_um, dtype=np.float64), np.shape(slope))[:, None]
    hydration = np.broadcast_to(np.asarray(hydration_depth, dtype=np.float64), np.shape(slope))[:, None]
    continuum = 1.0 + slope[:, None] * (lam - 0.55)
    band1 = 1.0 - band1_depth[:, None] * np.exp(-0.5 * ((lam - centre1) / width1) ** 2)
    band2 = 1.0 - band2_depth[:, None] * np.exp(-0.5 * ((lam - 1.95) / 0.25) ** 2)
    band07 = 1.0 - hydration * np.exp(-0.5 * ((lam - 0.70) / 0.06) ** 2)
    uv = 1.0 - uv_drop[:, None] * np.clip((0.55 - lam) / 0.10, 0.0, None)
    spectrum = continuum * band1 * band2 * band07 * uv
    return spectrum / spectrum[:, 1:2]


def _subtype_table() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All sub-types in COMPLEXES order: names, complex index of each, and their parameter rows."""
    names, owner, rows = [], [], []
    for k, complex_name in enumerate(COMPLEXES):
        for sub in SUBTYPES[complex_name]:
            names.append(sub.name)
            owner.append(k)
            rows.append(
                (
                    sub.albedo,
                    sub.albedo_sd,
                    sub.slope,
                    sub.band1_depth,
                    sub.band1_centre_um,
                    sub.band1_width_um,
                    sub.band2_depth,
                    sub.hydration_depth,
                    *sub.uv_drop,
                )
            )
    return names, np.asarray(owner), np.asarray(rows, dtype=np.float64)


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

    names, owner, params = _subtype_table()
    subtype_idx = np.empty(n_asteroids, dtype=np.int64)
    for k, complex_name in enumerate(COMPLEXES):
        members = np.flatnonzero(complex_idx == k)
        choices = np.flatnonzero(owner == k)
        shares = np.asarray([s.share for s in SUBTYPES[complex_name]])
        subtype_idx[members] = choices[rng.choice(len(choices), size=len(members), p=shares / shares.sum())]
    p = params[subtype_idx]

    albedo = np.clip(rng.normal(p[:, 0], p[:, 1]), 0.02, 0.8)
    radar_mean = np.asarray([COMPLEX_TRAITS[c][0] for c in COMPLEXES])[complex_idx]
    radar_albedo = np.clip(rng.normal(radar_mean, 0.25 * radar_mean), 0.02, 1.0)
    slope = p[:, 2] + rng.normal(0.0, 0.04, n_asteroids)
    band1 = np.clip(p[:, 3] * rng.uniform(0.8, 1.2, n_asteroids), 0.0, 0.8)
    band2 = np.clip(p[:, 6] * rng.uniform(0.8, 1.2, n_asteroids), 0.0, 0.8)
    hydration = np.clip(p[:, 7] * rng.uniform(0.6, 1.4, n_asteroids), 0.0, 0.3)
    uv_drop = rng.uniform(p[:, 8], p[:, 9])
    metal_ab = np.asarray([COMPLEX_TRAITS[c][1] for c in COMPLEXES])[complex_idx]
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
            "subtype": np.asarray(names)[subtype_idx],
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
    spectra = spectral_template(
        slope,
        band1,
        band2,
        uv_drop,
        band1_centre_um=p[:, 4],
        band1_width_um=p[:, 5],
        hydration_depth=hydration,
    )
    return Population(table=table, spectra=spectra)


def survey_catalog(population: Population) -> pd.DataFrame:
    """Ground truth for the labelled minority, as follow-up surveys publish it (kept apart from telemetry)."""
    labelled = population.table.loc[population.table["labelled"]]
    return labelled[["asteroid_id", "complex", "metal_richness"]].reset_index(drop=True)
