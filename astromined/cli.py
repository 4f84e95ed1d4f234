"""`astromined`: the operator's command line.

astromined run [--partition DAY]          materialize every asset for DAY (default: latest complete day)
astromined run --stale [--partition DAY]  only what is stale or missing for DAY (after a code change)
astromined simulate --start DAY --end DAY  fill the local landing zone with simulated downlinks
astromined model list                      registered model versions and the champion
astromined model rollback VERSION          point the champion at an earlier version
astromined model verify-package [VERSION]  verify an uplink package's signature as a satellite would
astromined runs reap                       fail runs whose (local) worker died; free their pool slots
astromined runs fail RUN_ID                mark one run failed and free its pool slots (a hung worker)
astromined home                            prepare DAGSTER_HOME and print its path (used by `make dev`)
astromined exporter [--host H] [--port P]  serve pipeline metrics on /metrics for Prometheus
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import filecmp
import gc
import logging
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

from astromined.environment import REPO_ROOT, ConfigurationError, Environment, Settings, load_settings


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME if set; else the state dir's, seeded with the repo's dagster.yaml."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    settings.require_writable_state()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if not target.exists() or not filecmp.cmp(source, target, shallow=False):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def latest_complete_day(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return (now.date() - dt.timedelta(days=1)).isoformat()


def _cmd_home(settings: Settings, _args: argparse.Namespace) -> int:
    import dagster as dg

    home = ensure_dagster_home(settings)
    # Create the instance's storage now, so a daemon and a CLI started together don't both try to.
    with dg.DagsterInstance.get():
        pass
    print(home)
    return 0


def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from astromined.automation.dead_runs import HOST_TAG, reap_dead_runs
    from astromined.automation.jobs import MAIN_JOB_NAME
    from astromined.automation.slot_wait import SlotWaitWatcher
    from astromined.definitions import build_definitions
    from astromined.run_summary import summarize_run

    ensure_dagster_home(settings)
    partition = args.partition or latest_complete_day()
    what = "what is stale or missing" if args.stale else "every asset"
    print(
        f"AstroMined: materializing {what} for {partition} "
        f"(env={settings.environment}, scale={settings.scale.name}, state={settings.state_dir})",
        flush=True,
    )
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(MAIN_JOB_NAME)
    logger = _run_logger(args.log_level)
    with dg.DagsterInstance.get() as instance:
        if settings.environment is Environment.LOCAL:
            # Locally no daemon can tell a killed run from a running one: clean up after killed runs
            # first, so their pool slots do not block this run (astromined/automation/dead_runs.py).
            for reaped in reap_dead_runs(instance):
                logger.warning(f"cleaned up after a killed run: {reaped.describe()}")
        selection = None
        if args.stale:
            selection = _stale_selection(definitions, job, instance, partition)
            if not selection:
                print(f"nothing to do: every asset of {MAIN_JOB_NAME} is up to date for {partition}")
                return 0
        run_id = str(uuid.uuid4())
        with SlotWaitWatcher(instance, run_id, logger=logger):
            result = job.execute_in_process(
                asset_selection=selection,
                partition_key=partition,
                instance=instance,
                run_id=run_id,
                tags={HOST_TAG: socket.gethostname()},
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": args.log_level}}}},
            )
        print(summarize_run(result, instance, partition))
    return 0 if result.success else 1


def _stale_selection(definitions, job, instance, partition: str) -> list:
    """``--stale``: the job's assets that are stale or missing for ``partition`` (code changed since they
    were materialized, or an input changed, or never materialized), and everything downstream of them in
    the job; printed with the reasons (astromined/automation/staleness.py)."""
    from astromined.automation.staleness import rerun_selection, stale_assets

    in_job = job.asset_layer.selected_asset_keys
    stale = stale_assets(instance, definitions, partition, selection=in_job)
    for item in stale:
        print(f"  {item.describe()}")
    selection = rerun_selection(definitions, stale, within=in_job)
    if selection:
        print(f"materializing {len(selection)} asset(s): {', '.join(k.to_user_string() for k in selection)}")
    return selection


def _skip_collecting_the_heap_at_exit() -> None:
    """When the interpreter exits, its final garbage collections walk the whole heap (~0.8 M objects after
    `astromined run`: dagster, torch, pandas, the definitions) and free it piece by piece: ~2.5 s of a
    tiny-scale run's 3 s shut-down, for memory the OS frees anyway. Freezing the heap at exit (an atexit
    handler; the others still run: log flushes, weakref finalizers) takes it out of those collections.
    Nothing is left unflushed: stdout/stderr are flushed by the interpreter regardless, the instance is
    closed by then, no thread or database connection is left, and the objects whose finalizers then do not
    run hold only memory (checked after a run: suspended numba/pytz generators without cleanup, llvmlite
    handles, read-only font files). Registered only where this module *is* the process (the console
    script, ``python -m astromined.cli``: no argv): an in-process caller of main() is never affected."""
    # atexit runs handlers last-registered-first: this one runs before those registered at import time
    # (logging's flush), which is fine: freezing frees nothing, the objects stay usable.
    atexit.register(gc.freeze)


def _run_logger(level: str) -> logging.Logger:
    """Messages `astromined run` adds to Dagster's own (pool waits, clean-ups), in the same format."""
    logger = logging.getLogger("astromined.run")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s - astromined - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from astromined.fleet import N_SATELLITES
    from resources import build_resources

    if settings.environment is not Environment.LOCAL:
        print("simulate writes to the local landing zone; unset ASTROMINED_ENV=prod", file=sys.stderr)
        return 2
    settings.require_writable_state()
    landing_zone = build_resources(settings)["landing_zone"]
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    if end < start:
        print(f"--end {end} is before --start {start}", file=sys.stderr)
        return 2
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    with tqdm(total=len(days) * N_SATELLITES, unit="file", desc="simulating downlinks") as bar:
        for day in days:
            bar.set_postfix_str(day.isoformat())
            landing_zone.prepare_day(day, progress=bar.update)
    print(f"landing zone: {landing_zone.root} ({len(days)} day(s), drift preset: {settings.drift})")
    return 0


