"""The short summary `astromined run` prints after the main job."""

from __future__ import annotations

import dagster as dg


def _materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    metadata: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        metadata[materialization.asset_key.to_user_string()] = {
            k: getattr(v, "value", v) for k, v in materialization.metadata.items()
        }
    return metadata


def summarize_run(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, partition: str) -> str:
    m = _materialization_metadata(result)
    lines = [
        "",
        f"=== AstroMined run {result.run_id[:8]} — partition {partition}: "
        f"{'SUCCESS' if result.success else 'FAILED'} ===",
    ]
    if raw := m.get("raw_telemetry"):
        lines.append(
            f"telemetry   {raw['files']} files, {raw['bytes_in'] / 1e6:.1f} MB: "
            f"{raw['packets_in']} packets in, {raw['packets_ok']} ok, "
            f"{raw['packets_quarantined']} quarantined {raw['quarantine_by_reason']}, "
            f"{raw['duplicates']} duplicates, ~{raw['lost_packets_estimate']} lost"
        )
    if features := m.get("asteroid_features"):
        lines.append(
            f"features    {features['dagster/row_count']} asteroids "
            f"from {features['observations']} observations"
        )
    if training := m.get("training_set"):
        lines.append(
            f"training    {training['dagster/row_count']} labelled asteroids "
            f"(train {training['rows_train']} / validation {training['rows_validation']} / "
            f"holdout {training['rows_holdout']}) over {len(training['partitions'])} day(s)"
        )
    if candidate := m.get("candidate_model"):
        # Self-training's rows (one-day windows): the validation rows of its refit, and the unlabelled
        # asteroids the teacher labelled.
        pseudo = candidate.get("pseudo_labelled_rows", 0)
        refit = candidate.get("refit_validation_rows", 0)
        lines.append(
            f"candidate   {candidate['version']} on {candidate['device']}: "
            f"{candidate['train_rows']} train rows ({candidate['train_rows_kind']})"
            f"{f' + {refit} validation' if refit else ''}"
            f"{f' + {pseudo} pseudo-labelled' if pseudo else ''}, "
            f"{candidate['epochs_run']} epochs, "
            f"{candidate['samples_per_second']:.0f} samples/s"
        )
    if evaluation := m.get("model_evaluation"):
        lines.append(
            f"holdout     accuracy {evaluation['accuracy']:.3f}, macro-F1 {evaluation['macro_f1']:.3f}, "
            f"M-type recall {evaluation['m_type_recall']:.3f} "
            f"(baseline: accuracy {evaluation['baseline_accuracy']:.3f}, "
            f"macro-F1 {evaluation['baseline_macro_f1']:.3f})"
        )
        if "baseline_margin" in evaluation:
            lines.append(
                f"            margin over the baseline {evaluation['baseline_margin']:+.4f}, "
                f"95% paired bootstrap interval {evaluation['baseline_margin_low']:+.4f} to "
                f"{evaluation['baseline_margin_high']:+.4f} "
                f"(wins {evaluation['baseline_margin_win_share']:.0%} of resampled holdouts)"
            )
        if "holdout_scored_on" in evaluation:
            lines.append(f"            networks scored on {evaluation['holdout_scored_on']}")
    if champion := m.get("champion_model"):
        lines.append(f"champion    {champion['champion']} ({champion['decision']})")
    if package := m.get("uplink_package"):
        lines.append(f"uplink      {package['size_bytes']} bytes, signed: {package['path']}")
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    if failures:
        steps = ", ".join(e.step_key for e in failures)
        lines.append(f"failed steps: {steps} — see `make dev` → Runs → {result.run_id}")
        for event in failures:
            lines.append(f"  {event.step_key}: {_failure_reason(event)}")
    return "\n".join(lines)


def _failure_reason(event: dg.DagsterEvent) -> str:
    """The first line of a step's error (a dg.Failure's description, or the exception's message)."""
    error = event.step_failure_data.error if event.step_failure_data else None
    if error is None:
        return "(no error recorded)"
    # A dg.Failure raised in the asset is the cause of Dagster's wrapping error.
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    message = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name
    return message.removeprefix("dagster._core.definitions.events.Failure: ")
