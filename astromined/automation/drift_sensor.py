"""The drift sensor: score each new asteroid_features partition against the champion; retrain on drift.

Each tick reads the asteroid_features materializations recorded after the cursor (an event storage id),
so every new or re-materialized partition is scored exactly once. For each it records an
``AssetObservation`` of asteroid_features for that partition (metadata ``drift/max_psi``,
``drift/features_over_threshold``, ``drift/class_mix_shift``, ``drift/detected`` and the per-feature and
per-sector scores as JSON; docs/contracts.md). When a partition drifted it requests one
``retrain_champion`` run, unless a guard says no:

- run key ``drift:<champion>:<partition>``: the same drift on the same champion never retrains twice;
- cooldown: no drift retraining within ``cooldown_hours`` of the previous one;
- daily cap: no drift retraining once today's (UTC) drift-triggered GPU-hours reach ``daily_gpu_hours_cap``.

Every skip carries its reason (the tick's skip message in the UI, and the sensor log).
"""

import dataclasses
import datetime as dt
import json
import math

import dagster as dg

from astromined.automation import retrain_budget
from astromined.automation.drift_inputs import (
    DriftInputError,
    NoChampionError,
    load_champion_reference,
    score_partition,
)
from astromined.automation.jobs import RETRAIN_JOB_NAME
from astromined.features.drift import DriftReport, DriftThresholds
from resources import LakeResource

FEATURES_ASSET = dg.AssetKey("asteroid_features")
MAX_RECORDS_PER_TICK = 20
SENSOR_NAME = "drift_sensor"


class DriftPolicyResource(dg.ConfigurableResource):
    """Thresholds and retraining guards of the drift sensor (defaults: docs/automation.md)."""

    psi_threshold: float = DriftThresholds.psi
    ks_pvalue_threshold: float = DriftThresholds.ks_pvalue
    class_mix_shift_threshold: float = DriftThresholds.class_mix_shift
    sector_class_mix_shift_threshold: float = DriftThresholds.sector_class_mix_shift
    sector_pvalue_threshold: float = DriftThresholds.sector_pvalue
    min_sector_rows: int = DriftThresholds.min_sector_rows
    min_rows: int = DriftThresholds.min_rows
    # Guards on the retraining the sensor requests.
    retrain_on_drift: bool = True
    cooldown_hours: float = 6.0
    daily_gpu_hours_cap: float = 4.0

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(
            psi=self.psi_threshold,
            ks_pvalue=self.ks_pvalue_threshold,
            class_mix_shift=self.class_mix_shift_threshold,
            sector_class_mix_shift=self.sector_class_mix_shift_threshold,
            sector_pvalue=self.sector_pvalue_threshold,
            min_sector_rows=self.min_sector_rows,
            min_rows=self.min_rows,
        )


def _number(value: float) -> float:
    """Metadata floats must be finite to be charted; NaN (not evaluated) becomes -1."""
    return float(value) if math.isfinite(value) else -1.0


def drift_observation(report: DriftReport, champion: str) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=FEATURES_ASSET,
        partition=report.partition,
        metadata={
            "drift/max_psi": _number(report.max_psi),
            "drift/max_psi_feature": report.max_psi_feature or "",
            "drift/features_over_threshold": len(report.features_over_threshold),
            "drift/class_mix_shift": _number(report.class_mix_shift),
            "drift/sector_class_mix_shift_max": _number(report.max_sector_class_mix_shift),
            "drift/sectors_over_threshold": dg.MetadataValue.json(report.sectors_over_threshold),
            "drift/detected": report.detected,
            "drift/reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in report.reasons)),
            "drift/champion": champion,
            "drift/rows": report.rows,
            "drift/feature_scores": dg.MetadataValue.json(
                {name: {k: _number(v) for k, v in s.items()} for name, s in report.feature_scores.items()}
            ),
            "drift/drifted_features": dg.MetadataValue.json(report.features_over_threshold),
            "drift/sector_shifts": dg.MetadataValue.json(
                [dataclasses.asdict(s) for s in report.sector_shifts]
            ),
        },
    )


