"""Data-to-model latency: downlink files landed → signed uplink package, Dagster beside a plain script.

Usage:  .venv/bin/python benchmarks/data_to_model.py [--rounds 2] [--share 1.0] [--json out.json]
        .venv/bin/python benchmarks/data_to_model.py --sections incremental --share 0.25
        .venv/bin/python benchmarks/data_to_model.py --sections iteration

Sections (``--sections``, default ``latency,limits``):

latency      One simulated day at the benchmark scale (500 satellites × 21,000 observations ≈ 1.05 GB of
             CCSDS downlink; ``--share`` scales the observations), cached under .state/bench/d2m/. Each
             round, on a fresh lake with the same landing zone (hard links), alternating:
               dagster — ``astromined run --partition DAY`` in a child process: the local default
                         (in-process executor, SQLite instance), every asset and check of the main job;
                         the instance's databases are created beforehand (``astromined home``, untimed),
                         as an operating deployment's exist;
               plain   — benchmarks/plain_pipeline.py in a child process: the same domain functions in
                         the same order on the same layout, no orchestrator.
             Timed from spawning the child to its exit (interpreter start and imports included), split
             into stages by Dagster's step stats (wall clock) and the plain script's own stage clock.
             Peak RSS per stage from /proc sampled every 20 ms by this process (the child and its
             descendants). Both sides train with the same seed on CPU and must register the very same
             model version (same weight hash), which shows they did the same work.
limits       Per stage, its irreducible part on the same data, same run: reading the downlink bytes
             (ingest), reading the raw observation table (features), one pass of the training rows
             through the model, forward + backward + step (training), one forward pass over the holdout
             (evaluation).
incremental  Day N+1 when N days exist (N = 1, 7, 30 by default: ``--days-existing``): the earlier days
             are ingested with the ingest job, then the main job runs for the next day. Flat apart from the
             bounded training window (7 days).
iteration    The model-iteration loop: after a change to the model code only, ``astromined run --stale``
             materializes what the change makes stale (Dagster code versions: candidate_model and
             downstream; features and the training set reused), against a full recompute of the window.

Results print as Markdown tables (for BENCHMARKS.md) and optionally as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plain_pipeline import STAGES as PIPELINE_STAGES  # noqa: E402  (benchmarks/ is on sys.path)

BENCH_ROOT = REPO / ".state" / "bench" / "d2m"
PYTHON = sys.executable
DAY = dt.date(2026, 6, 14)
# --share → ASTROMINED_SCALE (astromined/environment.py): the benchmark day (21,000 observations per
# satellite, 1.05 GB) and a quarter of it (0.26 GB), for the sections that need many days.
SHARE_SCALES = {1.0: "benchmark", 0.25: "benchmark-quarter"}

# Dagster step → stage (the plain script names its stages the same way).
STEP_STAGE = {
    "raw_telemetry": "ingest",
    "asteroid_features": "features",
    "training_set": "training_set",
    "candidate_model": "train",
    "model_evaluation": "evaluate",
    "champion_model": "promote",
    "sector_rankings": "rank",
    "uplink_package": "package",
}
# The plain script's stages, with what only a whole process has around them.
STAGES = ("start-up", *PIPELINE_STAGES, "orchestration", "shut-down")


def stage_of(step_key: str) -> str:
    if step_key.startswith("readiness_") or step_key == "infrastructure_readiness":
        return "readiness"
    return STEP_STAGE[step_key]


# -- the data -------------------------------------------------------------------------------------


def _env(state: Path, share: float, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTROMINED_", "DAGSTER_"))}
    env.update(
        ASTROMINED_STATE_DIR=str(state),
        ASTROMINED_SCALE=SHARE_SCALES[share],
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def simulator_version() -> str:
    """A hash of the simulator's code (what `astromined simulate` reaches): cached days of another version
    are not reused, so a change to the population or the instrument cannot be benchmarked on old data."""
    from astromined.source_version import source_version
    from resources.simulated_landing_zone import SimulatedLandingZoneResource

    return source_version(
        SimulatedLandingZoneResource.prepare_day,
        follow_packages=("astromined",),
        local_packages=("resources",),
    )


def landing_zone(share: float, days: list[dt.date]) -> Path:
    """A state dir whose landing zone holds ``days`` (simulated once per simulator version, cached)."""
    source = BENCH_ROOT / f"share-{share:g}-sim-{simulator_version()}"
    marker = source / "landing_zone"
    missing = [d for d in days if not (marker / "downlinks" / d.isoformat()).is_dir()]
    for start in missing:
        print(f"simulating {start} at share {share:g} into {source} ...", file=sys.stderr, flush=True)
        subprocess.run(
            [PYTHON, "-m", "astromined.cli", "simulate", "--start", str(start), "--end", str(start)],
            env=_env(source, share),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the progress bar
        )
    return source


def fresh_state(source: Path, name: str) -> Path:
    """A new state dir: empty lake and instance, the cached landing zone hard-linked (no copy)."""
    state = BENCH_ROOT / "rounds" / name
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(source / "landing_zone"), str(state / "landing_zone")], check=True)
    return state


# -- measuring a child process --------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return found


def _rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process and of its waited-for children (/proc/PID/stat), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


class Measured:
    """A child process run to its end: wall clock, CPU time (total, and sampled to split by stage) and the
    RSS of the child and its descendants, sampled every 20 ms."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        """``cwd``: where the child starts; ``python -m`` puts it first on sys.path, ahead of PYTHONPATH,
        so a child meant to run other code (``--before``, a snapshot) must start in that code's root."""
        self.samples: list[tuple[float, int, float]] = []
        self.log = log
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.started = time.time()
        with open(log, "wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
            sampler = threading.Thread(target=self._sample, args=(process,), daemon=True)
            sampler.start()
            self.returncode = process.wait()
        self.ended = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        sampler.join()
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {self.returncode}; see {log}")

    def _sample(self, process: subprocess.Popen) -> None:
        while process.poll() is None:
            cpu = _cpu_seconds(process.pid)
            if cpu is not None:
                self.samples.append((time.time(), _rss_bytes(_descendants(process.pid)), cpu))
            time.sleep(0.02)

    def peak_mb(self, start: float, end: float) -> float:
        inside = [rss for t, rss, _ in self.samples if start <= t <= end]
        return max(inside, default=0) / 2**20

    def cpu_at(self, moment: float) -> float:
        """CPU seconds used by ``moment`` (the last sample before it; the total after the exit)."""
        if moment >= self.ended:
            return self.cpu_s
        before = [cpu for t, _, cpu in self.samples if t <= moment]
        return before[-1] if before else 0.0


def _stage_table(spans: dict[str, list[tuple[float, float]]], measured: Measured) -> dict[str, dict]:
    """Per stage: wall seconds (sum of its spans), CPU seconds and peak RSS; plus start-up, orchestration
    and shut-down. CPU time does not count time the machine gave to other processes."""
    first = min(s for spans_ in spans.values() for s, _ in spans_)
    last = max(e for spans_ in spans.values() for _, e in spans_)

    def cpu(start: float, end: float) -> float:
        return measured.cpu_at(end) - measured.cpu_at(start)

    table = {
        name: {
            "seconds": sum(e - s for s, e in stage_spans),
            "cpu_s": sum(cpu(s, e) for s, e in stage_spans),
            "peak_rss_mb": max(measured.peak_mb(s, e) for s, e in stage_spans),
        }
        for name, stage_spans in spans.items()
    }
    busy = sum(row["seconds"] for row in table.values())
    busy_cpu = sum(row["cpu_s"] for row in table.values())
    table["start-up"] = {
        "seconds": first - measured.started,
        "cpu_s": cpu(measured.started, first),
        "peak_rss_mb": measured.peak_mb(0, first),
    }
    table["orchestration"] = {
        "seconds": (last - first) - busy,
        "cpu_s": cpu(first, last) - busy_cpu,
        "peak_rss_mb": float("nan"),
    }
    table["shut-down"] = {
        "seconds": measured.ended - last,
        "cpu_s": cpu(last, measured.ended),
        "peak_rss_mb": measured.peak_mb(last, 1e12),
    }
    return table


def checkout(ref: str) -> Path:
    """The repository's code at git ``ref`` (an earlier commit, for before/after numbers in one run)."""
    destination = BENCH_ROOT / "code" / ref.replace("/", "_")
    if not destination.is_dir():
        destination.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    return destination


def initialise_instance(state: Path, share: float, code: Path = REPO) -> None:
    """Create the state dir's Dagster instance (its SQLite databases), untimed: an operating deployment has
    its instance already, and creating one (~0.2-0.8 s here) is set-up, not the latency of a downlink."""
    env = _env(state, share)
    if code != REPO:
        env["PYTHONPATH"] = str(code)
    subprocess.run(
        [PYTHON, "-m", "astromined.cli", "home"], env=env, cwd=code, check=True, stdout=subprocess.DEVNULL
    )


def run_dagster(
    state: Path, share: float, day: dt.date, code: Path = REPO, options: tuple[str, ...] = ()
) -> dict:
    """``astromined run --partition DAY [options]`` from ``code``, measured."""
    env = _env(state, share)
    if code != REPO:
        env["PYTHONPATH"] = str(code)  # ahead of the editable install of this checkout
    measured = Measured(
        [PYTHON, "-m", "astromined.cli", "run", "--partition", day.isoformat(), *options],
        env,
        state / "dagster.log",
        cwd=code,
    )
    stats = dagster_step_spans(state)
    spans: dict[str, list[tuple[float, float]]] = {}
    for step_key, start, end in stats["steps"]:
        spans.setdefault(stage_of(step_key), []).append((start, end))
    return {
        "total_s": measured.ended - measured.started,
        "cpu_s": measured.cpu_s,
        "stages": _stage_table(spans, measured),
        "peak_rss_mb": measured.peak_mb(0, 1e12),
        "candidate": candidate_version(state),
    }


def dagster_step_spans(state: Path) -> dict:
    """Step start/end of the state dir's latest run (read in a child: DAGSTER_HOME is per state dir)."""
    code = (
        "import json, dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    run = instance.get_runs(limit=1)[0]\n"
        "    stats = instance.get_run_step_stats(run.run_id)\n"
        "    steps = [(s.step_key, s.start_time, s.end_time) for s in stats]\n"
        "    print(json.dumps({'run_id': run.run_id, 'status': run.status.value, 'steps': steps}))\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", code],
        env={**os.environ, "DAGSTER_HOME": str(state / "dagster_home")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_plain(state: Path, share: float, day: dt.date) -> dict:
    timings = state / "plain_timings.json"
    measured = Measured(
        [
            PYTHON,
            str(REPO / "benchmarks" / "plain_pipeline.py"),
            "--state",
            str(state),
            "--day",
            str(day),
            "--timings",
            str(timings),
        ],
        _env(state, share),
        state / "plain.log",
    )
    recorded = json.loads(timings.read_text())
    if recorded["orchestrator"]:
        raise RuntimeError(f"the plain script loaded orchestrator modules: {recorded['orchestrator'][:5]}")
    spans = {name: [(t["start"], t["end"])] for name, t in recorded["stages"].items()}
    return {
        "total_s": measured.ended - measured.started,
        "cpu_s": measured.cpu_s,
        "stages": _stage_table(spans, measured),
        "peak_rss_mb": measured.peak_mb(0, 1e12),
        "candidate": recorded["outcome"]["candidate"],
        "outcome": recorded["outcome"],
    }


def candidate_version(state: Path) -> str:
    return json.loads((state / "lake" / "models" / "candidate.json").read_text())["version"]


# -- sections -------------------------------------------------------------------------------------


def section_latency(args: argparse.Namespace) -> dict:
    source = landing_zone(args.share, [DAY])
    before = checkout(args.before) if args.before else None
    rounds = []
    for index in range(args.rounds):
        order = ["dagster", "plain"] if index % 2 == 0 else ["plain", "dagster"]
        if before is not None:
            order.append("before")
        result = {}
        for side in order:
            state = fresh_state(source, f"latency-{side}")
            load = os.getloadavg()[0]
            if side == "plain":
                result[side] = run_plain(state, args.share, DAY)
            else:
                code = before if side == "before" else REPO
                initialise_instance(state, args.share, code)
                result[side] = run_dagster(state, args.share, DAY, code=code)
            result[side]["load_before"] = load
            print(f"round {index + 1} {side}: {result[side]['total_s']:.1f} s", file=sys.stderr, flush=True)
        if result["dagster"]["candidate"] != result["plain"]["candidate"]:
            raise RuntimeError(
                f"the two sides trained different models ({result['dagster']['candidate']} vs "
                f"{result['plain']['candidate']}): they did not do the same work"
            )
        rounds.append(result)
    return {"share": args.share, "day": DAY.isoformat(), "rounds": rounds, "before": args.before}


def section_limits(args: argparse.Namespace) -> dict:
    """Irreducible parts, on the lake the last plain round left (its raw table and training set)."""
    source = landing_zone(args.share, [DAY])
    state = BENCH_ROOT / "rounds" / "latency-plain"
    if not (state / "lake" / "training").is_dir():
        state = fresh_state(source, "latency-plain")
        run_plain(state, args.share, DAY)
    out = subprocess.run(
        [PYTHON, str(REPO / "benchmarks" / "irreducible.py"), "--state", str(state), "--day", str(DAY)],
        env=_env(state, args.share),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _materialize(
    state: Path, share: float, *args: str, repo: Path = REPO, log_name: str = "materialize"
) -> list:
    """Run benchmarks/materialize.py (from ``repo``: a copy with a code change, or this one)."""
    log = state / f"{log_name}.log"
    env = _env(state, share)
    if repo != REPO:
        env["PYTHONPATH"] = str(repo)  # ahead of the editable install of this checkout
    measured = Measured([PYTHON, str(repo / "benchmarks" / "materialize.py"), *args], env, log)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    for line in lines:
        line["process_s"] = measured.ended - measured.started
    return lines


def _days(count: int, first: dt.date = DAY) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


def section_incremental(args: argparse.Namespace) -> dict:
    """Day N+1's main run when N days already exist (earlier days ingested by the ingest job)."""
    existing = sorted(int(n) for n in args.days_existing.split(","))
    days = _days(existing[-1] + 1)
    source = landing_zone(args.share, days)
    state = fresh_state(source, "incremental")
    points, done = [], 0
    for n in existing:
        backlog = [d.isoformat() for d in days[done:n]]
        if backlog:
            print(f"incremental: ingesting {len(backlog)} day(s) before N={n}", file=sys.stderr, flush=True)
            _materialize(
                state,
                args.share,
                "run",
                "--select",
                "raw_telemetry,asteroid_features",
                "--partitions",
                ",".join(backlog),
                log_name=f"ingest-{n}",
            )
        result = run_dagster(state, args.share, days[n])
        done = n + 1
        points.append({"existing_days": n, "day": days[n].isoformat(), **result})
        print(f"incremental: N={n}: {result['total_s']:.1f} s", file=sys.stderr, flush=True)
    return {"share": args.share, "points": points}


def _code_snapshot(destination: Path, model_change: bool = False) -> Path:
    """A copy of this checkout's code (the runs use it, so edits made meanwhile do not leak in); with
    ``model_change``, one edit to the model code (a line appended to astromined/ml/model.py)."""
    shutil.rmtree(destination, ignore_errors=True)
    ignore = shutil.ignore_patterns(".state", ".venv", ".git", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, destination, ignore=ignore)
    if model_change:
        model = destination / "astromined" / "ml" / "model.py"
        model.write_text(model.read_text() + "\n# benchmark: an edit to the model code\n")
    return destination


def section_iteration(args: argparse.Namespace) -> dict:
    """After a model code change: what Dagster says is stale, materialized, vs recomputing the window."""
    window = args.window
    days = _days(window)
    partitions = ",".join(d.isoformat() for d in days)
    source = landing_zone(args.share, days)
    state = fresh_state(source, "iteration")
    everything = ",".join(
        [
            "raw_telemetry",
            "asteroid_features",
            "infrastructure_readiness",
            "readiness_cluster_eks",
            "readiness_cluster_eks_a",
            "readiness_instance_storage",
            "readiness_monitoring",
            "readiness_object_stores",
            "training_set",
            "candidate_model",
            "model_evaluation",
            "champion_model",
            "sector_rankings",
            "uplink_package",
        ]
    )
    code = _code_snapshot(BENCH_ROOT / "code" / "iteration-before")
    changed = _code_snapshot(BENCH_ROOT / "code" / "iteration-after", model_change=True)
    print(f"iteration: materializing {window} day(s) and the models once", file=sys.stderr, flush=True)
    setup = ("run", "--select", everything, "--partitions", partitions)
    _materialize(state, args.share, *setup, repo=code, log_name="setup")
    last = days[-1].isoformat()
    fresh = _materialize(state, args.share, "stale", "--partition", last, repo=code, log_name="stale-0")
    print("iteration: full recompute of the window", file=sys.stderr, flush=True)
    full = _materialize(
        state,
        args.share,
        "run",
        "--select",
        everything,
        "--partitions",
        partitions,
        repo=code,
        log_name="full",
    )
    # What Dagster reports stale after the edit (listed for the report; the loop asks again itself).
    stale = _materialize(state, args.share, "stale", "--partition", last, repo=changed, log_name="stale-1")[0]
    print(f"iteration: stale after the model change: {stale['stale']}", file=sys.stderr, flush=True)
    # The loop: one `astromined run --stale` with the edited code — staleness query and run in one process.
    loop = run_dagster(state, args.share, days[-1], code=changed, options=("--stale",))
    loop_s = loop["total_s"]
    full_s = full[0]["process_s"]  # one process ran every partition of the window
    return {
        "share": args.share,
        "window_days": window,
        "stale_before_change": fresh[0]["stale"],
        "stale_after_change": stale["stale"],
        "full_runs": full,
        "full_s": full_s,
        "loop": loop,
        "loop_s": loop_s,
        "stale_query_process_s": stale["process_s"],
    }


# -- report ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _stage_values(rounds: list[dict], side: str, stage: str, key: str) -> list[float]:
    if stage == "total":
        return [r[side]["total_s" if key == "seconds" else key] for r in rounds]
    return [
        r[side]["stages"].get(stage, {}).get(key, 0.0 if key != "peak_rss_mb" else float("nan"))
        for r in rounds
    ]


def report_latency(result: dict, limits: dict | None) -> str:
    rounds = result["rounds"]
    limits = limits or {}
    lines = [
        f"Day {result['day']} at share {result['share']:g} of the benchmark scale; {len(rounds)} round(s), "
        "sides alternating; median over rounds (best in brackets). CPU = user + system time of the child.",
        "",
        "| stage | dagster wall | dagster CPU | plain wall | plain CPU | peak RSS dagster / plain "
        "| irreducible (same run) | plain wall / irreducible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage in [*STAGES, "total"]:
        dag, pla = (
            _stage_values(rounds, "dagster", stage, "seconds"),
            _stage_values(rounds, "plain", stage, "seconds"),
        )
        dag_cpu = _stage_values(rounds, "dagster", stage, "cpu_s")
        pla_cpu = _stage_values(rounds, "plain", stage, "cpu_s")
        dag_mb = _median(_stage_values(rounds, "dagster", stage, "peak_rss_mb"))
        pla_mb = _median(_stage_values(rounds, "plain", stage, "peak_rss_mb"))
        floor = limits.get(stage)
        floor_text = f"{floor['seconds']:.2f} s ({floor['what']})" if floor else ""
        ratio = f"{_median(pla) / floor['seconds']:.1f}×" if floor and floor["seconds"] > 0 else ""
        name = "**total (spawn → exit)**" if stage == "total" else stage
        lines.append(
            f"| {name} | {_median(dag):.2f} s ({min(dag):.2f}) | {_median(dag_cpu):.2f} s "
            f"| {_median(pla):.2f} s ({min(pla):.2f}) | {_median(pla_cpu):.2f} s "
            f"| {_mb(dag_mb)} / {_mb(pla_mb)} | {floor_text} "
            f"| {ratio} |"
        )
    wall = [r["dagster"]["total_s"] / r["plain"]["total_s"] for r in rounds]
    cpu = [r["dagster"]["cpu_s"] / r["plain"]["cpu_s"] for r in rounds]
    lines += [
        "",
        f"**Ratio dagster / plain, paired per round: wall clock median {_median(wall):.3f}** "
        f"(rounds: {', '.join(f'{x:.3f}' for x in wall)}); **CPU time median {_median(cpu):.3f}** "
        f"(rounds: {', '.join(f'{x:.3f}' for x in cpu)}). Same model version on both sides in every round: "
        f"{rounds[0]['dagster']['candidate']}.",
    ]
    if all("before" in r for r in rounds):
        lines += [
            "",
            f"Before/after, both through Dagster in the same rounds: before = git {result['before']}, "
            "after = this checkout.",
            "",
            "| stage | before wall | after wall | before CPU | after CPU | after / before (CPU) |",
            "|---|---|---|---|---|---|",
        ]
        for stage in [*STAGES, "total"]:
            bw, aw = (
                _median(_stage_values(rounds, "before", stage, "seconds")),
                _median(_stage_values(rounds, "dagster", stage, "seconds")),
            )
            bc, ac = (
                _median(_stage_values(rounds, "before", stage, "cpu_s")),
                _median(_stage_values(rounds, "dagster", stage, "cpu_s")),
            )
            lines.append(
                f"| {stage} | {bw:.2f} s | {aw:.2f} s | {bc:.2f} s | {ac:.2f} s | "
                f"{ac / bc if bc else float('nan'):.2f} |"
            )
    return "\n".join(lines)


def _mb(value: float) -> str:
    return "" if value != value else f"{value:,.0f} MB"


def report_incremental(result: dict) -> str:
    points = result["points"]
    shown = ("ingest", "features", "training_set", "train", "evaluate", "rank", "package")
    lines = [
        f"Share {result['share']:g} of the benchmark day; the main job for day N+1 (`astromined run`).",
        "",
        f"| days existing (N) | total | {' | '.join(shown)} | peak RSS |",
        f"|---|---|{'---|' * len(shown)}---|",
    ]
    for point in points:
        cells = " | ".join(f"{point['stages'].get(stage, {}).get('seconds', 0.0):.1f} s" for stage in shown)
        lines.append(
            f"| {point['existing_days']} | **{point['total_s']:.1f} s** | {cells} "
            f"| {_mb(point['peak_rss_mb'])} |"
        )
    return "\n".join(lines)


def plot_incremental(result: dict, path: Path) -> None:
    """The curve: day N+1's time per stage (stacked) against the N days that already exist."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    existing = [p["existing_days"] for p in points]
    stages = ("start-up", "readiness", "ingest", "features", "training_set", "train", "evaluate", "rank")
    figure, axis = plt.subplots(figsize=(7, 4))
    bottom = [0.0] * len(points)
    for stage in stages:
        values = [p["stages"].get(stage, {}).get("seconds", 0.0) for p in points]
        axis.bar([str(n) for n in existing], values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    totals = [p["total_s"] for p in points]
    axis.plot([str(n) for n in existing], totals, "k.-", label="total (spawn → exit)")
    axis.set_xlabel("days already in the lake (N)")
    axis.set_ylabel("seconds for day N+1")
    axis.set_title(f"Day N+1 through `astromined run` ({result['share']:g} of the 1 GB benchmark day)")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report_iteration(result: dict) -> str:
    stale = [item["asset"] for item in result["stale_after_change"]]
    before = [item["asset"] for item in result["stale_before_change"]]
    stages = result["loop"]["stages"]
    ratio = result["loop_s"] / result["full_s"]
    return "\n".join(
        [
            f"Window of {result['window_days']} day(s) at share {result['share']:g} of the benchmark day.",
            "",
            f"- stale before the change: {', '.join(before) or 'none'}",
            f"- stale after a change to astromined/ml/model.py: {', '.join(stale)}",
            f"- root causes: {sorted({c for item in result['stale_after_change'] for c in item['causes']})}",
            f"- full recompute of the window ({len(result['full_runs'])} runs, one process): "
            f"**{result['full_s']:.1f} s**",
            f"- model-iteration loop (`astromined run --stale`, one process): **{result['loop_s']:.1f} s** = "
            + ", ".join(f"{name} {value['seconds']:.1f} s" for name, value in stages.items()),
            f"- **loop / full recompute = {ratio:.3f}**",
        ]
    )


def machine() -> str:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    return (
        f"{platform.node()}, {model}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at the end"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default="latency,limits")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--share", type=float, default=1.0, choices=sorted(SHARE_SCALES), help="share of the benchmark day"
    )
    parser.add_argument("--days-existing", default="1,7,30")
    parser.add_argument("--before", help="latency: also run the Dagster side of this git ref (before/after)")
    parser.add_argument("--window", type=int, default=7, help="iteration: the training window in days")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    results: dict = {}
    if "latency" in sections:
        results["latency"] = section_latency(args)
    if "limits" in sections:
        results["limits"] = section_limits(args)
    if "incremental" in sections:
        results["incremental"] = section_incremental(args)
    if "iteration" in sections:
        results["iteration"] = section_iteration(args)
    results["machine"] = machine()
    print(f"machine: {results['machine']}")
    if "latency" in results:
        print(report_latency(results["latency"], results.get("limits")))
    if "incremental" in results:
        print(report_incremental(results["incremental"]))
    if "iteration" in results:
        print(report_iteration(results["iteration"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        if "incremental" in results:
            plot_incremental(results["incremental"], args.json.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
