"""`astromined`: the operator's command line.

astromined run [--partition DAY]          materialize every asset for DAY (default: latest complete day)
astromined simulate --start DAY --end DAY  fill the local landing zone with simulated downlinks
astromined model list                      registered model versions and the champion
astromined model rollback VERSION          point the champion at an earlier version
astromined model verify-package [VERSION]  verify an uplink package's signature as a satellite would
astromined home                            prepare DAGSTER_HOME and print its path (used by `make dev`)
astromined exporter [--host H] [--port P]  serve pipeline metrics on /metrics for Prometheus
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import shutil
import sys
from pathlib import Path

from astromined.environment import REPO_ROOT, Environment, Settings, load_settings


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME if set; else the state dir's, seeded with the repo's dagster.yaml."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
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

    from astromined.automation.jobs import MAIN_JOB_NAME
    from astromined.definitions import build_definitions
    from astromined.run_summary import summarize_run

    ensure_dagster_home(settings)
    partition = args.partition or latest_complete_day()
    print(
        f"AstroMined: materializing every asset for {partition} "
        f"(env={settings.environment}, scale={settings.scale.name}, state={settings.state_dir})",
        flush=True,
    )
    job = build_definitions(settings).resolve_job_def(MAIN_JOB_NAME)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": args.log_level}}}},
        )
        print(summarize_run(result, instance, partition))
    return 0 if result.success else 1


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from astromined.fleet import N_SATELLITES
    from resources import build_resources

    if settings.environment is not Environment.LOCAL:
        print("simulate writes to the local landing zone; unset ASTROMINED_ENV=prod", file=sys.stderr)
        return 2
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
    from resources import build_resources

    return ModelRegistry(build_resources(settings)["lake"].store())


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
    return args.handler(load_settings(), args)


if __name__ == "__main__":
    sys.exit(main())
