"""The data-to-model latency SLO: error-ratio recording rules and the multi-window, multi-burn-rate alert."""

from __future__ import annotations

from astromined.monitoring.alert_values import (
    SLO_ALERT,
    SLO_BUCKET_MATCHER,
    SLO_BURN_RATE_TIERS,
    SLO_ERROR_BUDGET,
    SLO_LABEL,
    SLO_LATENCY_S,
    SLO_PERIOD,
    SLO_WINDOWS,
    BurnRateTier,
    in_words,
    percent,
    slo_error_ratio,
)
from astromined.monitoring.rules.spec import Alert, Record, RuleFile, alert, expr, paragraph

_LATENCY = "astromined_data_to_model_latency_seconds"
_OBJECTIVE = (
    f"The SLO is {percent(1 - SLO_ERROR_BUDGET)} of uplink packages signed within {in_words(SLO_LATENCY_S)} "
    f"of their downlink landing ({in_words(SLO_PERIOD)})."
)
# (summary, description after the objective) of each tier of SLO_BURN_RATE_TIERS, fastest burn first.
_TEXTS = (
    (
        "Uplink packages are late: the data-to-model latency SLO burns its error budget fast.",
        "{{ $value | humanizePercentage }} of recent packages took longer, burning the month's error budget "
        "at least {slowest:g} times too fast. Telemetry, training or packaging is slow or stuck.",
    ),
    (
        "The data-to-model latency SLO is burning its error budget faster than it can last.",
        "{{ $value | humanizePercentage }} of the packages in the alerting window took longer: at this rate "
        "the month's error budget runs out before the month does.",
    ),
)


def _error_ratio(window: str) -> Record:
    return Record(
        slo_error_ratio(window),
        expr(
            f"""
            1 - (
              sum(rate({_LATENCY}_bucket{{{SLO_BUCKET_MATCHER}}}[{window}]))
              / sum(rate({_LATENCY}_count[{window}]))
            )
            """
        ),
    )


def _burn_rate_alert(tier: BurnRateTier, summary: str, description: str) -> Alert:
    conditions = [
        f"(\n"
        f"  {slo_error_ratio(long)} > ({rate:g} * {SLO_ERROR_BUDGET:g})\n"
        f"  and\n"
        f"  {slo_error_ratio(short)} > ({rate:g} * {SLO_ERROR_BUDGET:g})\n"
        f")\n"
        for long, short, rate in tier.windows
    ]
    slowest = min(rate for _, _, rate in tier.windows)
    return alert(
        SLO_ALERT,
        "or\n".join(conditions),
        summary=summary,
        # str.replace, not str.format: the description is full of Go template braces.
        description=f"{_OBJECTIVE} " + description.replace("{slowest:g}", f"{slowest:g}"),
        values=tier.values,
        extra_labels={"slo": SLO_LABEL},
    )


if len(_TEXTS) != len(SLO_BURN_RATE_TIERS):
    raise ValueError("slo.py: one (summary, description) per alert_values.SLO_BURN_RATE_TIERS entry")

RULES = RuleFile(
    "astromined-slo.rules.yml",
    "astromined-slo.rules",
    header=paragraph(
        f"""
        SLO: {percent(1 - SLO_ERROR_BUDGET)} of uplink packages are signed within {in_words(SLO_LATENCY_S)} of
        their day's newest downlink file landing, over a rolling {in_words(SLO_PERIOD)} (error budget:
        {percent(SLO_ERROR_BUDGET)} of packages). The SLI is the data-to-model latency histogram
        ({_LATENCY}, one observation per uplink_package materialization; bucket le={SLO_LATENCY_S} is the
        objective). Alerts: multi-window, multi-burn-rate (Google SRE workbook, ch. 5):
        """
    )
    + "".join(
        f"\n  {tier.values.severity}: burn rate "
        + ", or ".join(f"> {rate:g} over {long} and {short}" for long, short, rate in tier.windows)
        + ";"
        for tier in SLO_BURN_RATE_TIERS
    )
    + "\n"
    + paragraph(
        """
        Packages are produced a few times a day, so a window without one has no ratio (NaN) and cannot fire:
        the short window decides how long an alert lasts after the late package (see the runbook).
        """
    ),
    rules=(
        *(_error_ratio(window) for window in SLO_WINDOWS),
        *(
            _burn_rate_alert(tier, summary, description)
            for tier, (summary, description) in zip(SLO_BURN_RATE_TIERS, _TEXTS, strict=True)
        ),
    ),
)
