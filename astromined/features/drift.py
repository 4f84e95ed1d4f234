"""Drift of one daily feature partition against the champion's reference: the verdict behind retraining.

Pure module (no Dagster). Three kinds of evidence, each with an effect size and a significance test so
that neither noise on a small day nor a negligible shift on a huge one raises an alarm:

- **Features** (fleet-wide): PSI over the reference's decile bins and a two-sample KS test
  (``scipy.stats.ks_2samp``) against the reference sample, per feature of ``reference_stats.json``
  (``astromined.features.reference_stats``). A feature crosses when PSI > ``psi`` *and* KS p <
  ``ks_pvalue``.
- **Predicted class mix** (fleet-wide): the total-variation distance (TVD, half the L1 distance, 0..1)
  between the champion's predicted complexes on the partition and on its own reference window.
- **Predicted class mix per sector**: drift confined to a few sectors (a composition shift in 2 of 50)
  barely moves fleet-wide distributions, so the same TVD is computed per sector and tested with a
  chi-square test of homogeneity (reference counts vs partition counts, ``scipy.stats.chi2_contingency``),
  Bonferroni-corrected over the sectors tested. A sector crosses when TVD > ``sector_class_mix_shift``
  *and* the corrected p < ``sector_pvalue``.

The reference class mix is the champion's *predictions* on its reference window (``PredictionBaseline``),
not the true labels: predicted-vs-predicted cancels the model's own confusion.

Thresholds (``DriftThresholds``) and what they were measured against are documented in
docs/automation.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from astromined.features.reference_stats import (
    KS_PVALUE_THRESHOLD,
    PSI_DRIFT_THRESHOLD,
    ReferenceStatistics,
    drift_scores,
)
from astromined.taxonomy import COMPLEXES

BASELINE_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    """When a partition counts as drifted. Defaults are the values measured in docs/automation.md."""

    psi: float = PSI_DRIFT_THRESHOLD
    ks_pvalue: float = KS_PVALUE_THRESHOLD
    # Fleet-wide TVD of the predicted class mix.
    class_mix_shift: float = 0.05
    # Per-sector TVD, and the Bonferroni-corrected chi-square p-value it must also reach.
    sector_class_mix_shift: float = 0.25
    sector_pvalue: float = 0.01
    # Sectors with fewer rows that day are not tested (their TVD is mostly sampling noise).
    min_sector_rows: int = 30
    # A partition with fewer rows is not judged at all (PSI of an unchanged distribution ~ bins / rows).
    min_rows: int = 200

    def __post_init__(self) -> None:
        for name in ("psi", "class_mix_shift", "sector_class_mix_shift"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"DriftThresholds.{name}: {value!r} must be a positive number")
        for name in ("ks_pvalue", "sector_pvalue"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 1):
                raise ValueError(f"DriftThresholds.{name}: {value!r} must be in (0, 1)")
        for name in ("min_sector_rows", "min_rows"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DriftThresholds.{name}: {getattr(self, name)!r} must be ≥ 1")


@dataclasses.dataclass(frozen=True)
class ClassMix:
    """Observation-weighted counts per complex and the Kish effective sample size behind them.

    Weighted by ``n_observations``: a composition shift makes the satellites *look* at one complex more
    often, which moves the looks far more than the distinct asteroids (a sector holds few bodies of the
    favoured complex). Rows seen many times are not independent evidence, so significance uses the
    effective sample size (Σw)² / Σw² instead of the number of looks.
    """

    counts: dict[str, float]
    effective_size: float

    @classmethod
    def of(cls, labels: Sequence[str], weights: Sequence[float] | np.ndarray | None = None) -> ClassMix:
        series = pd.Series(list(labels), dtype="object").astype(str)
        unknown = sorted(set(series) - set(COMPLEXES))
        if unknown:
            raise ValueError(f"class labels {unknown} are not complexes ({', '.join(COMPLEXES)})")
        w = np.ones(len(series)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(series):
            raise ValueError(f"{len(series)} labels but {len(w)} weights")
        if (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("class-mix weights must be finite and ≥ 0")
        sums = pd.Series(w).groupby(series.to_numpy()).sum()
        squares = float(np.sum(w**2))
        return cls(
            counts={name: float(sums.get(name, 0.0)) for name in COMPLEXES},
            effective_size=float(w.sum() ** 2 / squares) if squares else 0.0,
        )

    @property
    def total(self) -> float:
        return float(sum(self.counts.values()))

    def proportions(self) -> np.ndarray:
        vector = np.asarray([self.counts.get(name, 0.0) for name in COMPLEXES], dtype=np.float64)
        total = vector.sum()
        return vector / total if total else vector

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "effective_size": self.effective_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassMix:
        return cls(
            counts={str(k): float(v) for k, v in data["counts"].items()},
            effective_size=float(data["effective_size"]),
        )


def total_variation(reference: ClassMix, observed: ClassMix) -> float:
    """TVD between two class mixes: ½ Σ |p − q| (0 = same mix, 1 = disjoint). NaN if either is empty."""
    if reference.total == 0 or observed.total == 0:
        return math.nan
    return float(0.5 * np.abs(reference.proportions() - observed.proportions()).sum())


def homogeneity_pvalue(reference: ClassMix, observed: ClassMix) -> float:
    """Chi-square test of homogeneity of two class mixes, each scaled to its effective sample size
    (classes absent from both are dropped). 1.0 when there is nothing to compare."""
    table = np.asarray(
        [mix.proportions() * mix.effective_size for mix in (reference, observed)], dtype=np.float64
    )
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


@dataclasses.dataclass(frozen=True)
class PredictionBaseline:
    """The champion's predicted class mix on its reference window, fleet-wide and per sector."""

    model_version: str
    fleet: ClassMix
    sectors: dict[int, ClassMix]
    format_version: int = BASELINE_FORMAT_VERSION

    @classmethod
    def from_predictions(
        cls,
        model_version: str,
        labels: Sequence[str],
        sectors: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> PredictionBaseline:
        labels = list(labels)
        sectors = np.asarray(sectors).astype(np.int64)
        w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
        if not len(labels) == len(sectors) == len(w):
            raise ValueError(f"{len(labels)} predicted labels, {len(sectors)} sectors, {len(w)} weights")
        by_sector = {}
        for sector in np.unique(sectors):
            rows = np.flatnonzero(sectors == sector)
            by_sector[int(sector)] = ClassMix.of([labels[i] for i in rows], w[rows])
        return cls(model_version=model_version, fleet=ClassMix.of(labels, w), sectors=by_sector)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": self.format_version,
                "model_version": self.model_version,
                "fleet": self.fleet.to_dict(),
                "sectors": {str(k): v.to_dict() for k, v in self.sectors.items()},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PredictionBaseline:
        data = json.loads(text)
        version = int(data.get("format_version", -1))
        if version != BASELINE_FORMAT_VERSION:
            raise ValueError(
                f"prediction baseline format_version {version}, expected {BASELINE_FORMAT_VERSION}"
            )
        return cls(
            model_version=str(data["model_version"]),
            fleet=ClassMix.from_dict(data["fleet"]),
            sectors={int(s): ClassMix.from_dict(mix) for s, mix in data["sectors"].items()},
            format_version=version,
        )


@dataclasses.dataclass(frozen=True)
class SectorShift:
    sector: int
    rows: int
    class_mix_shift: float
    pvalue: float  # Bonferroni-corrected over the sectors tested


@dataclasses.dataclass(frozen=True)
class DriftReport:
    """Scores of one partition and the verdict. ``reasons`` says why it drifted, or why not."""

    partition: str
    rows: int
    feature_scores: dict[str, dict[str, float]]
    features_over_threshold: list[str]
    max_psi: float
    max_psi_feature: str | None
    class_mix_shift: float
    sector_shifts: list[SectorShift]
    sectors_over_threshold: list[int]
    detected: bool
    reasons: list[str]
    thresholds: DriftThresholds

    @property
    def max_sector_class_mix_shift(self) -> float:
        shifts = [s.class_mix_shift for s in self.sector_shifts if math.isfinite(s.class_mix_shift)]
        return max(shifts) if shifts else math.nan

    def summary(self) -> str:
        verdict = "DRIFT" if self.detected else "no drift"
        return f"{self.partition}: {verdict} — " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "rows": self.rows,
            "detected": self.detected,
            "reasons": self.reasons,
            "max_psi": self.max_psi,
            "max_psi_feature": self.max_psi_feature,
            "features_over_threshold": self.features_over_threshold,
            "class_mix_shift": self.class_mix_shift,
            "sectors_over_threshold": self.sectors_over_threshold,
            "feature_scores": self.feature_scores,
            "sector_shifts": [dataclasses.asdict(s) for s in self.sector_shifts],
            "thresholds": dataclasses.asdict(self.thresholds),
        }


