"""`make demo-k8s`: the whole asset graph, each step a Kubernetes Job placed by the multi-cluster executor.

Starts the two simulated clusters of infra/sim/ (on-prem EKS-A: 27 servers with 2 x V100; cloud EKS: GPU
node groups), writes a kubeconfig with both contexts, fills the on-prem GPUs with other teams' pods (by
default all of them, so the training step spills to the cloud), runs the `downlink_to_uplink` job for one
day at the tiny scale through `astromined_k8s_executor` — every step pod really runs
`dagster api execute_step` — and prints where each step ran and why.

    .venv/bin/python -m astromined.placement.demo [--busy-onprem-gpus N] [--partition DAY] [--state-dir DIR]
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def say(text: str = "") -> None:
    """The demo talks to a person on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _occupy_onprem_gpus(cluster, count: int) -> int:
    """Bind `count` single-GPU pods of another team to the on-prem GPU nodes (Running, no process)."""
    gpu_nodes = [
        (n["metadata"]["name"], int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)))
        for n in cluster.nodes()
        if int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) > 0
    ]
    slots = [name for name, gpus in sorted(gpu_nodes) for _ in range(gpus)][:count]
    return cluster.add_bound_pods(
        {
            "metadata": {"name": f"other-team-train-{i}", "namespace": "default"},
            "spec": {
                "nodeName": node,
                "tolerations": [GPU_TOLERATION],
                "containers": [
                    {"name": "train", "image": "other-team", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                ],
            },
        }
        for i, node in enumerate(slots)
    )


def _step_rows(instance, run_id: str) -> list[dict]:
    """Per step: its placement (the executor's engine events; the last one if it moved) and its duration."""
    rows: dict[str, dict] = {}
    started: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        row = rows.setdefault(event.step_key, {"step": event.step_key, "status": "not run"})
        if event.is_engine_event and "placement/site" in (event.engine_event_data.metadata or {}):
            metadata = event.engine_event_data.metadata
            row.update(
                site=metadata["placement/site"].value,
                cluster=metadata["placement/cluster"].value,
                gpus=metadata["placement/gpus"].value,
                reason=metadata["placement/reason"].value,
                moves=row.get("moves", -1) + 1,
            )
            row.setdefault("placed_at", record.timestamp)
        elif event.is_step_start:
            started[event.step_key] = record.timestamp
        elif event.is_step_success or event.is_step_failure:
            row["status"] = "success" if event.is_step_success else "failure"
            if event.step_key in started:
                row["seconds"] = record.timestamp - started[event.step_key]
    return sorted(rows.values(), key=lambda row: (row.get("placed_at", float("inf")), row["step"]))


def render_table(rows: list[dict]) -> str:
    header = f"{'step':<34} {'site':<7} {'cluster':<7} {'GPUs':>4} {'secs':>6} {'status':<8} reason"
    lines = [header, "-" * len(header)]
    for row in rows:
        reason = textwrap.shorten(row.get("reason", "-"), width=110, placeholder=" …")
        lines.append(
            f"{row['step']:<34} {row.get('site', '-'):<7} {row.get('cluster', '-'):<7} "
            f"{row.get('gpus', 0):>4} {row.get('seconds', 0.0):>6.1f} {row['status']:<8} {reason}"
        )
    gpu_seconds: dict[str, float] = {}
    steps_by_site: dict[str, int] = {}
    for row in rows:
        if "site" in row:
            steps_by_site[row["site"]] = steps_by_site.get(row["site"], 0) + 1
            gpu_seconds[row["site"]] = gpu_seconds.get(row["site"], 0.0) + row["gpus"] * row.get(
                "seconds", 0.0
            )
    lines.append("")
    lines.append(
        "steps by site: "
        + ", ".join(f"{site} {count}" for site, count in sorted(steps_by_site.items()))
        + " | GPU-seconds by site: "
        + ", ".join(f"{site} {seconds:.1f}" for site, seconds in sorted(gpu_seconds.items()))
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m astromined.placement.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--busy-onprem-gpus", type=int, default=None, help="on-prem GPUs held by others (default: all)"
    )
    parser.add_argument("--partition", help="UTC day YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--state-dir", help="where the lake and the instance go (default: a fresh temp dir)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="astromined-demo-k8s-")).resolve()
    # The run worker (this process) and every step pod read the same settings: local, tiny, this state dir.
    os.environ.update(ASTROMINED_ENV="local", ASTROMINED_SCALE="tiny", ASTROMINED_STATE_DIR=str(state_dir))
    os.environ.pop("DAGSTER_HOME", None)  # the demo's own instance: <state>/dagster_home with dagster.yaml

    import dagster as dg

    from astromined.automation.jobs import MAIN_JOB_NAME
    from astromined.cli import ensure_dagster_home, latest_complete_day
    from astromined.environment import REPO_ROOT, load_settings
    from astromined.placement.dagster_compat import ReconstructableRepository
    from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig

    home = ensure_dagster_home(load_settings())
    partition = args.partition or latest_complete_day()
    kubeconfig = state_dir / "kubeconfig"
    onprem = SimulatedCluster(ClusterSpec.from_yaml(REPO_ROOT / "infra/sim/eks-a.yaml"), workdir=REPO_ROOT)
    cloud = SimulatedCluster(ClusterSpec.from_yaml(REPO_ROOT / "infra/sim/eks.yaml"), workdir=REPO_ROOT)
    with onprem, cloud:
        write_kubeconfig({"eks-a": onprem, "eks": cloud}, kubeconfig, current_context="eks-a")
        total_gpus = sum(int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) for n in onprem.nodes())
        busy = _occupy_onprem_gpus(
            onprem, total_gpus if args.busy_onprem_gpus is None else args.busy_onprem_gpus
        )
        say(
            f"demo-k8s: on-prem eks-a at {onprem.url} ({busy} of {total_gpus} GPUs held by other teams), "
            f"cloud eks at {cloud.url}; partition {partition}, state {state_dir}"
        )
        job = ReconstructableRepository.for_module(
            "astromined.placement.demo_definitions", "defs", working_directory=str(REPO_ROOT)
        ).get_reconstructable_job(MAIN_JOB_NAME)
        run_config = {
            "execution": {
                "config": {
                    "kubeconfig_file": str(kubeconfig),
                    "job_namespace": "default",
                    "job_image": "astromined:demo",
                    "image_pull_policy": "IfNotPresent",
                    "dagster_home": str(home),
                    "health_check_interval_s": 2,
                    "unschedulable_timeout_s": 60.0,
                    "cloud_unreachable_timeout_s": 120.0,
                }
            },
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        }
        with dg.DagsterInstance.get() as instance:
            with dg.execute_job(
                job, instance, run_config=run_config, tags={"dagster/partition": partition}
            ) as result:
                success, run_id = result.success, result.run_id
            rows = _step_rows(instance, run_id)
    say()
    say(f"=== demo-k8s run {run_id[:8]} — partition {partition}: {'SUCCESS' if success else 'FAILED'} ===")
    say(render_table(rows))
    say(f"\ntook {time.monotonic() - started:.0f} s ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
