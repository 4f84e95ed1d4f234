"""Schema and value validation of the per-asteroid feature table and of the training set (pandera).

Pure module (no Dagster): the asset checks call ``validate_features`` / ``validate_training_set`` and
decide from the returned ``ValidationReport`` whether to block; validation itself never raises for bad
data. Validation is lazy: every failing column, check and row is collected, not only the first.

Bounds, and where they come from (astromined.sim.population, astromined.sim.downlink and
astromined.telemetry.packet_format.VALUE_RANGES). They are there to catch broken data (a dead band, a
unit error, a decoding bug), not drift: the drift scenarios of the simulator stay inside them.

- ``sector``: 0..N_SECTORS-1 (astromined.fleet); ``n_observations`` ≥ 1; 1 ≤ ``n_satellites`` ≤
  ``n_observations`` and ≤ the 10 satellites that survey one sector (every look at an asteroid comes from
  its own sector's satellites, on one day and over a window).
- normalized reflectance ``refl_norm_*``: [0.05, 4.0]. A ratio of two non-negative reflectances; the
  population's templates span 0.52 (the 0.95 µm centre of the deepest V-type) to 2.25 (the reddest D-type
  at 2.45 µm), a single look adds at most ~10 % noise (observed on 37k simulated rows: 0.50 .. 2.47).
- ``spectral_slope``: [-1.0, 2.0] per µm. Population: complex slope ± 4σ of N(0, 0.04) spans -0.16
  (C) .. 0.66 (D); observed -0.14 .. 0.66.
- ``band_depth_1um`` / ``band_depth_2um``: [-0.6, 0.95]. Population depths 0 .. 0.48 (V, 1 µm) and
  0 .. 0.36 (V, 2 µm); noise can make a single look negative: the depth does not depend on the
  normalization band, and at the worst noise a look can have (7 % per band: the instrument's cap,
  astromined.sim.downlink.spectral_noise) its σ is ≈ 0.085, so -0.6 is > 7σ (observed -0.29 .. 0.48).
  A depth of 1 would mean a zero-reflectance band centre.
- ``albedo``: (0, 1]. Population 0.02 .. 0.8 (a detector gain drift of +25 % still fits).
- ``radar_albedo``: nullable (not measured beyond 5,000 km), else VALUE_RANGES [0, 1.5].
- ``rotation_period_h``: (0, 10,000] (VALUE_RANGES' upper bound; population 2.2 .. 30 h).
- ``lightcurve_amplitude_mag``: VALUE_RANGES [0, 3].

Training set: the feature columns plus ``complex`` ∈ COMPLEXES, ``metal_richness`` ∈ [0, 1] and ``split``
∈ SPLITS, one row per asteroid and no asteroid in two splits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from astromined import fleet
from astromined.features.engineering import FEATURE_TABLE_COLUMNS, NORMALIZED_REFLECTANCE
from astromined.features.training_set import SPLITS
from astromined.taxonomy import COMPLEXES
from astromined.telemetry.packet_format import VALUE_RANGES

SATELLITES_PER_SECTOR = fleet.N_SATELLITES // fleet.N_SECTORS
NORMALIZED_REFLECTANCE_BOUNDS = (0.05, 4.0)
SPECTRAL_SLOPE_BOUNDS = (-1.0, 2.0)
BAND_DEPTH_BOUNDS = (-0.6, 0.95)
ALBEDO_MAX = 1.0
ROTATION_PERIOD_MAX_H = VALUE_RANGES["rotation_period_h"][1]

# The failures table of a report keeps at most this many rows; ``failure_count`` counts all of them.
MAX_FAILURE_ROWS = 50
# The message details at most this many (column, check) pairs; it always names every failing column.
MESSAGE_CHECKS = 8
FAILURE_COLUMNS = ["column", "check", "failure_case", "index", "asteroid_id"]


@dataclasses.dataclass(frozen=True)
class _RowCheck:
    """A check across columns, reported against ``column`` (one failure per offending row)."""

    name: str
    column: str
    requires: tuple[str, ...]
    passes: Callable[[pd.DataFrame], pd.Series]


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def _satellites_within_observations(frame: pd.DataFrame) -> pd.Series:
    # NaN on either side passes here: the columns' own not-null and dtype checks report it.
    return ~(_numeric(frame, "n_satellites") > _numeric(frame, "n_observations"))


def _asteroid_in_one_split(frame: pd.DataFrame) -> pd.Series:
    splits = frame.groupby("asteroid_id", dropna=False)["split"].transform("nunique")
    return splits <= 1


_FEATURE_ROW_CHECKS = (
    _RowCheck(
        "n_satellites_le_n_observations",
        "n_satellites",
        ("n_satellites", "n_observations"),
        _satellites_within_observations,
    ),
)
_TRAINING_ROW_CHECKS = (
    *_FEATURE_ROW_CHECKS,
    _RowCheck("asteroid_in_one_split", "split", ("asteroid_id", "split"), _asteroid_in_one_split),
)


def _dataframe_check(row_check: _RowCheck) -> pa.Check:
    def check(frame: pd.DataFrame) -> pd.Series:
        if not set(row_check.requires) <= set(frame.columns):
            return pd.Series(True, index=frame.index)  # column_in_dataframe reports the missing column
        return row_check.passes(frame)

    return pa.Check(check, name=row_check.name)


def _feature_columns() -> dict[str, pa.Column]:
    low, high = NORMALIZED_REFLECTANCE_BOUNDS
    columns: dict[str, pa.Column] = {
        "asteroid_id": pa.Column("int64", pa.Check.gt(0), unique=True),
        "sector": pa.Column("int64", pa.Check.in_range(0, fleet.N_SECTORS - 1)),
        "n_observations": pa.Column("int64", pa.Check.ge(1)),
        "n_satellites": pa.Column("int64", pa.Check.in_range(1, SATELLITES_PER_SECTOR)),
    }
    for column in NORMALIZED_REFLECTANCE:
        columns[column] = pa.Column("float64", pa.Check.in_range(low, high))
    columns["spectral_slope"] = pa.Column("float64", pa.Check.in_range(*SPECTRAL_SLOPE_BOUNDS))
    columns["band_depth_1um"] = pa.Column("float64", pa.Check.in_range(*BAND_DEPTH_BOUNDS))
    columns["band_depth_2um"] = pa.Column("float64", pa.Check.in_range(*BAND_DEPTH_BOUNDS))
    columns["albedo"] = pa.Column("float64", [pa.Check.gt(0.0), pa.Check.le(ALBEDO_MAX)])
    columns["radar_albedo"] = pa.Column(
        "float64", pa.Check.in_range(*VALUE_RANGES["radar_albedo"]), nullable=True
    )
    columns["rotation_period_h"] = pa.Column(
        "float64", [pa.Check.gt(0.0), pa.Check.le(ROTATION_PERIOD_MAX_H)]
    )
    columns["lightcurve_amplitude_mag"] = pa.Column(
        "float64", pa.Check.in_range(*VALUE_RANGES["lightcurve_amplitude_mag"])
    )
    if list(columns) != FEATURE_TABLE_COLUMNS:
        raise RuntimeError("the feature schema's columns differ from FEATURE_TABLE_COLUMNS")
    return columns


FEATURE_SCHEMA = pa.DataFrameSchema(
    _feature_columns(),
    checks=[_dataframe_check(c) for c in _FEATURE_ROW_CHECKS],
    strict=True,
    unique_column_names=True,
    coerce=False,
    name="asteroid_features",
)

# ``complex`` and ``split`` are strings: object or a pandas string dtype, whichever Parquet gave back.
TRAINING_SET_SCHEMA = pa.DataFrameSchema(
    {
        **_feature_columns(),
        "complex": pa.Column(None, pa.Check.isin(list(COMPLEXES))),
        "metal_richness": pa.Column("float64", pa.Check.in_range(0.0, 1.0)),
        "split": pa.Column(None, pa.Check.isin(list(SPLITS))),
    },
    checks=[_dataframe_check(c) for c in _TRAINING_ROW_CHECKS],
    strict=True,
    unique_column_names=True,
    coerce=False,
    name="training_set",
)

_ROW_CHECKS = {c.name: c for c in _TRAINING_ROW_CHECKS}


@dataclasses.dataclass(frozen=True, eq=False)
class ValidationReport:
    """Outcome of validating one table. ``failures`` holds at most MAX_FAILURE_ROWS rows.

    ``failures`` columns: ``column`` (the failing column), ``check`` (pandera's check name, e.g.
    ``in_range(0, 49)``, ``not_nullable``, ``field_uniqueness``, ``dtype('int64')``,
    ``column_in_dataframe``), ``failure_case`` (the offending value, as text), ``index`` (the row label, None
    for a whole-column failure such as a dtype) and ``asteroid_id`` of that row where it can be read.
    """

    schema: str
    partition: str
    n_rows: int
    failure_count: int
    failing_columns: tuple[str, ...]
    failures: pd.DataFrame
    # Failures per (column, check) over all of them, not only the rows kept in ``failures``.
    failures_by_check: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.failure_count == 0

    @property
    def message(self) -> str:
        where = f"{self.schema} [{self.partition}]"
        if self.passed:
            return f"{where}: {self.n_rows} row(s) passed validation"
        counts = list(self.failures_by_check.items())
        detail = "; ".join(f"{column}: {check} × {n}" for (column, check), n in counts[:MESSAGE_CHECKS])
        if len(counts) > MESSAGE_CHECKS:
            detail += f"; … and {len(counts) - MESSAGE_CHECKS} more (column, check) pair(s)"
        return (
            f"{where}: {self.failure_count} failure(s) in column(s) {', '.join(self.failing_columns)} "
            f"({self.n_rows} row(s)) — {detail}"
        )

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able summary, e.g. for asset-check metadata."""
        return {
            "schema": self.schema,
            "partition": self.partition,
            "passed": self.passed,
            "n_rows": self.n_rows,
            "failure_count": self.failure_count,
            "failing_columns": list(self.failing_columns),
            "failures_by_check": {f"{c}: {k}": n for (c, k), n in self.failures_by_check.items()},
            "failures": self.failure_records(),
        }

    def failure_records(self) -> list[dict[str, Any]]:
        """``failures`` as plain JSON-able dicts (row labels other than int/str/None become text)."""
        records = []
        for row in self.failures.itertuples(index=False):
            label = row.index if row.index is None or isinstance(row.index, int | str) else str(row.index)
            records.append(
                {
                    "column": str(row.column),
                    "check": str(row.check),
                    "failure_case": str(row.failure_case),
                    "index": label,
                    "asteroid_id": None if pd.isna(row.asteroid_id) else int(row.asteroid_id),
                }
            )
        return records


