"""From a training-set table to tensors-to-be: inputs, class labels and metal richness per split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from astromined.features.engineering import model_inputs
from astromined.taxonomy import COMPLEX_INDEX


@dataclasses.dataclass(frozen=True)
class SplitArrays:
    x: np.ndarray
    y_class: np.ndarray
    y_metal: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def concatenated(parts: list[SplitArrays]) -> SplitArrays:
    """Several row sets as one, in order (a self-trained student's train rows: the labelled rows, then
    the pseudo-labelled ones; the pooled days of the quality benchmark)."""
    return SplitArrays(
        x=np.concatenate([p.x for p in parts]),
        y_class=np.concatenate([p.y_class for p in parts]),
        y_metal=np.concatenate([p.y_metal for p in parts]),
    )


def split_arrays(table: pd.DataFrame, split: str) -> SplitArrays:
    rows = table.loc[table["split"] == split]
    unknown = sorted(set(rows["complex"]) - set(COMPLEX_INDEX))
    if unknown:
        raise ValueError(f"training set split {split!r} has unknown complex label(s) {unknown}")
    return SplitArrays(
        x=model_inputs(rows),
        y_class=rows["complex"].map(COMPLEX_INDEX).to_numpy(np.int64),
        y_metal=rows["metal_richness"].to_numpy(np.float32),
    )
