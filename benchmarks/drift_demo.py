"""The drift sensor's verdicts on the simulator's ``demo`` drift preset: the table of docs/automation.md.

Usage:  nice -n 10 .venv/bin/python benchmarks/drift_demo.py [--scales tiny,default]

For each scale (ASTROMINED_SCALE), in throw-away state directories (tempfile), with ASTROMINED_SEED=42:

1. ASTROMINED_DRIFT=demo: materialize ``raw_telemetry`` + ``asteroid_features`` for the reference window
   2025-03-01..05 (clean in the demo preset), then train the champion once on those 5 days the way
   ``retrain_champion`` does (``infrastructure_readiness`` → ``training_set`` (window_days 5) →
   ``candidate_model`` (default CandidateConfig) → ``model_evaluation`` → ``champion_model``, the
   promotion gate deciding). Then materialize the demo's drifted days 03-06, 03-07, 03-08, 03-12, 03-15,
   03-18, 03-20, 03-22.
2. ASTROMINED_DRIFT=none (a second state directory: the same fleet without drift): materialize the clean
   comparison days 03-12, 03-15, 03-18, 03-20, 03-22.
3. Score every day (the reference window too) with ``astromined.automation.drift_inputs.score_partition``
   against that one champion, with the drift sensor's default thresholds (``DriftThresholds()``).

Printed: the machine, one row per (day, preset) as markdown, then the same rows merged the way the doc's
table shows them (consecutive-scenario days with the same label and no detection in one row), the features
over threshold with their PSI on the days that have any, the fleet-wide PSI / KS extremes of the clean and
locally drifted days, and the mean log-albedo shift (and KS p) in the sectors of the demo's gain-drifting
satellites on every day after the window, with demo minus none on the same day: the gain drift's own effect
(what docs/automation.md says the sensor deliberately does not retrain on).

Repeated runs on one machine give the same champion versions and the same numbers (one torch thread).
About 1.5-3 minutes for both scales on 2 shared CPU cores.

If the candidate does not pass the promotion gate (there is no champion before it, so the gate compares
with the logistic-regression baseline), the script says so and promotes it by hand, as an operator would,
so the drift scores can still be measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

import assets.features  # noqa: E402
import assets.models  # noqa: E402
import assets.readiness  # noqa: E402
import assets.telemetry  # noqa: E402
from astromined import fleet, lake_layout  # noqa: E402
from astromined.automation.drift_inputs import (  # noqa: E402
    ChampionReference,
    finite_rows,
    load_champion_reference,
    score_partition,
)
from astromined.environment import load_settings  # noqa: E402
from astromined.features.drift import DriftReport, DriftThresholds  # noqa: E402
from astromined.features.engineering import MODEL_FEATURES, model_inputs  # noqa: E402
from astromined.ml.registry import ModelRegistry  # noqa: E402
from astromined.sim.scenarios import (  # noqa: E402
    PRESETS,
    CalibrationStep,
    CompositionShift,
    CorruptionBurst,
    GainDrift,
)
from astromined.storage import read_parquet  # noqa: E402
from resources import build_resources  # noqa: E402

SEED = 42
REFERENCE_DAYS = tuple(f"2025-03-0{d}" for d in range(1, 6))
DEMO_DAYS = ("2025-03-06", "2025-03-07", "2025-03-08", "2025-03-12", "2025-03-15", "2025-03-18",
             "2025-03-20", "2025-03-22")  # fmt: skip
LOG_ALBEDO = MODEL_FEATURES.index("log_albedo")
CLEAN_DAYS = ("2025-03-12", "2025-03-15", "2025-03-18", "2025-03-20", "2025-03-22")
INGEST = [assets.telemetry.raw_telemetry, assets.features.asteroid_features]
TRAIN = [
    assets.readiness.infrastructure_readiness,
    assets.features.training_set,
    assets.models.candidate_model,
    assets.models.model_evaluation,
]
# Only the window and the disk check differ from the defaults: the window is the 5 reference days, and the
# readiness step's free-disk floor is about the host, not the model.
TRAIN_CONFIG = {
    "ops": {
        "training_set": {"config": {"window_days": len(REFERENCE_DAYS)}},
        "infrastructure_readiness": {"config": {"min_free_disk_gib": 0.0}},
    }
}


@dataclasses.dataclass
class Scored:
    day: str
    preset: str
    scale: str
    label: str
    report: DriftReport
    gain_sectors: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)


def describe(scenario) -> str:
    if isinstance(scenario, CorruptionBurst):
        return f"corruption burst, sats {_ids(scenario.satellites)}"
    if isinstance(scenario, CompositionShift):
        return (
            f"composition shift, sectors {_ids(scenario.sectors)} ({scenario.complex} × {scenario.weight:g})"
        )
    if isinstance(scenario, GainDrift):
        return f"gain drift, sats {'/'.join(map(str, scenario.satellites))} (gain {{gain:.2f}})"
    if isinstance(scenario, CalibrationStep):
        where = "fleet-wide" if scenario.satellites is None else f"sats {_ids(scenario.satellites)}"
        factor = f"IR × {scenario.ir_factor:g}" if scenario.ir_factor is not None else "per-band factors"
        return f"calibration step, {factor} {where}"
    return type(scenario).__name__


def _ids(ids) -> str:
    ids = sorted(ids)
    if len(ids) > 2 and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}–{ids[-1]}"
    return ", ".join(map(str, ids))


def scenario_label(preset: str, day: str) -> str:
    date = dt.date.fromisoformat(day)
    active = [s for s in PRESETS[preset].items if s.in_range(date)]
    if not active:
        if day in REFERENCE_DAYS:
            return "clean (reference window)"
        return "clean" if preset == "demo" else f"clean (`{preset}` preset)"
    parts = []
    for scenario in sorted(active, key=lambda s: isinstance(s, GainDrift)):
        text = describe(scenario)
        if isinstance(scenario, GainDrift):
            text = text.format(gain=scenario.gain_on(date))
            if len(active) > 1:
                text = f"gain drift {scenario.gain_on(date):.2f} on {len(scenario.satellites)} sats"
        parts.append(text)
    return " + ".join(parts)


def gain_drift_sectors() -> list[int]:
    """The sectors the demo's gain-drifting satellites survey (each satellite surveys one sector)."""
    satellites = [sat for s in PRESETS["demo"].items if isinstance(s, GainDrift) for sat in s.satellites]
    return sorted({int(fleet.sector_of_satellite(sat)) for sat in satellites})


