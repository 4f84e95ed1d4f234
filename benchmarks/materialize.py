"""Child process of ``data_to_model.py``: materialize a selection, or list the assets that are stale.

Usage:  python benchmarks/materialize.py run --select raw_telemetry,asteroid_features --partitions D1,D2
        python benchmarks/materialize.py stale --partition D

``run`` executes the code location's assets in-process on the local instance, as ``astromined run`` does,
one run per partition (unpartitioned assets in the last run), and prints one JSON line per run:
{"partition", "run_id", "seconds", "success"}. ``stale`` prints one JSON line: the assets (and, for
partitioned ones, the partition) Dagster reports as stale or missing, with the root causes — what the
UI's "Materialize changed and missing" would select.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _definitions():
    from astromined.cli import ensure_dagster_home
    from astromined.definitions import build_definitions
    from astromined.environment import load_settings

    settings = load_settings()
    ensure_dagster_home(settings)
    return build_definitions(settings)


def cmd_run(args: argparse.Namespace) -> int:
    import dagster as dg

    defs = _definitions()
    selection = [dg.AssetKey(name) for name in args.select.split(",")]
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    partitioned = [key for key in selection if graph.get(key).is_partitioned]
    unpartitioned = [key for key in selection if not graph.get(key).is_partitioned]
    partitions = args.partitions.split(",") if args.partitions else []
    with dg.DagsterInstance.get() as instance:
        for index, partition in enumerate(partitions or [None]):
            last = index == len(partitions or [None]) - 1
            keys = [*(partitioned if partition else []), *(unpartitioned if last else [])]
            if not keys:
                continue
            started = time.perf_counter()
            result = job.execute_in_process(
                asset_selection=keys,
                partition_key=partition,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            print(
                json.dumps(
                    {
                        "partition": partition,
                        "run_id": result.run_id,
                        "assets": [key.to_user_string() for key in keys],
                        "seconds": time.perf_counter() - started,
                        "success": result.success,
                    }
                ),
                flush=True,
            )
            if not result.success:
                return 1
    return 0


def cmd_stale(args: argparse.Namespace) -> int:
    import dagster as dg

    from astromined.automation.staleness import stale_assets

    started = time.perf_counter()
    defs = _definitions()
    with dg.DagsterInstance.get() as instance:
        found = stale_assets(instance, defs, args.partition)
    stale = [{"asset": i.key.to_user_string(), "status": i.status, "causes": list(i.causes)} for i in found]
    print(json.dumps({"stale": stale, "seconds": time.perf_counter() - started}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--select", required=True)
    run.add_argument("--partitions", default="")
    stale = sub.add_parser("stale")
    stale.add_argument("--partition", required=True)
    args = parser.parse_args(argv)
    return cmd_run(args) if args.command == "run" else cmd_stale(args)


if __name__ == "__main__":
    sys.exit(main())
