"""Model quality: holdout metrics of the champion, the latest candidate and the baseline, and the
promotion gate's decisions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from astromined.monitoring import catalog
from astromined.monitoring.alert_values import PROMOTIONS_1D
from astromined.monitoring.dashboards.panels import (
    new_dashboard,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "astromined-model-quality"
FILENAME = "model-quality.json"


def _metric_over_time(metric: str, title: str, description: str, unit: str = "percentunit"):
    return timeseries_panel(
        title,
        description,
        [query(f'max by (role) (astromined_model_metric{{metric="{metric}"}})', "{{role}}")],
        unit=unit,
        width=12,
    )


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "AstroMined / Model quality",
            "Holdout metrics of the champion, the candidate and the logistic-regression baseline from the "
            "latest model_evaluation, and the promotion gate (champion_model).",
        )
        .with_row(dashboard.Row("Latest evaluation"))
        .with_panel(
            stat_panel(
                "Champion macro-F1",
                "Macro-F1 of the champion on the latest holdout.",
                'max(astromined_model_metric{role="champion", metric="macro_f1"})',
                unit="percentunit",
                threshold_steps=((None, "red"), (0.8, "orange"), (0.9, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Candidate - champion macro-F1",
                "Macro-F1 gain of the latest candidate over the champion on the same holdout (promotion "
                "needs a gain of at least champion_model.min_macro_f1_gain).",
                'max(astromined_model_metric{role="candidate", metric="macro_f1"}) '
                '- max(astromined_model_metric{role="champion", metric="macro_f1"})',
                unit="percentunit",
                threshold_steps=((None, "orange"), (0, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Champion M-type recall",
                "Recall of metal-rich M-type asteroids, the class mining cares most about.",
                'max(astromined_model_metric{role="champion", metric="m_type_recall"})',
                unit="percentunit",
                threshold_steps=((None, "red"), (0.8, "orange"), (0.9, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Blocked promotions (24 h)",
                "Candidates the promotion gate blocked in the last 24 hours (AstrominedPromotionBlocked).",
                f'sum({PROMOTIONS_1D}{{outcome="blocked"}}) or vector(0)',
                threshold_steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            table_panel(
                "Holdout metrics by role",
                "Every metric of the latest evaluation: champion, candidate and baseline side by side.",
                "astromined_model_metric",
                width=24,
            )
        )
        .with_row(dashboard.Row("Over time"))
        .with_panel(_metric_over_time("macro_f1", "Macro-F1", "Holdout macro-F1 by role."))
        .with_panel(_metric_over_time("accuracy", "Accuracy", "Holdout accuracy by role."))
        .with_panel(
            _metric_over_time("m_type_recall", "M-type recall", "Recall of the M (metal-rich) class by role.")
        )
        .with_panel(
            _metric_over_time(
                "ece", "Expected calibration error", "Lower is better: confidence matches accuracy.", "short"
            )
        )
        .with_panel(
            timeseries_panel(
                "Candidate margin over the baseline",
                "The latest candidate's macro-F1 minus the baseline's on its holdout, and the 95 % interval "
                "of that difference over 2,000 resampled holdouts (paired bootstrap). An interval across 0: "
                "the holdout cannot tell the two apart, and the gate's verdict turns on which asteroids it "
                "holds (docs/operations.md, the promotion gate).",
                [
                    query(f'max(astromined_model_baseline_margin{{statistic="{statistic}"}})', statistic)
                    for statistic in ("margin", "low", "high")
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            timeseries_panel(
                "Candidate wins of resampled holdouts",
                "Share of the 2,000 resampled holdouts on which the latest candidate beats the baseline: "
                "near 1, a win whatever the draw; near 0.5, a coin flip.",
                [query('max(astromined_model_baseline_margin{statistic="win_share"})', "win share")],
                unit="percentunit",
                threshold_steps=((None, "orange"), (0.8, "green")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Promotion decisions per day",
                "Promotion gate outcomes (" + ", ".join(catalog.PROMOTION_OUTCOMES) + ") over 24 hours.",
                [query("sum by (outcome) (increase(astromined_promotions_total[1d]))", "{{outcome}}")],
                width=24,
            )
        )
    )