def run(selection, resources, instance, partition=None, run_config=None) -> dg.ExecuteInJobResult:
    return dg.materialize(
        selection,
        partition_key=partition,
        resources=resources,
        instance=instance,
        run_config=run_config,
        raise_on_error=False,
    )


def ingest(resources, instance, days) -> None:
    for day in days:
        result = run(INGEST, resources, instance, partition=day)
        if not result.success:
            raise SystemExit(f"materializing raw_telemetry + asteroid_features for {day} failed")


def train_champion(resources, instance) -> str:
    trained = run(TRAIN, resources, instance, run_config=TRAIN_CONFIG)
    if not trained.success:
        raise SystemExit("training the champion on the reference window failed")
    meta = trained.asset_materializations_for_node("candidate_model")[0].metadata
    version = meta["version"].value
    evaluation = trained.asset_materializations_for_node("model_evaluation")[0].metadata
    print(
        f"  candidate {version}: {meta['epochs_run'].value} epochs, holdout macro-F1 "
        f"{evaluation['macro_f1'].value:.4f} vs baseline {evaluation['baseline_macro_f1'].value:.4f}"
    )
    gate = run([assets.models.champion_model], resources, instance)
    if not gate.success:
        print(f"  the promotion gate kept {version} out; promoting it by hand to measure drift against it")
        ModelRegistry(resources["lake"].store()).promote(version, reason="drift_demo: approved by hand")
    else:
        decision = gate.asset_materializations_for_node("champion_model")[0].metadata["decision"].value
        print(f"  champion_model: {decision}")
    return version