def _rounded(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def sector_shifts(
    baseline: PredictionBaseline,
    labels: Sequence[str],
    sectors: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    min_rows: int,
) -> list[SectorShift]:
    """Per sector with ≥ ``min_rows`` rows today and a reference: TVD and corrected homogeneity p-value."""
    sectors = np.asarray(sectors).astype(np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    tested = []
    for sector in np.unique(sectors):
        reference = baseline.sectors.get(int(sector))
        rows = np.flatnonzero(sectors == sector)
        if reference is None or len(rows) < min_rows:
            continue
        mix = ClassMix.of([labels[i] for i in rows], weights[rows])
        tested.append(
            (int(sector), len(rows), total_variation(reference, mix), homogeneity_pvalue(reference, mix))
        )
    n_tests = len(tested)
    return [
        SectorShift(sector, rows, _rounded(tvd), min(1.0, p * n_tests)) for sector, rows, tvd, p in tested
    ]


def evaluate_drift(
    partition: str,
    features: pd.DataFrame,
    reference: ReferenceStatistics,
    predicted_labels: Sequence[str] | None = None,
    baseline: PredictionBaseline | None = None,
    thresholds: DriftThresholds = DriftThresholds(),
) -> DriftReport:
    """Score ``features`` (one day's feature table) against the reference and decide.

    ``predicted_labels`` are the champion's predicted complexes for the rows of ``features`` (same order);
    with ``baseline`` they add the fleet-wide and per-sector class-mix evidence. Without them only the
    feature evidence counts (and the report says so).
    """
    if predicted_labels is not None and len(predicted_labels) != len(features):
        raise ValueError(
            f"partition {partition}: {len(predicted_labels)} predicted labels, {len(features)} feature rows"
        )
    rows = len(features)
    scores = {
        name: {key: _rounded(value) for key, value in score.items()}
        for name, score in drift_scores(reference, features).items()
    }
    finite_psi = {name: s["psi"] for name, s in scores.items() if math.isfinite(s["psi"])}
    max_psi_feature = max(finite_psi, key=finite_psi.__getitem__) if finite_psi else None
    max_psi = finite_psi[max_psi_feature] if max_psi_feature else math.nan
    over = sorted(
        name
        for name, s in scores.items()
        if s["psi"] > thresholds.psi and s["ks_pvalue"] < thresholds.ks_pvalue
    )
    class_shift = math.nan
    shifts: list[SectorShift] = []
    if predicted_labels is not None and baseline is not None:
        labels = list(predicted_labels)
        weights = (
            features["n_observations"].to_numpy(np.float64)
            if "n_observations" in features.columns
            else np.ones(rows)
        )
        class_shift = _rounded(total_variation(baseline.fleet, ClassMix.of(labels, weights)))
        if "sector" in features.columns:
            shifts = sector_shifts(baseline, labels, features["sector"], weights, thresholds.min_sector_rows)
    sectors_over = sorted(
        s.sector
        for s in shifts
        if s.class_mix_shift > thresholds.sector_class_mix_shift and s.pvalue < thresholds.sector_pvalue
    )

    reasons: list[str] = []
    if rows < thresholds.min_rows:
        reasons.append(f"only {rows} rows (< {thresholds.min_rows}): too few to judge, not scored as drift")
        detected = False
    else:
        if over:
            reasons.append(
                f"{len(over)} feature(s) with PSI > {thresholds.psi:g} and KS p < {thresholds.ks_pvalue:g}: "
                + ", ".join(f"{name} (PSI {scores[name]['psi']:.3f})" for name in over)
            )
        if math.isfinite(class_shift) and class_shift > thresholds.class_mix_shift:
            reasons.append(
                f"predicted class mix shifted by TVD {class_shift:.3f} (> {thresholds.class_mix_shift:g})"
            )
        if sectors_over:
            worst = {s.sector: s for s in shifts}
            reasons.append(
                f"predicted class mix shifted in sector(s) {sectors_over}: "
                + ", ".join(
                    f"{sector} (TVD {worst[sector].class_mix_shift:.3f}, p {worst[sector].pvalue:.1e})"
                    for sector in sectors_over
                )
            )
        detected = bool(reasons)
        if not detected:
            reasons.append(
                f"max PSI {max_psi:.3f} ({max_psi_feature}), no feature over PSI {thresholds.psi:g} with KS "
                f"p < {thresholds.ks_pvalue:g}"
                + (
                    f"; class-mix TVD {class_shift:.3f} ≤ {thresholds.class_mix_shift:g}; "
                    f"no sector over TVD {thresholds.sector_class_mix_shift:g}"
                    if math.isfinite(class_shift)
                    else "; class mix not evaluated (no champion predictions)"
                )
            )
    return DriftReport(
        partition=partition,
        rows=rows,
        feature_scores=scores,
        features_over_threshold=over,
        max_psi=max_psi,
        max_psi_feature=max_psi_feature,
        class_mix_shift=class_shift,
        sector_shifts=shifts,
        sectors_over_threshold=sectors_over,
        detected=detected,
        reasons=reasons,
        thresholds=thresholds,
    )
