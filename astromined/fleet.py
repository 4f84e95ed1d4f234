"""The fleet manifest: which satellite (APID) surveys which sector of the belt.

The belt is cut into 10 radial bands (2.1–3.3 AU) × 5 longitude wedges = 50 sectors; the 500
satellites are assigned round-robin, 10 per sector.
"""

from __future__ import annotations

import numpy as np

N_SATELLITES = 500
N_RADIAL_BANDS = 10
N_LONGITUDE_WEDGES = 5
N_SECTORS = N_RADIAL_BANDS * N_LONGITUDE_WEDGES
INNER_EDGE_AU = 2.1
OUTER_EDGE_AU = 3.3
BAND_WIDTH_AU = (OUTER_EDGE_AU - INNER_EDGE_AU) / N_RADIAL_BANDS

SATELLITE_IDS = np.arange(1, N_SATELLITES + 1)


def sector_of_satellite(satellite_id: np.ndarray | int) -> np.ndarray | int:
    return (np.asarray(satellite_id) - 1) % N_SECTORS


def sector_of_orbit(semi_major_axis_au: np.ndarray, longitude_deg: np.ndarray) -> np.ndarray:
    band = np.clip(((semi_major_axis_au - INNER_EDGE_AU) / BAND_WIDTH_AU).astype(int), 0, N_RADIAL_BANDS - 1)
    wedge = (np.asarray(longitude_deg) // (360.0 / N_LONGITUDE_WEDGES)).astype(int) % N_LONGITUDE_WEDGES
    return band * N_LONGITUDE_WEDGES + wedge


def sector_band_centre_au(sector: np.ndarray | int) -> np.ndarray:
    band = np.asarray(sector) // N_LONGITUDE_WEDGES
    return INNER_EDGE_AU + (band + 0.5) * BAND_WIDTH_AU
