"""Reference statistics of the features, saved with each model version, and drift scores against them.

Pure module (no Dagster). ``ReferenceStatistics.from_frame`` summarizes a feature table per feature:
count, mean, std, min, max, quantile bin edges (deciles of the reference), the reference's share of rows
in each bin, and a bounded deterministic sample for two-sample KS tests; plus the class mix when the
table has a ``complex`` column. A drift sensor compares each new daily feature partition against it with
``drift_scores``: the population stability index (PSI) over the reference's bins and a two-sample
Kolmogorov–Smirnov test against the stored sample.

Features (REFERENCE_FEATURES): every model input exactly as the model sees it (MODEL_FEATURES, computed
by ``astromined.features.engineering.model_inputs``), plus two raw columns the model inputs hide:
``radar_albedo`` over measured values only (``radar_albedo_filled`` mixes in the zeros of unmeasured
looks) and ``n_observations`` (how the fleet samples the belt). Other raw columns are monotone transforms
of a model input (``albedo`` → ``log_albedo``, ``rotation_period_h`` → ``log_rotation_period_h``) and PSI
and KS are invariant under monotone transforms, so they would add nothing.

Compute the reference from rows of the same kind as those it is compared with: the daily feature
partitions of the training window stacked (``from_frames``), one row per asteroid and day, not the
training set itself, whose rows average several days (less noise, summed ``n_observations``) and would
look drifted against every single day.

Suggested defaults: a feature has drifted when PSI > PSI_DRIFT_THRESHOLD (0.2, the customary "significant
shift") and the KS test rejects at KS_PVALUE_THRESHOLD (1e-3, strict because 21 features are tested every
day). ``drifted_features`` applies both. What the scores measure on the simulator's clean days and drift
scenarios: docs/automation.md, "Feature scores against the reference, measured".

PSI of an unchanged distribution grows like (bins − 1) / rows, so score partitions of a few hundred rows or
more. Drift confined to a few satellites or sectors does not move fleet-wide distributions: it needs
references and scores per sector or satellite group: ``astromined.features.drift`` adds the champion's
predicted class mix per sector, which finds the composition shift (docs/automation.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from astromined.features.engineering import (
    MODEL_FEATURES,
    NORMALIZED_REFLECTANCE,
    model_inputs,
)
from astromined.taxonomy import COMPLEXES

FORMAT_VERSION = 1
RAW_REFERENCE_FEATURES: list[str] = ["radar_albedo", "n_observations"]
REFERENCE_FEATURES: list[str] = [*MODEL_FEATURES, *RAW_REFERENCE_FEATURES]
N_BINS = 10
MAX_SAMPLE = 2_000
SAMPLE_SIGNIFICANT_DIGITS = 5
SAMPLE_SEED = 0
PSI_EPSILON = 1e-4
PSI_DRIFT_THRESHOLD = 0.2
KS_PVALUE_THRESHOLD = 1e-3

# Feature-table columns model_inputs needs finite (radar_albedo may be NaN: not measured).
MODEL_SOURCE_COLUMNS: list[str] = [
    *NORMALIZED_REFLECTANCE,
    "spectral_slope",
    "band_depth_1um",
    "band_depth_2um",
    "albedo",
    "rotation_period_h",
    "lightcurve_amplitude_mag",
]


def feature_values(frame: pd.DataFrame | Sequence[pd.DataFrame]) -> dict[str, np.ndarray]:
    """Finite float64 values of every REFERENCE_FEATURES feature of a feature table, or of several (the
    daily partitions of a window: the same as of their concatenation, without building it).

    Model features come from ``model_inputs`` on the rows whose inputs are finite (a row with a NaN
    input is a validation failure, not drift, and is left out); ``radar_albedo`` keeps measured values.
    """
    frames = [frame] if isinstance(frame, pd.DataFrame) else list(frame)
    parts = [_frame_feature_values(part) for part in frames]
    return {
        name: np.concatenate([part[name] for part in parts]) if parts else np.empty(0)
        for name in REFERENCE_FEATURES
    }


def _frame_feature_values(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    # Column by column, and the rows taken only when one is not finite: on a window of 1.4 M rows each
    # copy of the frame cost ~1.5 s, most of it this VM touching fresh memory (BENCHMARKS.md).
    finite = np.ones(len(frame), dtype=bool)
    for name in MODEL_SOURCE_COLUMNS:
        finite &= np.isfinite(frame[name].to_numpy(np.float64))
    matrix = model_inputs(frame if finite.all() else frame.loc[finite]).astype(np.float64)
    values = {name: matrix[:, i] for i, name in enumerate(MODEL_FEATURES)}
    for name in RAW_REFERENCE_FEATURES:
        column = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
        values[name] = column[np.isfinite(column)]
    return values


def _round_significant(values: np.ndarray, digits: int) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in values.tolist()]


def _bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows per bin: (-inf, e0], (e0, e1], …, (e_last, inf)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


@dataclasses.dataclass(frozen=True)
class FeatureStatistics:
    """One feature of the reference. ``bin_edges`` are the interior edges (duplicates merged, so a
    feature with few distinct values has fewer bins); ``proportions`` has len(bin_edges) + 1 entries."""

    name: str
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    bin_edges: tuple[float, ...]
    proportions: tuple[float, ...]
    sample: tuple[float, ...]

    @classmethod
    def from_values(
        cls,
        name: str,
        values: Iterable[float] | np.ndarray,
        n_bins: int = N_BINS,
        max_sample: int = MAX_SAMPLE,
    ) -> FeatureStatistics:
        array = np.asarray(values, dtype=np.float64).ravel()
        array = array[np.isfinite(array)]
        if len(array) == 0:
            return cls(name, 0, None, None, None, None, (), (1.0,), ())
        quantiles = np.arange(1, n_bins) / n_bins
        edges = np.unique(np.quantile(array, quantiles))
        proportions = _bin_counts(edges, array) / len(array)
        if len(array) > max_sample:
            rng = np.random.default_rng(SAMPLE_SEED)
            sample = array[rng.choice(len(array), size=max_sample, replace=False)]
        else:
            sample = array
        return cls(
            name=name,
            count=len(array),
            mean=float(array.mean()),
            std=float(array.std()),
            min=float(array.min()),
            max=float(array.max()),
            bin_edges=tuple(float(e) for e in edges),
            proportions=tuple(float(p) for p in proportions),
            sample=tuple(_round_significant(np.sort(sample), SAMPLE_SIGNIFICANT_DIGITS)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "bin_edges": list(self.bin_edges),
            "proportions": list(self.proportions),
            "sample": list(self.sample),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStatistics:
        def number(key: str) -> float | None:
            return None if data[key] is None else float(data[key])

        return cls(
            name=str(data["name"]),
            count=int(data["count"]),
            mean=number("mean"),
            std=number("std"),
            min=number("min"),
            max=number("max"),
            bin_edges=tuple(float(v) for v in data["bin_edges"]),
            proportions=tuple(float(v) for v in data["proportions"]),
            sample=tuple(float(v) for v in data["sample"]),
        )


@dataclasses.dataclass(frozen=True)
class ReferenceStatistics:
    """Per-feature reference statistics and, when the reference had labels, its class mix."""

    n_rows: int
    features: dict[str, FeatureStatistics]
    class_mix: dict[str, float] | None = None
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, n_bins: int = N_BINS, max_sample: int = MAX_SAMPLE
    ) -> ReferenceStatistics:
        return cls.from_frames([frame], n_bins, max_sample)

    @classmethod
    def from_frames(
        cls, frames: Sequence[pd.DataFrame], n_bins: int = N_BINS, max_sample: int = MAX_SAMPLE
    ) -> ReferenceStatistics:
        """The reference of the frames stacked (a window's daily partitions): ``from_frame`` of their
        ``pd.concat``, without the copy."""
        values = feature_values(frames)
        features = {
            name: FeatureStatistics.from_values(name, values[name], n_bins, max_sample)
            for name in REFERENCE_FEATURES
        }
        class_mix = None
        if frames and all("complex" in frame.columns for frame in frames):
            class_mix = _class_mix(pd.concat([frame["complex"] for frame in frames], ignore_index=True))
        return cls(n_rows=sum(len(frame) for frame in frames), features=features, class_mix=class_mix)

    def __getitem__(self, feature: str) -> FeatureStatistics:
        return self.features[feature]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "n_rows": self.n_rows,
            "class_mix": None if self.class_mix is None else dict(self.class_mix),
            "features": {name: stats_.to_dict() for name, stats_ in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceStatistics:
        version = int(data.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(f"reference statistics format_version {version}, expected {FORMAT_VERSION}")
        mix = data.get("class_mix")
        return cls(
            n_rows=int(data["n_rows"]),
            features={str(k): FeatureStatistics.from_dict(v) for k, v in data["features"].items()},
            class_mix=None if mix is None else {str(k): float(v) for k, v in mix.items()},
            format_version=version,
        )

    def to_json(self) -> str:
        """Canonical compact JSON (sorted keys): the same statistics always give the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceStatistics:
        return cls.from_dict(json.loads(text))


def _class_mix(labels: pd.Series) -> dict[str, float]:
    counts = labels.astype(str).value_counts()
    total = int(counts.sum())
    return {name: (float(counts.get(name, 0)) / total if total else 0.0) for name in COMPLEXES}


def _as_reference(reference: FeatureStatistics | Iterable[float] | np.ndarray) -> FeatureStatistics:
    if isinstance(reference, FeatureStatistics):
        return reference
    return FeatureStatistics.from_values("reference", reference, max_sample=0)


def _finite(values: Iterable[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _psi_of_proportions(expected: np.ndarray, actual: np.ndarray, epsilon: float) -> float:
    p = np.clip(expected, epsilon, None)
    q = np.clip(actual, epsilon, None)
    # Each term (q - p)·ln(q/p) is ≥ 0, so the sum is too (and exactly 0 when q == p).
    return float(np.sum((q - p) * np.log(q / p)))


def psi(
    reference: FeatureStatistics | Iterable[float] | np.ndarray,
    values: Iterable[float] | np.ndarray,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Population stability index of ``values`` against the reference's decile bins.

    ``reference`` is a feature's statistics or raw reference values (binned here). Empty bins count as
    ``epsilon``. NaN when either side has no finite value.
    """
    ref = _as_reference(reference)
    new = _finite(values)
    if ref.count == 0 or len(new) == 0:
        return math.nan
    edges = np.asarray(ref.bin_edges, dtype=np.float64)
    actual = _bin_counts(edges, new) / len(new)
    return _psi_of_proportions(np.asarray(ref.proportions), actual, epsilon)


@dataclasses.dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float


def ks_two_sample(
    reference: FeatureStatistics | Iterable[float] | np.ndarray, values: Iterable[float] | np.ndarray
) -> KSResult:
    """Two-sample KS test (scipy.stats.ks_2samp) of ``values`` against the reference's stored sample
    (or raw reference values). NaN statistic and p-value when either side is empty."""
    sample = (
        np.asarray(reference.sample, dtype=np.float64)
        if isinstance(reference, FeatureStatistics)
        else _finite(reference)
    )
    new = _finite(values)
    if len(sample) == 0 or len(new) == 0:
        return KSResult(math.nan, math.nan)
    result = stats.ks_2samp(sample, new)
    return KSResult(float(result.statistic), float(result.pvalue))


def drift_scores(reference: ReferenceStatistics, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per feature of the reference: ``{"psi", "ks_statistic", "ks_pvalue"}`` of ``frame`` against it."""
    values = feature_values(frame)
    scores: dict[str, dict[str, float]] = {}
    for name, feature in reference.features.items():
        observed = values.get(name, np.empty(0))
        ks = ks_two_sample(feature, observed)
        scores[name] = {"psi": psi(feature, observed), "ks_statistic": ks.statistic, "ks_pvalue": ks.pvalue}
    return scores


def drifted_features(
    scores: Mapping[str, Mapping[str, float]],
    psi_threshold: float = PSI_DRIFT_THRESHOLD,
    ks_pvalue_threshold: float = KS_PVALUE_THRESHOLD,
) -> list[str]:
    """Features whose PSI exceeds ``psi_threshold`` and whose KS p-value is below ``ks_pvalue_threshold``."""
    return [
        name
        for name, score in scores.items()
        if score["psi"] > psi_threshold and score["ks_pvalue"] < ks_pvalue_threshold
    ]


def class_mix_psi(
    reference: ReferenceStatistics, labels: Iterable[str] | pd.Series, epsilon: float = PSI_EPSILON
) -> float:
    """PSI of a class mix (e.g. the champion's predicted complexes on a day) against the reference's."""
    if reference.class_mix is None:
        raise ValueError("the reference statistics have no class mix (no 'complex' column in the reference)")
    observed = pd.Series(list(labels) if not isinstance(labels, pd.Series) else labels)
    if observed.empty:
        return math.nan
    mix = _class_mix(observed)
    expected = np.asarray([reference.class_mix[name] for name in COMPLEXES])
    actual = np.asarray([mix[name] for name in COMPLEXES])
    return _psi_of_proportions(expected, actual, epsilon)
