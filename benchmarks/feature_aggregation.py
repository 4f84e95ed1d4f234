"""The per-asteroid aggregation of asteroid_features: Polars (the product's code) against pandas and others.

Usage:  .venv/bin/python benchmarks/feature_aggregation.py [--satellites 500] [--observations 2000 8000]
        (polars is a product dependency; duckdb comes with the group ``bench``: pip install -e '.[bench]')

Input: one simulated day decoded exactly as the raw_telemetry asset does it (the fleet simulator's CCSDS
files, shared with benchmarks/telemetry_throughput.py under .state/bench/, then
astromined.telemetry.ingest.stream_day into Parquet, cached as observations-<day>-<S>x<O>.parquet). One
size per ``--observations`` value (observations per satellite before link losses).

What is computed, by every engine, from the day's Arrow table (as read from Parquet) to the pandas feature
table the asset writes: each satellite's calibration removed (reflectance / gain per band, magnitude − zero
point; the simulated fleet's table for seed 42), the per-observation quantities (reflectance normalized at
0.55 µm, radiometric albedo from thermal flux and magnitude, sector of the satellite), then per asteroid
the medians of the 11 normalized bands, albedo, rotation period and light-curve amplitude, the mean radar
albedo (NaN when never measured), the number of observations, the number of distinct satellites and the
sector; then spectral slope and band depths from the medians (``engineering.spectral_shape``, numpy, on
one row per asteroid).

  pandas            baseline: calibration by a numpy gather, table.to_pandas() and the pandas groupby
                    implementation the product used until 2026-11 (``pandas_features`` below)
  pandas-projected  the same with only the 21 columns the aggregation reads converted to pandas
  polars            the product: engineering.aggregate_by_asteroid (Arrow → Polars, calibration joined,
                    lazy expressions per observation, group_by().agg(), sort, to_pandas)
  duckdb            calibration by a numpy gather, one SQL query on the Arrow table (exact median), .df()
  arrow-numpy       calibration by a numpy gather, Arrow sort_indices by asteroid, numpy per-observation
                    arithmetic, per-group medians from one sort of padded blocks bucketed by group size,
                    np.*.reduceat for the rest

Before anything is timed, every engine's table is checked against pandas (same rows, columns and dtypes;
floats within rtol 1e-9, NaN in the same places). Each measurement runs in a fresh child process, once
pinned to one CPU core (every engine limited to one thread) and once with the engines' default threads;
each child reads the Parquet file, runs its engine once (for the peak memory above the loaded input) and
then ``--repeat`` more times; engines alternate over ``--rounds`` rounds. Reported: the best time, the
median time, the ratio of pandas' best time to the engine's best (> 1 = faster than pandas) and the peak
RSS the aggregation added on top of the input table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from astromined import fleet, physics  # noqa: E402
from astromined.features import engineering as eng  # noqa: E402
from astromined.sim.instrument import nominal_response  # noqa: E402
from astromined.telemetry.packet_format import NORMALIZATION_BAND  # noqa: E402

DAY = dt.date(2026, 6, 15)
ENGINES = ["pandas", "pandas-projected", "polars", "duckdb", "arrow-numpy"]
MEDIAN_COLUMNS = [*eng.NORMALIZED_REFLECTANCE, "albedo", "rotation_period_h", "lightcurve_amplitude_mag"]
MEASURED = [
    "thermal_flux",
    "apparent_magnitude",
    "phase_angle_deg",
    "radar_albedo",
    "rotation_period_h",
    "lightcurve_amplitude_mag",
]
INPUT_COLUMNS = ["asteroid_id", "satellite_id", *eng.RAW_REFLECTANCE, *MEASURED]
REFERENCE = eng.RAW_REFLECTANCE[NORMALIZATION_BAND]
# physics.albedo_from_flux_and_magnitude: p = 1 / (flux / K + q), K = ALBEDO_K0 · 10^(-0.4 (m - β α)).
ALBEDO_K0 = (
    physics.EMISSIVITY
    * physics.SOLAR_CONSTANT_W_M2
    * physics.DIAMETER_CONSTANT_KM**2
    / (4.0 * physics.AU_KM**2)
)
INT_COLUMNS = ["asteroid_id", "sector", "n_observations", "n_satellites"]
# The simulated fleet's calibration (benchmarks/telemetry_throughput.py simulates with seed 42). Days cached
# before the fleet had a detector response are calibrated all the same: the work, not the values, is timed.
CALIBRATION = nominal_response(42)


# ---------------------------------------------------------------------------------------------------------
# The implementations: each takes the day's pyarrow Table and returns the feature table (pandas).


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    """Spectral shape from the per-asteroid medians, dtypes and column order as in aggregate_by_asteroid."""
    full = np.ones((len(table), eng.N_BANDS))
    full[:, eng.NORMALIZED_BANDS] = table[eng.NORMALIZED_REFLECTANCE].to_numpy(np.float64)
    table["spectral_slope"], table["band_depth_1um"], table["band_depth_2um"] = eng.spectral_shape(full)
    table = table.astype({c: "int64" for c in INT_COLUMNS})
    return table[eng.FEATURE_TABLE_COLUMNS]


def _calibrated(table):
    """The Arrow table with each satellite's response removed (float64 reflectance and magnitude)."""
    import pyarrow as pa

    rows = CALIBRATION.rows_for(table.column("satellite_id").to_numpy())
    changes = {
        name: table.column(name).to_numpy().astype(np.float64) / CALIBRATION.gains[rows, band]
        for band, name in enumerate(eng.RAW_REFLECTANCE)
    }
    changes["apparent_magnitude"] = (
        table.column("apparent_magnitude").to_numpy().astype(np.float64) - CALIBRATION.zero_points_mag[rows]
    )
    for name, values in changes.items():
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values))
    return table