def reference_rows(store, days) -> pd.DataFrame:
    """The reference window's daily feature rows with finite model inputs, stacked."""
    return pd.concat([finite_rows(read_parquet(store, lake_layout.asteroid_features(d))) for d in days])


def log_albedo_shift(reference: pd.DataFrame, store, day, sectors) -> list[tuple[int, float, float]]:
    """Per sector: mean log-albedo on the day minus the reference window's, and the KS p-value."""
    today = finite_rows(read_parquet(store, lake_layout.asteroid_features(day)))
    out = []
    for sector in sectors:
        a = model_inputs(reference.loc[reference["sector"] == sector])[:, LOG_ALBEDO]
        b = model_inputs(today.loc[today["sector"] == sector])[:, LOG_ALBEDO]
        out.append((sector, float(b.mean() - a.mean()), float(stats.ks_2samp(a, b).pvalue)))
    return out


def score(store, champion: ChampionReference, preset: str, scale: str, days, thresholds) -> list[Scored]:
    return [
        Scored(
            day, preset, scale, scenario_label(preset, day), score_partition(store, day, champion, thresholds)
        )
        for day in days
    ]


def measure(scale: str, tmp: Path, thresholds: DriftThresholds) -> list[Scored]:
    stores = {}
    results: list[Scored] = []
    champion = None
    for preset, days in (("demo", (*REFERENCE_DAYS, *DEMO_DAYS)), ("none", CLEAN_DAYS)):
        state = tmp / f"{scale}-{preset}"
        settings = load_settings(
            {
                "ASTROMINED_STATE_DIR": str(state),
                "ASTROMINED_SCALE": scale,
                "ASTROMINED_SEED": str(SEED),
                "ASTROMINED_DRIFT": preset,
            }
        )
        resources = build_resources(settings)
        store = stores[preset] = resources["lake"].store()
        with dg.instance_for_test() as instance:
            started = time.perf_counter()
            if preset == "demo":
                ingest(resources, instance, REFERENCE_DAYS)
                print(f"  {scale}/demo: reference window ingested in {time.perf_counter() - started:.1f} s")
                started = time.perf_counter()
                train_champion(resources, instance)
                champion = load_champion_reference(store)
                print(f"  champion {champion.version} ready in {time.perf_counter() - started:.1f} s")
                started = time.perf_counter()
                ingest(resources, instance, DEMO_DAYS)
            else:
                ingest(resources, instance, days)
            print(f"  {scale}/{preset}: {len(days)} day(s) ready in {time.perf_counter() - started:.1f} s")
        results += score(store, champion, preset, scale, days, thresholds)
    reference = reference_rows(stores["demo"], REFERENCE_DAYS)
    sectors = gain_drift_sectors()
    for scored in results:
        # Those sectors on every day after the window, the clean ones too: the noise to compare with.
        if scored.day not in REFERENCE_DAYS:
            scored.gain_sectors = log_albedo_shift(reference, stores[scored.preset], scored.day, sectors)
    return results


# --- formatting -------------------------------------------------------------------------------------------


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    if p >= 0.995:
        return "1.0"
    if p >= 1e-3:
        return f"{p:.2g}"
    return f"{p:.1e}".replace("e-0", "e-")


def p_floor(p: float) -> str:
    return "1.0" if p >= 0.995 else f"≥ {fmt_p(p)}"


def worst_sector(report: DriftReport):
    shifts = [s for s in report.sector_shifts if math.isfinite(s.class_mix_shift)]
    return max(shifts, key=lambda s: s.class_mix_shift) if shifts else None


