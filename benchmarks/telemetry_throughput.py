"""Decode + validate + write throughput of one downlink day, against simply reading the same files.

Usage:  .venv/bin/python benchmarks/telemetry_throughput.py [--satellites 500] [--observations 21000]
                                                            [--rounds 3] [--json results.json]

Generates (once, cached under .state/bench/) a day of the simulated fleet at the benchmark scale
(21,000 observations × 500 satellites ≈ 1.05 GB), then, each side in a fresh child process pinned to one
CPU core (Arrow on one thread) with the files in the page cache:
  1. baseline: read every file of the day (``open().read()``, what the ingest's loader does),
  2. ingest:   astromined.telemetry.ingest.stream_day into ParquetDaySink (the raw_telemetry asset's path),
alternating, ``--rounds`` times, on a quarter, a half and the whole day. Reported per share: MB/s of both
and their ratio, in wall-clock time and in CPU time of the child (user + system: on a machine shared
with other work, wall-clock time on one core includes the time other processes held it; CPU time does
not), best and median over the rounds; the ingest's peak RSS (does it grow with the day?) and Parquet
size. Finally one instrumented ingest of the whole day gives the CPU time per stage.

The numba kernels are loaded (from their on-disk cache) before the clock starts; the one-off load time
is reported separately ("kernel load").
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAY = dt.date(2026, 6, 15)


def _pin_to_one_core() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _files(root: Path, satellites: int) -> list[Path]:
    return sorted(root.glob("sat-*.ccsds"))[:satellites]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _read_all(paths: list[str], queue: mp.Queue) -> None:
    _pin_to_one_core()
    wall, cpu = _clock()
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    queue.put(
        {
            "bytes": total,
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


class _StageTimer:
    """Exclusive CPU time of wrapped functions (a caller's share excludes its wrapped callees)."""

    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()
        self._stack: list[float] = []

    def wrap(self, owner, name: str, stage: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.process_time()
            self._stack.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.process_time() - started
                inner = self._stack.pop()
                self.seconds[stage] += elapsed - inner
                if self._stack:
                    self._stack[-1] += elapsed

        setattr(owner, name, timed)


def _instrument(timer: _StageTimer) -> None:
    from astromined.telemetry import decode, ingest, kernels, parquet_sink

    timer.wrap(decode, "frame_packets", "framing (kernel)")
    timer.wrap(kernels, "_validate", "CRC, header/time/range checks, sort keys (kernel)")
    timer.wrap(kernels, "satellite_rows", "duplicates + lost packets (sort, kernel)")
    timer.wrap(kernels, "_write_rows", "columns of kept packets, latency histogram (kernel)")
    timer.wrap(ingest, "quarantine_columns", "quarantine rows")
    timer.wrap(ingest._DayIngestor, "_flush", "Arrow arrays (zero-copy)")
    timer.wrap(ingest._DayIngestor, "_flush_quarantine", "quarantine table")
    timer.wrap(parquet_sink.ParquetDaySink, "write_observations", "Parquet write: observations")
    timer.wrap(parquet_sink.ParquetDaySink, "write_quarantine", "Parquet write: quarantine")
    timer.wrap(parquet_sink.ParquetDaySink, "close", "Parquet write: footer, close")


def _ingest(paths: list[str], out_dir: str, stages: bool, queue: mp.Queue) -> None:
    _pin_to_one_core()
    from astromined.telemetry import kernels
    from astromined.telemetry.ingest import stream_day
    from astromined.telemetry.parquet_sink import ParquetDaySink

    load_started = time.perf_counter()
    kernels.warm_up()
    kernel_load_s = time.perf_counter() - load_started
    timer = _StageTimer()
    if stages:
        _instrument(timer)

    def loader(path: str):
        def load() -> bytes:
            started = time.process_time()
            with open(path, "rb") as handle:
                data = handle.read()
            timer.seconds["read files"] += time.process_time() - started
            return data

        return load

    wall, cpu = _clock()
    with ParquetDaySink(Path(out_dir)) as sink:
        stats = stream_day(DAY, ((Path(p).name, loader(p)) for p in paths), sink)
        sink.close()
        parquet_bytes = sink.observations_path.stat().st_size + sink.quarantine_path.stat().st_size
    wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    stage_seconds = dict(timer.seconds)
    if stages:
        stage_seconds["other (Python glue, statistics, staging)"] = cpu_s - sum(stage_seconds.values())
    queue.put(
        {
            "bytes": stats.bytes_in,
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "kernel_load_s": kernel_load_s,
            "packets_in": stats.packets_in,
            "packets_ok": stats.packets_ok,
            "reconciles": stats.reconciles,
            "parquet_bytes": parquet_bytes,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "stages_cpu_s": stage_seconds,
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


def generate(root: Path, satellites: int, observations: int) -> Path:
    from astromined.sim.downlink import simulate_satellite_day
    from astromined.sim.population import generate_population

    day_dir = root / f"{DAY.isoformat()}-{satellites}x{observations}"
    marker = day_dir / "_COMPLETE"
    if marker.exists():
        return day_dir
    day_dir.mkdir(parents=True, exist_ok=True)
    population = generate_population(200_000, 42)
    for satellite in range(1, satellites + 1):
        downlink = simulate_satellite_day(population, DAY, satellite, observations, 42)
        (day_dir / downlink.file_name).write_bytes(downlink.data)
        if satellite % 50 == 0:
            print(f"  generated {satellite}/{satellites} satellites", flush=True)
    marker.write_text("ok")
    return day_dir


def _summary(rounds: list[tuple[dict, dict]]) -> dict:
    def mb_s(run: dict, clock: str) -> float:
        return run["bytes"] / run[clock] / 1e6

    row: dict = {}
    for clock in ("wall_s", "cpu_s"):
        name = clock[:-2]
        ingest = [mb_s(i, clock) for _, i in rounds]
        read = [mb_s(r, clock) for r, _ in rounds]
        ratio = [r[clock] / i[clock] for r, i in rounds]  # paired within a round
        row[f"ingest_mb_s_{name}_best"] = max(ingest)
        row[f"ingest_mb_s_{name}_median"] = statistics.median(ingest)
        row[f"read_mb_s_{name}_median"] = statistics.median(read)
        row[f"ratio_{name}_best"] = max(ratio)
        row[f"ratio_{name}_median"] = statistics.median(ratio)
    ingests = [i for _, i in rounds]
    row["ingest_peak_rss_mb"] = max(i["peak_rss_mb"] for i in ingests)
    row["read_peak_rss_mb"] = max(r["peak_rss_mb"] for r, _ in rounds)
    row["kernel_load_s"] = statistics.median(i["kernel_load_s"] for i in ingests)
    row["packets_in"] = ingests[0]["packets_in"]
    row["parquet_mb"] = ingests[0]["parquet_bytes"] / 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--satellites", type=int, default=500)
    parser.add_argument("--observations", type=int, default=21_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--cache", type=Path, default=REPO / ".state" / "bench")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    print(f"generating {args.satellites} × {args.observations} observations (cached) ...", flush=True)
    day_dir = generate(args.cache, args.satellites, args.observations)
    out_dir = args.cache / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for share in args.shares:
        paths = [str(p) for p in _files(day_dir, max(1, round(args.satellites * share)))]
        _child(_read_all, paths)  # warm the page cache for both sides
        rounds = []
        for _ in range(args.rounds):
            read = _child(_read_all, paths)
            ingest = _child(_ingest, paths, str(out_dir), False)
            assert ingest["reconciles"], "packet counts do not reconcile"
            rounds.append((read, ingest))
        row = {"share_of_day": share, "files": len(paths), "bytes": rounds[0][0]["bytes"], **_summary(rounds)}
        rows.append(row)
        print(
            f"{share:>5.0%} of the day: {row['bytes'] / 1e9:.2f} GB in {row['files']} files"
            f" | ingest CPU {row['ingest_mb_s_cpu_best']:.0f} MB/s best, {row['ingest_mb_s_cpu_median']:.0f}"
            f" median (read {row['read_mb_s_cpu_median']:,.0f}; ratio {row['ratio_cpu_median']:.3f})"
            f" | wall {row['ingest_mb_s_wall_best']:.0f} best, {row['ingest_mb_s_wall_median']:.0f} median"
            f" (read {row['read_mb_s_wall_median']:,.0f}; ratio {row['ratio_wall_median']:.3f})"
            f" | peak RSS {row['ingest_peak_rss_mb']:.0f} MB | Parquet {row['parquet_mb']:.0f} MB"
            f" | kernel load {row['kernel_load_s']:.2f} s",
            flush=True,
        )
    paths = [str(p) for p in _files(day_dir, args.satellites)]
    staged = _child(_ingest, paths, str(out_dir), True)
    total = staged["cpu_s"]
    print(f"CPU time per stage, whole day ({staged['bytes'] / 1e9:.2f} GB, {total:.2f} s CPU):")
    for stage, seconds in sorted(staged["stages_cpu_s"].items(), key=lambda item: -item[1]):
        per_packet = seconds / staged["packets_in"] * 1e9
        print(f"  {stage:45s} {seconds:6.2f} s {100 * seconds / total:5.1f} % {per_packet:6.0f} ns/packet")
    if args.json:
        args.json.write_text(json.dumps({"shares": rows, "stages": staged}, indent=2))


if __name__ == "__main__":
    main()