def pandas_features(observations: pd.DataFrame) -> pd.DataFrame:
    """The pandas implementation the product used until 2026-11, on calibrated observations."""
    raw = observations[eng.RAW_REFLECTANCE].to_numpy(np.float64)
    reference = raw[:, NORMALIZATION_BAND : NORMALIZATION_BAND + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = np.where(reference > 0, raw / reference, np.nan)
    per_obs = pd.DataFrame(
        normalized[:, eng.NORMALIZED_BANDS], columns=eng.NORMALIZED_REFLECTANCE, index=observations.index
    )
    per_obs["asteroid_id"] = observations["asteroid_id"].to_numpy()
    per_obs["satellite_id"] = observations["satellite_id"].to_numpy()
    per_obs["sector"] = fleet.sector_of_satellite(observations["satellite_id"].to_numpy())
    per_obs["albedo"] = physics.albedo_from_flux_and_magnitude(
        observations["thermal_flux"].to_numpy(np.float64),
        observations["apparent_magnitude"].to_numpy(np.float64),
        observations["phase_angle_deg"].to_numpy(np.float64),
    )
    for name in ("radar_albedo", "rotation_period_h", "lightcurve_amplitude_mag"):
        per_obs[name] = observations[name].to_numpy(np.float64)
    grouped = per_obs.groupby("asteroid_id", sort=True)
    table = grouped[MEDIAN_COLUMNS].median().reset_index()
    table["radar_albedo"] = grouped["radar_albedo"].mean().to_numpy()
    table["n_observations"] = grouped.size().to_numpy()
    table["n_satellites"] = grouped["satellite_id"].nunique().to_numpy()
    table["sector"] = grouped["sector"].min().to_numpy()
    return _finish(table)


def run_pandas(table) -> pd.DataFrame:
    return pandas_features(_calibrated(table).to_pandas())


def run_pandas_projected(table) -> pd.DataFrame:
    return pandas_features(_calibrated(table.select(INPUT_COLUMNS)).to_pandas())


def run_polars(table) -> pd.DataFrame:
    return eng.aggregate_by_asteroid(table, CALIBRATION)


def _duckdb_query() -> str:
    def measured(name: str) -> str:
        # DuckDB orders NaN above every number and counts it in median/avg; pandas skips it.
        return f"(CASE WHEN isnan({name}) THEN NULL ELSE {name}::DOUBLE END)"

    reference = measured(REFERENCE)
    normalized = ",\n    ".join(
        f'CASE WHEN {reference} > 0 THEN {measured(eng.RAW_REFLECTANCE[i])} / {reference} END AS "{name}"'
        for i, name in zip(eng.NORMALIZED_BANDS, eng.NORMALIZED_REFLECTANCE, strict=True)
    )
    reduced = (
        f"({measured('apparent_magnitude')}"
        f" - {physics.PHASE_COEFFICIENT_MAG_PER_DEG!r} * {measured('phase_angle_deg')})"
    )
    albedo = (
        f"1.0 / ({measured('thermal_flux')} / ({ALBEDO_K0!r} * pow(10.0, -0.4 * {reduced}))"
        f" + {physics.PHASE_INTEGRAL!r})"
    )
    medians = ",\n    ".join(f'median("{c}") AS "{c}"' for c in MEDIAN_COLUMNS)
    return f"""
WITH per_observation AS (
  SELECT
    asteroid_id,
    satellite_id,
    (satellite_id - 1) % {fleet.N_SECTORS} AS sector,
    {normalized},
    {albedo} AS albedo,
    {measured("radar_albedo")} AS radar_albedo,
    {measured("rotation_period_h")} AS rotation_period_h,
    {measured("lightcurve_amplitude_mag")} AS lightcurve_amplitude_mag
  FROM observations
  ORDER BY asteroid_id  -- contiguous groups: median() runs ~2.5× faster than on the day's order
)
SELECT
    asteroid_id,
    {medians},
    avg(radar_albedo) AS radar_albedo,
    count(*) AS n_observations,
    count(DISTINCT satellite_id) AS n_satellites,
    min(sector) AS sector
FROM per_observation
GROUP BY asteroid_id
ORDER BY asteroid_id
"""


def run_duckdb(table) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(config={"threads": os.environ.get("BENCH_THREADS", str(os.cpu_count()))}) as con:
        con.register("observations", _calibrated(table))
        return _finish(con.sql(_duckdb_query()).df())


@functools.cache
def _sorting_network(width: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort: compare-exchange pairs that sort ``width`` (a power of two) values."""
    pairs = []
    p = 1
    while p < width:
        k = p
        while k >= 1:
            for j in range(k % p, width - k, 2 * k):
                for i in range(min(k, width - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def _grouped_median(
    values: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Per-group medians of the columns of ``values`` (rows + 1 × columns), skipping NaN like pandas.

    ``values`` ends with one sentinel row of +inf (padding); ``order`` sorts the other rows by group, and
    group g is ``order[starts[g] : starts[g] + counts[g]]``. Groups are bucketed by size (1, 2, 3–4, 5–8,
    ...); a bucket is gathered, a cache-sized chunk of groups at a time, into a block (width × groups ×
    columns, one gathered row per observation) that a sorting network sorts with np.minimum/np.maximum
    across all its groups and columns at once (np.sort beyond width 64, where groups are few). Padded
    work stays under twice the rows.
    """
    n_rows, n_columns = values.shape[0] - 1, values.shape[1]
    has_nan = bool(np.isnan(values).any())
    out = np.empty((len(starts), n_columns))
    width = np.left_shift(1, np.ceil(np.log2(counts)).astype(np.int64))
    for w in np.unique(width).tolist():
        bucket = np.flatnonzero(width == w)
        offsets = np.arange(w)
        step = max(1, 2**20 // (w * n_columns))
        for first in range(0, len(bucket), step):
            chosen = bucket[first : first + step]
            inside = offsets[:, None] < counts[None, chosen]  # (w, groups)
            rows = np.where(inside, order[np.minimum(starts[chosen] + offsets[:, None], n_rows - 1)], n_rows)
            block = values[rows]  # (w, groups, columns); padding = the +inf row
            if has_nan:
                missing = np.isnan(block)
                n_valid = w - (missing | ~inside[..., None]).sum(axis=0)
                block[missing] = np.inf
            else:
                n_valid = np.broadcast_to(counts[chosen, None], (len(chosen), n_columns))
            if w <= 64:
                low = np.empty(block.shape[1:])
                for i, j in _sorting_network(w):
                    np.minimum(block[i], block[j], out=low)
                    np.maximum(block[i], block[j], out=block[j])
                    block[i] = low
            else:
                block.sort(axis=0)
            lower = np.take_along_axis(block, np.maximum((n_valid - 1) // 2, 0)[None], axis=0)[0]
            upper = np.take_along_axis(block, np.minimum(n_valid // 2, w - 1)[None], axis=0)[0]
            with np.errstate(invalid="ignore"):
                out[chosen] = np.where(n_valid > 0, (lower + upper) / 2.0, np.nan)
    return out


def run_arrow_numpy(table) -> pd.DataFrame:
    table = _calibrated(table)

    def column(name: str, dtype=np.float64) -> np.ndarray:
        return table.column(name).to_numpy().astype(dtype, copy=False)

    ids = column("asteroid_id", np.int64)
    n = len(ids)
    order = np.argsort(ids)
    sorted_ids = ids[order]
    boundary = np.empty(n, dtype=bool)
    boundary[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    counts = np.diff(np.append(starts, n))

    # Per-observation quantities in the table's order; _grouped_median gathers them by group.
    # One row per observation (all its median inputs in one cache line pair) plus the +inf sentinel row.
    values = np.empty((n + 1, len(MEDIAN_COLUMNS)))
    values[n] = np.inf
    reference = column(REFERENCE)
    positive = reference > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for position, band in enumerate(eng.NORMALIZED_BANDS):
            values[:n, position] = np.where(positive, column(eng.RAW_REFLECTANCE[band]) / reference, np.nan)
    values[:n, -3] = physics.albedo_from_flux_and_magnitude(
        column("thermal_flux"), column("apparent_magnitude"), column("phase_angle_deg")
    )
    values[:n, -2] = column("rotation_period_h")
    values[:n, -1] = column("lightcurve_amplitude_mag")
    medians = _grouped_median(values, order, starts, counts).T

    radar = column("radar_albedo")[order]
    measured = ~np.isnan(radar)
    with np.errstate(invalid="ignore"):
        radar_mean = np.add.reduceat(np.where(measured, radar, 0.0), starts) / np.add.reduceat(
            measured.astype(np.int64), starts
        )
    satellites = column("satellite_id", np.int64)[order]
    # Distinct satellites per asteroid: sort (group, satellite) keys, count the changes inside each group.
    group = np.cumsum(boundary) - 1
    keys = np.sort(group * (fleet.N_SATELLITES + 1) + satellites)
    new = np.empty(n, dtype=np.int64)
    new[:1] = 1
    np.not_equal(keys[1:], keys[:-1], out=new[1:])

    result = pd.DataFrame(dict(zip(MEDIAN_COLUMNS, medians, strict=True)))
    result.insert(0, "asteroid_id", sorted_ids[starts])
    result["radar_albedo"] = radar_mean
    result["n_observations"] = counts
    result["n_satellites"] = np.add.reduceat(new, starts)
    result["sector"] = np.minimum.reduceat(fleet.sector_of_satellite(satellites), starts)
    return _finish(result)


RUNNERS = {
    "pandas": run_pandas,
    "pandas-projected": run_pandas_projected,
    "polars": run_polars,
    "duckdb": run_duckdb,
    "arrow-numpy": run_arrow_numpy,
}


# ---------------------------------------------------------------------------------------------------------
# Input data


def observations_parquet(cache: Path, satellites: int, observations: int) -> Path:
    """The day's observation table as raw_telemetry writes it (cached)."""
    path = cache / f"observations-{DAY.isoformat()}-{satellites}x{observations}.parquet"
    if path.exists():
        return path
    from telemetry_throughput import generate  # benchmarks/ is on sys.path when run as a script

    from astromined.telemetry.ingest import stream_day
    from astromined.telemetry.parquet_sink import ParquetDaySink

    print(f"  simulating {satellites} × {observations} observations (cached) ...", flush=True)
    day_dir = generate(cache, satellites, observations)
    print("  decoding into Parquet (cached) ...", flush=True)
    files = [(p.name, p.read_bytes) for p in sorted(day_dir.glob("sat-*.ccsds"))]
    with ParquetDaySink(cache) as sink:
        stats = stream_day(DAY, files, sink)
        sink.close()
        assert stats.reconciles, "packet counts do not reconcile"
        shutil.move(sink.observations_path, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# Child processes


def _memory_kb() -> dict[str, int]:
    with open("/proc/self/status") as status:
        return {
            line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))
        }


def _configure(threads: int | None) -> None:
    """Called first in a child (before numpy/polars/duckdb start their thread pools)."""
    if threads is not None:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
        for variable in ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(threads)
        os.environ["BENCH_THREADS"] = str(threads)
    import pyarrow as pa

    if threads is not None:
        pa.set_cpu_count(threads)
        pa.set_io_thread_count(threads)


def _time_engine(path: str, engine: str, threads: int | None, repeat: int, queue: mp.Queue) -> None:
    _configure(threads)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    runner = RUNNERS[engine]
    before = _memory_kb()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as clear:  # reset VmHWM to the current RSS
        clear.write("5")
    started = time.perf_counter()
    result = runner(table)
    first = time.perf_counter() - started
    peak_mb = (_memory_kb()["VmHWM"] - before) / 1024
    rows = len(result)
    del result
    seconds = [first]
    for _ in range(repeat):
        started = time.perf_counter()
        runner(table)
        seconds.append(time.perf_counter() - started)
    queue.put(
        {
            "engine": engine,
            "seconds": seconds,
            "peak_added_mb": peak_mb,
            "rows_in": table.num_rows,
            "rows": rows,
        }
    )


def _with_gaps(table, seed: int = 3):
    """The day with missing values the simulator never produces: zero reference reflectance (normalized
    bands undefined), NaN inputs, and asteroids whose every rotation period is NaN (median NaN)."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = table.num_rows
    ids = table.column("asteroid_id").to_numpy()
    changes = {
        REFERENCE: (rng.uniform(size=n) < 0.01, 0.0),
        "thermal_flux": (rng.uniform(size=n) < 0.01, np.nan),
        "lightcurve_amplitude_mag": (rng.uniform(size=n) < 0.02, np.nan),
        "rotation_period_h": (np.isin(ids, np.unique(ids)[::50]) | (rng.uniform(size=n) < 0.02), np.nan),
    }
    for name, (where, value) in changes.items():
        column = table.column(name).to_numpy().copy()
        column[where] = value
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(column))
    return table


def _verify(path: str, queue: mp.Queue) -> None:
    """Every engine's table equals pandas', on the day as decoded and on the day with gaps."""
    _configure(None)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for candidate in (_with_gaps(table), table):
        expected = run_pandas(candidate)
        for engine in ENGINES[1:]:
            got = RUNNERS[engine](candidate)
            try:
                pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
            except AssertionError as error:
                raise AssertionError(f"{engine} differs from pandas: {error}") from None
    queue.put(
        {
            "rows_in": table.num_rows,
            "asteroids": len(expected),
            "median_observations_per_asteroid": float(np.median(expected["n_observations"])),
            "max_observations_per_asteroid": int(expected["n_observations"].max()),
            "asteroids_with_radar": int(expected["radar_albedo"].notna().sum()),
        }
    )


def _child(target, *args) -> dict:
    context = mp.get_context("spawn")
    queue: mp.Queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} exited with {process.exitcode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--satellites", type=int, default=500)
    parser.add_argument(
        "--observations", type=int, nargs="+", default=[2_000, 8_000], help="per satellite; one size each"
    )
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    parser.add_argument("--rounds", type=int, default=2, help="child processes per engine, alternating")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per child after the first")
    parser.add_argument("--cache", type=Path, default=REPO / ".state" / "bench")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    report = []
    for observations in args.observations:
        path = observations_parquet(args.cache, args.satellites, observations)
        shape = _child(_verify, str(path))
        print(
            f"{args.satellites} × {observations}: {shape['rows_in']:,} observations → {shape['asteroids']:,}"
            f" asteroids (median {shape['median_observations_per_asteroid']:.0f}, max"
            f" {shape['max_observations_per_asteroid']} observations each); every engine's table equals"
            " pandas'",
            flush=True,
        )
        for threads in (1, None):
            runs: dict[str, list[dict]] = {engine: [] for engine in args.engines}
            for _ in range(args.rounds):
                for engine in args.engines:
                    runs[engine].append(_child(_time_engine, str(path), engine, threads, args.repeat))
            rows = []
            for engine in args.engines:
                timed = [s for run in runs[engine] for s in run["seconds"][1:]]
                rows.append(
                    {
                        "engine": engine,
                        "best_s": min(timed),
                        "median_s": statistics.median(timed),
                        "first_run_s": min(run["seconds"][0] for run in runs[engine]),
                        "peak_added_mb": min(run["peak_added_mb"] for run in runs[engine]),
                    }
                )
            baseline = next((r for r in rows if r["engine"] == "pandas"), rows[0])
            label = "1 thread (one core)" if threads == 1 else f"default threads ({os.cpu_count()} cores)"
            print(f"  {label}:")
            for r in rows:
                r["speedup_vs_pandas"] = baseline["best_s"] / r["best_s"]
                r["median_speedup_vs_pandas"] = baseline["median_s"] / r["median_s"]
                print(
                    f"    {r['engine']:<17} best {r['best_s'] * 1e3:7.0f} ms"
                    f"  median {r['median_s'] * 1e3:7.0f} ms"
                    f"  first {r['first_run_s'] * 1e3:7.0f} ms  × {r['speedup_vs_pandas']:5.2f} vs pandas"
                    f" (median × {r['median_speedup_vs_pandas']:5.2f})  peak +{r['peak_added_mb']:5.0f} MB",
                    flush=True,
                )
            report.append(
                {
                    "satellites": args.satellites,
                    "observations_per_satellite": observations,
                    **shape,
                    "threads": threads or os.cpu_count(),
                    "engines": rows,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
