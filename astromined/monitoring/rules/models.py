"""Model alerts: drift of the incoming feature partitions and the promotion gate."""

from __future__ import annotations

from astromined.monitoring.alert_values import PROMOTIONS_1D
from astromined.monitoring.rules.spec import Record, RuleFile, alert, comment, expr

RULES = RuleFile(
    "astromined-models.rules.yml",
    "astromined-models.rules",
    header=comment(
        """
        Model alerts: drift of the incoming feature partitions and the promotion gate.
        Metric names: docs/contracts.md. Unit tests: ../tests/astromined-models.test.yml.
        """
    ),
    rules=(
        Record(
            PROMOTIONS_1D,
            expr(
                """
                sum by (cluster, outcome) (increase(astromined_promotions_total[1d]) > 0)
                or
                sum by (cluster, outcome) (astromined_promotions_total unless astromined_promotions_total offset 1d)
                """  # noqa: E501 - one line of PromQL
            ),
            comment=comment(
                """
                Promotion decisions per outcome over 24 hours; a series that appeared in the window counts in
                full (the exporter creates an outcome's counter at its first decision).
                """
            ),
        ),
        alert(
            "AstrominedDriftDetected",
            "max by (cluster) (astromined_drift_detected) == 1",
            summary="The latest asteroid_features partition drifted from the champion's reference.",
            description=(
                "The drift sensor found the latest evaluated feature partition drifted (largest PSI "
                '{{ with query "max(astromined_drift_max_psi)" }}{{ . | first | value | printf "%.2f" }}'
                '{{ end }}, {{ with query "max(astromined_drift_features_over_threshold)" }}'
                "{{ . | first | value }}{{ end }} feature(s) over the threshold) and requested retraining. "
                "Predictions of the champion in flight may be off until a retrained model is promoted and "
                "uplinked."
            ),
        ),
        alert(
            "AstrominedPromotionBlocked",
            expr(
                f"""
                {PROMOTIONS_1D}{{outcome="blocked"}} > 0
                unless on (cluster)
                {PROMOTIONS_1D}{{outcome="promoted"}} > 0
                """
            ),
            summary="The promotion gate blocked every candidate model of the last 24 hours.",
            description=(
                "champion_model blocked {{ $value }} candidate(s) in the last 24 hours and promoted none: "
                "each candidate lost macro-F1 or a class recall against the champion on the same holdout. "
                "The fleet keeps flying the current champion; if drift was detected too, it is ageing on "
                "drifted data."
            ),
        ),
    ),
)
