"""Infrastructure readiness alerts, from the readiness assets' metrics."""

from __future__ import annotations

from astromined.monitoring.alert_values import CLOUD_CLUSTER, ONPREM_CLUSTER, READINESS_MAX_AGE_S, in_words
from astromined.monitoring.rules.spec import RuleFile, alert, comment, held_for

_NOT_READY_FOR = held_for("AstrominedReadinessComponentNotReady")

RULES = RuleFile(
    "astromined-readiness.rules.yml",
    "astromined-readiness.rules",
    header=comment(
        """
        Infrastructure readiness (assets/readiness.py, every 5 minutes by the readiness_every_5_minutes
        schedule), from the pipeline exporter: astromined_readiness_status{component, site, status} is 1 for
        each readiness row's current status; astromined_readiness_checked_timestamp_seconds{site} is when the
        site was probed. Unit tests: ../tests/astromined-readiness.test.yml. Runbooks: docs/runbooks/.
        """
    ),
    rules=(
        alert(
            "AstrominedReadinessComponentNotReady",
            'max by (component, site) (astromined_readiness_status{status="not_ready"}) == 1',
            summary="Readiness: {{ $labels.component }} on {{ $labels.site }} has not been ready for "
            + _NOT_READY_FOR
            + ".",
            description=(
                "The readiness row {{ $labels.component }} of {{ $labels.site }} has failed at every "
                f"readiness run for {_NOT_READY_FOR}. A cluster that is not ready takes no step (GPU rows: "
                "no GPU step) and the placement executor sends its steps to the other site; the row's "
                "detail is in the readiness asset's metadata."
            ),
            comment="Three consecutive readiness runs (5 min apart) saw the row not ready; not_configured "
            "never fires.",
        ),
        alert(
            "AstrominedNoGPUSiteReady",
            'max by (site) (astromined_readiness_status{component="gpu_sites", status="not_ready"}) == 1',
            summary="No site can run GPU steps: training is blocked.",
            description=(
                f"Neither {ONPREM_CLUSTER} nor {CLOUD_CLUSTER} passed its GPU readiness rows (GPU nodes, "
                "NVIDIA device plugin) or site rows (API, namespace, RBAC): infrastructure_readiness fails "
                "its blocking check, candidate_model does not run and the executor fails GPU steps naming "
                "each site and its failed components."
            ),
        ),
        alert(
            "AstrominedReadinessStale",
            "time() - max by (site) (astromined_readiness_checked_timestamp_seconds) > "
            + str(READINESS_MAX_AGE_S),
            summary="Readiness of {{ $labels.site }} has not been checked for "
            "{{ $value | humanizeDuration }}.",
            description=(
                "No readiness materialization has probed {{ $labels.site }} for more than "
                f"{in_words(READINESS_MAX_AGE_S)}: the readiness schedule is stopped or its runs fail. "
                "Placement no longer knows which site is ready and uses every reachable cluster."
            ),
            comment=comment(
                f"""
                The schedule runs every 5 minutes; {in_words(READINESS_MAX_AGE_S)} without a probe means
                readiness stopped running, and the placement executor ignores readiness older than
                readiness_max_age_s (15 min) from then on.
                """
            ),
        ),
    ),
)