def detected(report: DriftReport) -> str:
    if not report.detected:
        # Say how close the strongest sector came: a TVD over threshold held back by the p-value.
        over = [
            s for s in report.sector_shifts if s.class_mix_shift > report.thresholds.sector_class_mix_shift
        ]
        return f"no (sector {over[0].sector}: p > {report.thresholds.sector_pvalue:g})" if over else "no"
    what = []
    if report.features_over_threshold:
        what.append(f"{len(report.features_over_threshold)} features")
    if report.class_mix_shift > report.thresholds.class_mix_shift:
        what.append("fleet class mix")
    if report.sectors_over_threshold:
        sectors = report.sectors_over_threshold
        what.append(f"sector{'s' if len(sectors) > 1 else ''} {', '.join(map(str, sectors))}")
    return f"**yes** ({'; '.join(what)})"


def day_label(days: list[str]) -> str:
    """Days as the doc writes them: runs of 3 or more consecutive days as ``03-01..05``."""
    runs: list[list[str]] = []
    for day in sorted(days):
        if runs and (dt.date.fromisoformat(day) - dt.date.fromisoformat(runs[-1][-1])).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run_days in runs:
        if len(run_days) > 2:
            parts.append(f"{run_days[0][5:]}..{run_days[-1][8:]}")
        else:
            parts += [d[5:] for d in run_days]
    return ", ".join(parts)


def group_rows(scored: list[Scored]) -> list[list[Scored]]:
    """Merge undetected days with the same label (the doc's table): the reference window, the clean days of
    a preset, the corruption burst; every other day keeps its own row."""
    groups: list[list[Scored]] = []
    for item in scored:
        for group in groups:
            head = group[0]
            if (
                not item.report.detected
                and not head.report.detected
                and (head.preset, head.scale, head.label) == (item.preset, item.scale, item.label)
            ):
                group.append(item)
                break
        else:
            groups.append([item])
    # The clean demo days after the window join the window's row ("03-01..05, 03-08").
    merged: list[list[Scored]] = []
    for group in groups:
        head = group[0]
        window = next(
            (g for g in merged if (g[0].scale, g[0].label) == (head.scale, "clean (reference window)")), None
        )
        if head.label == "clean" and window is not None and not any(g.report.detected for g in group):
            window.extend(group)
        else:
            merged.append(group)
    return merged


def row(group: list[Scored]) -> str:
    reports = [g.report for g in group]
    head = group[0]
    if len(group) == 1:
        r = reports[0]
        worst = worst_sector(r)
        worst_text = (
            f"{worst.sector}: {worst.class_mix_shift:.3f} ({fmt_p(worst.pvalue)})" if worst else "n/a"
        )
        cells = [
            day_label([head.day]),
            head.label,
            head.scale,
            f"{r.rows:,}",
            f"{r.max_psi:.3f}",
            str(len(r.features_over_threshold)),
            f"{r.class_mix_shift:.3f}",
            worst_text,
            detected(r),
        ]
    else:
        label = head.label
        if any(g.label != label for g in group):
            label = "clean"
        worsts = [worst_sector(r) for r in reports]
        rows = [r.rows for r in reports]
        if len(group) == 2:
            psi = ", ".join(f"{r.max_psi:.3f}" for r in reports)
            tvd = ", ".join(f"{r.class_mix_shift:.3f}" for r in reports)
            worst_text = ", ".join(f"{w.class_mix_shift:.3f} ({fmt_p(w.pvalue)})" for w in worsts)
            rows_text = ", ".join(f"{n:,}" for n in rows)
        else:
            psi = f"≤ {max(r.max_psi for r in reports):.3f}"
            tvd = f"≤ {max(r.class_mix_shift for r in reports):.3f}"
            worst_text = (
                f"≤ {max(w.class_mix_shift for w in worsts):.3f} ({p_floor(min(w.pvalue for w in worsts))})"
            )
            rows_text = f"{min(rows):,}–{max(rows):,}"
        cells = [
            day_label([g.day for g in group]),
            label,
            head.scale,
            rows_text,
            psi,
            "/".join(sorted({str(len(r.features_over_threshold)) for r in reports})),
            tvd,
            worst_text,
            "/".join(sorted({detected(r) for r in reports})),
        ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| day | scenario | scale | rows | max PSI | features over | fleet TVD | worst sector TVD (corrected p) "
    "| detected |\n|---|---|---|---|---|---|---|---|---|"
)