def _registry(settings: Settings):
    from astromined.ml.registry import ModelRegistry
    from resources import resolved_resource

    if settings.environment is Environment.LOCAL:
        settings.require_writable_state()  # not "no champion yet" for a mistyped state dir
    return ModelRegistry(resolved_resource(settings, "lake").store())


def _cmd_model_list(settings: Settings, _args: argparse.Namespace) -> int:
    """Versions (* marks the champion), then the promotion history. Anything unreadable (a manifest, a
    promotion record, the champion pointer) is named on stderr and the rest is still listed; exit 1 then."""
    from astromined.ml.registry import CorruptRecordError

    registry = _registry(settings)
    problems: list[str] = []
    try:
        champion = registry.champion()
    except CorruptRecordError as exc:
        champion = None
        problems.append(str(exc))
    manifests = registry.manifests(problems)
    for version in registry.versions():
        marker = "*" if champion and champion["version"] == version else " "
        manifest = manifests.get(version)
        if manifest is None:
            print(f"{marker} {version}  (manifest unreadable, see below)")
            continue
        metrics = manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {}
        lineage = manifest.get("lineage") if isinstance(manifest.get("lineage"), dict) else {}
        f1 = metrics.get("validation_macro_f1", float("nan"))
        print(
            f"{marker} {version}  registered {str(manifest.get('registered_at', '?'))[:19]}  "
            f"validation macro-F1 {f1:.4f}  partitions {','.join(lineage.get('training_partitions', []))}"
        )
    if champion is None and not problems:
        print("no champion yet")
    history = registry.promotions(problems)
    if history:
        print("promotions (oldest first):")
        for record in history:
            print(
                f"{record['promoted_at'][:19]}  {record['version']}  "
                f"(was {record.get('previous') or 'none'})  {record.get('reason', '')}"
            )
    for problem in dict.fromkeys(problems):  # each once, in order
        print(f"model list: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _cmd_model_rollback(settings: Settings, args: argparse.Namespace) -> int:
    from astromined.ml.registry import ModelIntegrityError, UnknownModelVersionError

    registry = _registry(settings)
    try:
        # Works over a garbled champion pointer too: rollback is how it is repaired.
        record = registry.promote(args.version, reason=f"manual rollback: {args.reason}")
    except (UnknownModelVersionError, ModelIntegrityError) as exc:
        print(f"rollback refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"champion is now {record['version']} (was {record['previous'] or 'none'}); "
        "package it for uplink with:\n"
        "  dagster asset materialize -m astromined.definitions --select uplink_package"
    )
    if "note" in record:
        print(f"note: {record['note']}")
    return 0


def _cmd_model_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Verify a published package as a satellite does: with the fleet public key (configured, as the
    satellites hold it; never a key stored in the lake) and for the requested model version."""
    import json

    from astromined import lake_layout
    from astromined.ml.uplink import PackageVerificationError, public_key_fingerprint, verify_package
    from astromined.storage import BlobNotFoundError
    from resources import resolved_resource
    from resources.signing import SigningKeyError

    signing_key = resolved_resource(settings, "signing_key")
    try:
        fleet_key = signing_key.fleet_public_key_pem()
    except (SigningKeyError, PackageVerificationError, OSError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    store = _registry(settings).store
    try:
        version = args.version or json.loads(store.get_bytes(lake_layout.UPLINK_LATEST))["version"]
        package = store.get_bytes(lake_layout.uplink_package(version))
    except BlobNotFoundError as exc:
        print(f"no uplink package to verify: {exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        print(
            f"{store.describe(lake_layout.UPLINK_LATEST)} is unreadable ({exc!r}); name a VERSION",
            file=sys.stderr,
        )
        return 1
    try:
        manifest = verify_package(package, fleet_key, model_version=version)
    except PackageVerificationError as exc:
        print(f"package for {version} FAILS verification: {exc}", file=sys.stderr)
        return 1
    print(
        f"package for {version} verifies with the fleet public key {public_key_fingerprint(fleet_key)} "
        f"({signing_key.fleet_public_key_path}): {', '.join(manifest['members'])}"
    )
    return 0


def _cmd_runs_reap(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from astromined.automation.dead_runs import reap_dead_runs

    if settings.environment is not Environment.LOCAL:
        print(
            "runs reap judges local worker processes; in prod Dagster's run monitoring does this "
            "(use `astromined runs fail RUN_ID` for one run)",
            file=sys.stderr,
        )
        return 2
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        reaped = reap_dead_runs(instance)
    for item in reaped:
        print(f"cleaned up: {item.describe()}")
    if not reaped:
        print("no run with a dead worker, no slot held by a finished run")
    return 0


def _cmd_runs_fail(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from astromined.automation.dead_runs import fail_run

    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(args.run_id)
        if run is None:
            print(f"no run {args.run_id} in the instance at {os.environ['DAGSTER_HOME']}", file=sys.stderr)
            return 1
        reaped = fail_run(instance, run, f"marked failed by an operator: {args.reason}")
    print(reaped.describe())
    return 0


def _add_exporter_arguments(parser: argparse.ArgumentParser) -> None:
    from astromined.monitoring.options import add_arguments

    add_arguments(parser)


def _cmd_exporter(settings: Settings, args: argparse.Namespace) -> int:
    from astromined.monitoring.exporter import serve

    ensure_dagster_home(settings)
    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astromined", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the main job for one day and print a summary")
    run.add_argument("--partition", help="UTC day YYYY-MM-DD (default: yesterday)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--stale",
        action="store_true",
        help="only what is stale or missing for the day (e.g. after a model code change: the model assets, "
        "reusing the day's telemetry and features), and what depends on it",
    )
    run.set_defaults(handler=_cmd_run)
    sim = sub.add_parser("simulate", help="simulate downlinks for a date range into the local landing zone")
    sim.add_argument("--start", required=True)
    sim.add_argument("--end", required=True)
    sim.set_defaults(handler=_cmd_simulate)
    home = sub.add_parser("home", help="prepare DAGSTER_HOME and print it")
    home.set_defaults(handler=_cmd_home)
    exporter = sub.add_parser("exporter", help="serve pipeline metrics from the Dagster instance on /metrics")
    _add_exporter_arguments(exporter)
    exporter.set_defaults(handler=_cmd_exporter)
    runs = sub.add_parser("runs", help="runs whose worker died or hangs (free their pool slots)")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    runs_sub.add_parser(
        "reap", help="mark runs whose local worker process is gone as failed and free their pool slots"
    ).set_defaults(handler=_cmd_runs_reap)
    fail = runs_sub.add_parser("fail", help="mark RUN_ID failed and free its pool slots (a hung worker)")
    fail.add_argument("run_id")
    fail.add_argument("--reason", default="operator request")
    fail.set_defaults(handler=_cmd_runs_fail)
    model = sub.add_parser("model", help="the model registry")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_sub.add_parser("list").set_defaults(handler=_cmd_model_list)
    rollback = model_sub.add_parser("rollback", help="make VERSION the champion again")
    rollback.add_argument("version")
    rollback.add_argument("--reason", default="operator request")
    rollback.set_defaults(handler=_cmd_model_rollback)
    verify = model_sub.add_parser("verify-package")
    verify.add_argument("version", nargs="?")
    verify.set_defaults(handler=_cmd_model_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:
        _skip_collecting_the_heap_at_exit()
    try:
        return args.handler(load_settings(), args)
    except ConfigurationError as exc:
        print(f"astromined: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A prod resource whose EnvVar is unset, or whose config does not validate (resolved_resource).
        from dagster import DagsterInvalidConfigError

        if not isinstance(exc, DagsterInvalidConfigError):
            raise
        print(f"astromined: configuration error: {_config_problems(exc)}", file=sys.stderr)
        return 2


def _config_problems(exc) -> str:
    """Dagster's config errors as one line: which variable is unset, or each error's first line."""
    import re

    problems = []
    for error in exc.errors:
        unset = re.search(r'environment variable "([^"]+)" which is not set', error.message)
        where = re.search(r"path root:([\w-]+):", error.message)
        if unset:
            resource = f" (resource {where.group(1)})" if where else ""
            problems.append(f"{unset.group(1)} is not set{resource}")
        else:
            problems.append(error.message.strip().splitlines()[0])
    return "; ".join(problems) or str(exc).splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