def _lookup(column: pd.Series, labels: pd.Series) -> pd.Series:
    """``column`` at each row label (first of duplicated labels); NaN where a label is None or absent."""
    out = pd.Series(np.nan, index=labels.index, dtype=object)
    present = labels.notna()
    if not present.any():
        return out
    unique = column[~column.index.duplicated(keep="first")]
    with contextlib.suppress(TypeError, ValueError):  # labels of a type the index cannot hold
        out[present] = unique.reindex(labels[present].to_list()).to_numpy()
    return out


def _text(value: Any) -> str:
    """A failure case or column as text; pandera gives some as an Index of column names."""
    if isinstance(value, pd.Index | list | tuple | np.ndarray):
        return ", ".join(str(v) for v in value)
    return str(value)


def _row_label(index: Any, integer_index: bool) -> Any:
    """pandera's index column mixes row labels and None (whole-column failures), so ints come back float."""
    if index is None or (isinstance(index, float) and np.isnan(index)):
        return None
    if integer_index and isinstance(index, float | np.floating) and float(index).is_integer():
        return int(index)
    if isinstance(index, np.integer):
        return int(index)
    return index


def _normalize_failures(frame: pd.DataFrame, cases: pd.DataFrame, schema_name: str) -> pd.DataFrame:
    """One row per (column, check, row): a cross-column check collapses onto its reported column."""
    integer_index = pd.api.types.is_integer_dtype(frame.index.dtype)
    labels = pd.Series(
        [_row_label(i, integer_index) for i in cases["index"].to_list()], dtype=object, name="index"
    )
    check = cases["check"].astype(str).reset_index(drop=True)
    column = cases["column"].astype(object).reset_index(drop=True)
    failure_case = cases["failure_case"].astype(object).reset_index(drop=True)

    is_row_check = check.isin(list(_ROW_CHECKS))
    # pandera reports every value of a row failing a dataframe-level check: keep one per (check, row).
    keep = ~(is_row_check & pd.DataFrame({"check": check, "index": labels}).duplicated())
    check, column, failure_case, labels = check[keep], column[keep], failure_case[keep], labels[keep]
    is_row_check = is_row_check[keep]
    for name, row_check in _ROW_CHECKS.items():
        mine = is_row_check & (check == name)
        if mine.any():
            column[mine] = row_check.column
            if row_check.column in frame.columns and isinstance(frame[row_check.column], pd.Series):
                values = _lookup(frame[row_check.column], labels[mine])
                failure_case[mine] = values.where(values.notna(), failure_case[mine])
    names_a_column = check.isin(["column_in_dataframe", "column_in_schema"]) | column.isna()
    names_a_column |= column.astype(str) == schema_name
    column[names_a_column] = failure_case[names_a_column]
    column = column.map(_text)

    asteroid_ids = pd.Series(pd.NA, index=labels.index, dtype="Int64")
    if "asteroid_id" in frame.columns and isinstance(frame["asteroid_id"], pd.Series):
        numeric = pd.to_numeric(_lookup(frame["asteroid_id"], labels), errors="coerce")
        whole = numeric.notna() & (numeric % 1 == 0)
        asteroid_ids[whole] = numeric[whole].astype(np.int64)
    out = pd.DataFrame(
        {
            "column": column,
            "check": check,
            "failure_case": failure_case,
            "index": labels,
            "asteroid_id": asteroid_ids,
        }
    )
    return out.reset_index(drop=True)


