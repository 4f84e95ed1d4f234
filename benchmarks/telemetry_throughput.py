"""Decode + validate + write throughput of one downlink day, against simply reading the same files.

Usage:  .venv/bin/python benchmarks/telemetry_throughput.py [--satellites 500] [--observations 21000]

Generates (once, cached under .state/bench/) a day of the simulated fleet at the benchmark scale
(21,000 observations × 500 satellites ≈ 1.05 GB), then, pinned to one CPU core and in child processes:
  1. baseline: read every file of the day from disk (page cache warm for both sides),
  2. ingest:   astromined.telemetry.ingest.stream_day into Parquet (the raw_telemetry asset's path),
and reports MB/s of each, their ratio, and each child's peak RSS. Running the ingest on a quarter, a
half and the whole day shows whether peak RSS grows with the size of the day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
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


def _read_all(paths: list[str], queue: mp.Queue) -> None:
    _pin_to_one_core()
    started = time.perf_counter()
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    elapsed = time.perf_counter() - started
    queue.put(
        {
            "bytes": total,
            "seconds": elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _ingest(paths: list[str], out_dir: str, queue: mp.Queue) -> None:
    _pin_to_one_core()
    from astromined.telemetry.ingest import stream_day
    from astromined.telemetry.parquet_sink import ParquetDaySink

    def loader(path: str):
        def load() -> bytes:
            with open(path, "rb") as handle:
                return handle.read()

        return load

    started = time.perf_counter()
    with ParquetDaySink(Path(out_dir)) as sink:
        stats = stream_day(DAY, ((Path(p).name, loader(p)) for p in paths), sink)
        sink.close()
        parquet_bytes = sink.observations_path.stat().st_size + sink.quarantine_path.stat().st_size
    elapsed = time.perf_counter() - started
    queue.put(
        {
            "bytes": stats.bytes_in,
            "seconds": elapsed,
            "packets_in": stats.packets_in,
            "packets_ok": stats.packets_ok,
            "reconciles": stats.reconciles,
            "parquet_bytes": parquet_bytes,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _child(target, *args) -> dict:
    queue: mp.Queue = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=target, args=(*args, queue))
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--satellites", type=int, default=500)
    parser.add_argument("--observations", type=int, default=21_000)
    parser.add_argument("--cache", type=Path, default=REPO / ".state" / "bench")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    print(f"generating {args.satellites} × {args.observations} observations (cached) ...", flush=True)
    day_dir = generate(args.cache, args.satellites, args.observations)
    out_dir = args.cache / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for share in (0.25, 0.5, 1.0):
        paths = [str(p) for p in _files(day_dir, max(1, round(args.satellites * share)))]
        _child(_read_all, paths)  # warm the page cache for both sides
        read = _child(_read_all, paths)
        ingest = _child(_ingest, paths, str(out_dir))
        assert ingest["reconciles"], "packet counts do not reconcile"
        rows.append(
            {
                "share_of_day": share,
                "files": len(paths),
                "bytes": read["bytes"],
                "read_mb_s": read["bytes"] / read["seconds"] / 1e6,
                "ingest_mb_s": ingest["bytes"] / ingest["seconds"] / 1e6,
                "ingest_to_read_ratio": read["seconds"] / ingest["seconds"],
                "ingest_peak_rss_mb": ingest["peak_rss_mb"],
                "read_peak_rss_mb": read["peak_rss_mb"],
                "packets_in": ingest["packets_in"],
                "parquet_mb": ingest["parquet_bytes"] / 1e6,
            }
        )
        r = rows[-1]
        print(
            f"{share:>5.0%} of the day: {r['bytes'] / 1e9:.2f} GB in {r['files']} files"
            f" | read {r['read_mb_s']:.0f} MB/s"
            f" | ingest {r['ingest_mb_s']:.0f} MB/s (ratio {r['ingest_to_read_ratio']:.3f} of plain reading)"
            f" | ingest peak RSS {r['ingest_peak_rss_mb']:.0f} MB | Parquet {r['parquet_mb']:.0f} MB",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