def retrain_guard(instance: dg.DagsterInstance, policy: DriftPolicyResource, now: dt.datetime) -> str | None:
    """Why a drift retraining may not start now, or None when it may."""
    if not policy.retrain_on_drift:
        return "retrain_on_drift is off in the drift policy"
    latest = retrain_budget.latest_drift_retrain(instance)
    if latest is not None:
        age_h = (now - latest.create_timestamp).total_seconds() / 3600.0
        if age_h < policy.cooldown_hours:
            return (
                f"cooldown: the last drift retraining (run {latest.dagster_run.run_id[:8]}, "
                f"{latest.dagster_run.status.value}) was requested {age_h:.2f} h ago "
                f"(< {policy.cooldown_hours:g} h)"
            )
    used, costs = retrain_budget.gpu_hours_today(instance, now)
    if used >= policy.daily_gpu_hours_cap:
        return (
            f"daily cap: drift retraining used {used:.2f} GPU-h today (UTC) over {len(costs)} run(s), "
            f"cap {policy.daily_gpu_hours_cap:g} GPU-h"
        )
    return None


def _latest_per_partition(records) -> list:
    latest: dict[str, object] = {}
    for record in records:  # ascending: later records overwrite earlier ones
        latest[record.partition_key] = record
    return list(latest.values())


def evaluate_drift_tick(
    context: dg.SensorEvaluationContext, lake: LakeResource, drift_policy: DriftPolicyResource
) -> dg.SkipReason | dg.SensorResult:
    after = int(context.cursor) if context.cursor else None
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FEATURES_ASSET, after_storage_id=after),
        limit=MAX_RECORDS_PER_TICK,
        ascending=True,
    )
    records = [r for r in result.records if r.partition_key]
    if not result.records:
        return dg.SkipReason(f"no new asteroid_features materializations after storage id {after}")
    cursor = str(max(r.storage_id for r in result.records))
    partitions = sorted({r.partition_key for r in records})
    store = lake.store()
    try:
        champion = load_champion_reference(store)
    except NoChampionError:
        return dg.SensorResult(
            skip_reason=f"no champion model yet: partition(s) {partitions} not scored (nothing to compare "
            "with; the first training run sets the reference)",
            cursor=cursor,
        )

    thresholds = drift_policy.thresholds()
    reports: list[DriftReport] = []
    problems: list[str] = []
    for record in _latest_per_partition(records):
        try:
            report = score_partition(store, record.partition_key, champion, thresholds)
        except DriftInputError as exc:
            problems.append(str(exc))
            context.log.warning(f"drift: partition {record.partition_key} not scored: {exc}")
            continue
        context.log.info(f"drift vs champion {champion.version}: {report.summary()}")
        reports.append(report)
    events = [drift_observation(report, champion.version) for report in reports]
    drifted = [report for report in reports if report.detected]

    scored = ", ".join(r.partition for r in reports) or "none"
    if problems and not reports:
        return dg.SensorResult(skip_reason="no partition scored: " + "; ".join(problems), cursor=cursor)
    if not drifted:
        return dg.SensorResult(
            skip_reason=f"no drift vs champion {champion.version} in partition(s) {scored}",
            asset_events=events,
            cursor=cursor,
        )
    trigger = drifted[-1]  # the latest drifted partition names the request
    blocked = retrain_guard(context.instance, drift_policy, dt.datetime.now(dt.UTC))
    if blocked is not None:
        message = f"drift in {[r.partition for r in drifted]} but not retraining: {blocked}"
        context.log.warning(message)
        return dg.SensorResult(skip_reason=message, asset_events=events, cursor=cursor)
    request = dg.RunRequest(
        run_key=f"drift:{champion.version}:{trigger.partition}",
        job_name=RETRAIN_JOB_NAME,
        tags={
            retrain_budget.TRIGGER_TAG: retrain_budget.DRIFT_TRIGGER,
            "astromined/drift_partition": trigger.partition,
            "astromined/drift_champion": champion.version,
            "astromined/drift_reasons": json.dumps(trigger.reasons)[:1000],
        },
    )
    context.log.info(f"requesting {RETRAIN_JOB_NAME}: {trigger.summary()}")
    return dg.SensorResult(run_requests=[request], asset_events=events, cursor=cursor)


def build_drift_sensor(
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job_name=RETRAIN_JOB_NAME,
        minimum_interval_seconds=120,
        default_status=default_status,
        description="Scores each new asteroid_features partition against the champion's reference "
        "statistics and requests retrain_champion on drift (run key per champion and partition, cooldown, "
        "daily GPU-hour cap).",
    )
    def drift_sensor(
        context: dg.SensorEvaluationContext, lake: LakeResource, drift_policy: DriftPolicyResource
    ):
        return evaluate_drift_tick(context, lake, drift_policy)

    return drift_sensor


drift_sensor = build_drift_sensor()