def _validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, partition: str) -> ValidationReport:
    n_rows = len(frame)
    try:
        with warnings.catch_warnings():
            # pandera concatenates empty failure-case frames internally (a pandas FutureWarning).
            warnings.simplefilter("ignore", FutureWarning)
            schema.validate(frame, lazy=True)
        cases = None
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    except pa.errors.SchemaError as error:  # a failure pandera could not collect lazily
        cases = pd.DataFrame(
            [
                {
                    "column": getattr(error, "column_name", None) or schema.name,
                    "check": str(getattr(error, "check", None) or type(error).__name__),
                    "failure_case": str(error).splitlines()[0] if str(error) else "",
                    "index": None,
                }
            ]
        )
    if cases is None or cases.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})
        empty["asteroid_id"] = empty["asteroid_id"].astype("Int64")
        return ValidationReport(str(schema.name), partition, n_rows, 0, (), empty)
    failures = _normalize_failures(frame, cases, str(schema.name))
    order = {column: i for i, column in enumerate(schema.columns)}
    failures = failures.sort_values(
        "column", key=lambda c: c.map(lambda name: order.get(name, len(order))), kind="stable"
    )
    counts = failures.groupby(["column", "check"], sort=False).size()
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0]))
    failing = tuple(dict.fromkeys(column for (column, _), _ in ranked))
    kept = failures.head(MAX_FAILURE_ROWS).reset_index(drop=True)
    kept["failure_case"] = kept["failure_case"].map(_text).astype(object)
    return ValidationReport(
        schema=str(schema.name),
        partition=partition,
        n_rows=n_rows,
        failure_count=len(failures),
        failing_columns=failing,
        failures=kept,
        failures_by_check={key: int(n) for key, n in ranked},
    )


def validate_features(frame: pd.DataFrame, partition: str) -> ValidationReport:
    """Validate one daily feature partition against FEATURE_SCHEMA; never raises for bad data."""
    return _validate(frame, FEATURE_SCHEMA, partition)


def validate_training_set(frame: pd.DataFrame, partition: str = "training_set") -> ValidationReport:
    """Validate the training set against TRAINING_SET_SCHEMA (``partition`` names it in messages)."""
    return _validate(frame, TRAINING_SET_SCHEMA, partition)
