"""Drift: what the drift sensor measured on each new feature partition against the champion's reference
statistics, and the retraining it triggered."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from astromined.monitoring.alert_values import DRIFT_CLASS_MIX_SHIFT_THRESHOLD, DRIFT_PSI_THRESHOLD
from astromined.monitoring.dashboards.panels import new_dashboard, query, stat_panel, timeseries_panel

UID = "astromined-drift"
FILENAME = "drift.json"


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "AstroMined / Drift",
            "Feature and prediction drift of the newest asteroid_features partition against the champion's "
            "reference statistics (drift_sensor), and the retraining runs it requested.",
        )
        .with_row(dashboard.Row("Latest evaluated partition"))
        .with_panel(
            stat_panel(
                "Drift detected",
                "1 if the latest evaluated partition drifted (AstrominedDriftDetected).",
                "max(astromined_drift_detected)",
                threshold_steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Largest PSI",
                "Largest population stability index over the features (drift above "
                f"{DRIFT_PSI_THRESHOLD:g}).",
                "max(astromined_drift_max_psi)",
                threshold_steps=((None, "green"), (DRIFT_PSI_THRESHOLD, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Features over threshold",
                "Number of features whose drift crossed the threshold.",
                "max(astromined_drift_features_over_threshold)",
                threshold_steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Class-mix shift",
                "Total-variation distance of the predicted class mix from the reference (drift above "
                f"{DRIFT_CLASS_MIX_SHIFT_THRESHOLD:g}).",
                "max(astromined_drift_class_mix_shift)",
                threshold_steps=((None, "green"), (DRIFT_CLASS_MIX_SHIFT_THRESHOLD, "orange")),
            )
        )
        .with_row(dashboard.Row("Over time"))
        .with_panel(
            timeseries_panel(
                "Largest PSI",
                "Largest PSI of each evaluated partition; the dashed line is the drift threshold.",
                [query("max(astromined_drift_max_psi)", "max PSI")],
                threshold_steps=((None, "green"), (DRIFT_PSI_THRESHOLD, "orange")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Class-mix shift",
                "Total-variation distance of the predicted class mix; the dashed line is the threshold.",
                [query("max(astromined_drift_class_mix_shift)", "class-mix TVD")],
                threshold_steps=((None, "green"), (DRIFT_CLASS_MIX_SHIFT_THRESHOLD, "orange")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Drift detected and features over threshold",
                "Whether the partition drifted, and how many features crossed the threshold.",
                [
                    query("max(astromined_drift_detected)", "drift detected"),
                    query("max(astromined_drift_features_over_threshold)", "features over threshold"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Retraining runs by status",
                "Runs of retrain_champion (requested by the drift sensor or launched by hand) by status.",
                [query('sum by (status) (astromined_runs{job="retrain_champion"})', "{{status}}")],
            )
        )
    )