def details(scored: list[Scored]) -> None:
    print(
        "\nPer-feature detail (features over threshold marked *, then every other feature with PSI ≥ 0.02):"
    )
    for item in scored:
        r = item.report
        tag = f"  {item.scale} {item.preset} {item.day}"
        ranked = sorted(r.feature_scores, key=lambda f: -r.feature_scores[f]["psi"])
        shown = [f for f in ranked if f in r.features_over_threshold or r.feature_scores[f]["psi"] >= 0.02]
        if shown:
            text = ", ".join(
                f"{'*' if f in r.features_over_threshold else ''}{f} {r.feature_scores[f]['psi']:.3f} "
                f"(KS p {fmt_p(r.feature_scores[f]['ks_pvalue'])})"
                for f in shown
            )
            print(f"{tag}: {text}")
        rest = [f for f in ranked if f not in shown]
        if rest:
            min_p = min(rest, key=lambda f: r.feature_scores[f]["ks_pvalue"])
            print(
                f"{tag}: the other {len(rest)}: max PSI {r.feature_scores[rest[0]]['psi']:.4f} ({rest[0]}), "
                f"min KS p {fmt_p(r.feature_scores[min_p]['ks_pvalue'])} ({min_p})"
            )
    print(
        f"\nMean log_albedo (model input) in the sectors of the demo's gain-drifting satellites "
        f"{gain_drift_sectors()}, day minus reference window, and KS p (clean days: the noise):"
    )
    for item in scored:
        if item.gain_sectors:
            cells = ", ".join(
                f"{sector}: {shift:+.3f} (p {fmt_p(p)})" for sector, shift, p in item.gain_sectors
            )
            print(f"  {item.scale} {item.preset} {item.day} [{item.label}]: {cells}")
    # The same day of both presets shares the bodies looked at and the noise draws of the unaffected
    # satellites: demo minus none isolates what the drift itself did to those sectors.
    clean = {(i.scale, i.day): i for i in scored if i.preset == "none"}
    print("Demo minus none on the same day (the drift's own effect on those sectors' mean log_albedo):")
    for item in scored:
        other = clean.get((item.scale, item.day))
        if item.preset == "demo" and other is not None and item.gain_sectors:
            cells = ", ".join(
                f"{a[0]}: {a[1] - b[1]:+.4f}"
                for a, b in zip(item.gain_sectors, other.gain_sectors, strict=True)
            )
            print(f"  {item.scale} {item.day} [{item.label}]: {cells}")


def machine() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs "
        f"(load {load}), {platform.system()} {platform.release()}; python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), dagster {dg.__version__}, "
        f"numpy {np.__version__}; commit {commit}; nice {os.nice(0)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="tiny,default", help="comma-separated ASTROMINED_SCALE values")
    args = parser.parse_args()
    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    torch.set_num_threads(1)
    print(machine())
    thresholds = DriftThresholds()
    print(f"seed {SEED}; thresholds {dataclasses.asdict(thresholds)}")
    started = time.perf_counter()
    scored: list[Scored] = []
    with tempfile.TemporaryDirectory(prefix="astromined-drift-demo-") as tmp:
        for scale in scales:
            scale_started = time.perf_counter()
            print(f"scale {scale}:")
            scored += measure(scale, Path(tmp), thresholds)
            print(f"  scale {scale} done in {time.perf_counter() - scale_started:.1f} s")
    print("\nOne row per day:\n" + HEADER)
    for item in scored:
        print(row([item]))
    print("\nAs in docs/automation.md (undetected days with the same scenario merged):\n" + HEADER)
    for group in group_rows(scored):
        print(row(group))
    details(scored)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
