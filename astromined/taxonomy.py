"""Simplified Bus–DeMeo taxonomic complexes used throughout: simulator, labels, model and rankings."""

from __future__ import annotations

# X-types are split by albedo into E (bright), M (moderate, metal-rich) and P (dark).
COMPLEXES: tuple[str, ...] = ("S", "C", "D", "V", "E", "M", "P")
COMPLEX_INDEX: dict[str, int] = {name: i for i, name in enumerate(COMPLEXES)}
METAL_RICH_COMPLEX = "M"

# Relative commercial value of a body of each complex per unit metal richness and per unit volume;
# used by the mining-value score. M-types (iron-nickel) dominate; C-types carry water (volatiles).
COMPLEX_BASE_VALUE: dict[str, float] = {
    "S": 0.30,
    "C": 0.45,
    "D": 0.15,
    "V": 0.20,
    "E": 0.10,
    "M": 1.00,
    "P": 0.20,
}
