"""The mining-value score derived from the model's outputs, and per-sector rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from astromined.taxonomy import COMPLEX_BASE_VALUE, COMPLEXES

_BASE = np.asarray([COMPLEX_BASE_VALUE[c] for c in COMPLEXES])


def mining_value(class_probabilities: np.ndarray, metal_richness: np.ndarray) -> np.ndarray:
    """Expected value per body in [0, 2]: class-weighted base value, doubled for fully metallic bodies."""
    return (class_probabilities @ _BASE) * (1.0 + np.clip(metal_richness, 0.0, 1.0))


def rank_sectors(sector: np.ndarray, value: np.ndarray, p_metal_rich: np.ndarray) -> pd.DataFrame:
    """One row per sector, best first by total expected mining value (a large sector of modest bodies
    outranks a small rich one): asteroid count, mean and total value, expected number of M-types."""
    frame = pd.DataFrame({"sector": sector, "value": value, "p_m": p_metal_rich})
    ranked = frame.groupby("sector").agg(
        asteroids=("value", "size"),
        expected_mining_value=("value", "mean"),
        total_mining_value=("value", "sum"),
        expected_m_types=("p_m", "sum"),
    )
    ranked = ranked.sort_values("total_mining_value", ascending=False).reset_index()
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked
