"""Readiness rows, probes with their own timeout, and the per-site summary the placement executor reads.

A probe is a callable returning ``(ok, detail)``; ``run_probes`` runs each in its own daemon thread and
waits at most its timeout, so a hung API fails its row (``timed out after Ns``) and never the whole asset.
"""

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

DEFAULT_PROBE_TIMEOUT_S = 10.0


class Status(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"
    NOT_CONFIGURED = "not_configured"  # the component is not part of this deployment: not a failure


class Scope(StrEnum):
    """What a failed row keeps from running on its site: every step, or only GPU steps."""

    SITE = "site"
    GPU = "gpu"


# A probe answers (ok, detail), or raises: the exception text becomes the detail of a not-ready row.
ProbeFn = Callable[[], tuple[bool, str]]


@dataclasses.dataclass(frozen=True)
class Probe:
    component: str  # e.g. kubernetes_api, gpu_nodes, lake_bucket, prometheus
    site: str  # e.g. eks-a, eks, object_stores, monitoring, local
    fn: ProbeFn | None  # None: not configured
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    scope: Scope = Scope.SITE
    not_configured_detail: str = "not configured"


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    component: str
    site: str
    status: Status
    detail: str
    seconds: float = 0.0
    scope: Scope = Scope.SITE

    @property
    def failed(self) -> bool:
        return self.status is Status.NOT_READY

    def row(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "component": self.component,
            "status": self.status.value,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def not_checked(probe: Probe, why: str) -> ProbeResult:
    return ProbeResult(probe.component, probe.site, Status.NOT_READY, f"not checked: {why}", 0.0, probe.scope)


def run_probe(probe: Probe) -> ProbeResult:
    """One probe, bounded by its timeout. The probe's thread is a daemon: a hung call is abandoned."""
    if probe.fn is None:
        return ProbeResult(
            probe.component, probe.site, Status.NOT_CONFIGURED, probe.not_configured_detail, 0.0, probe.scope
        )
    outcome: list[tuple[bool, str]] = []
    fn = probe.fn

    def target() -> None:
        try:
            outcome.append(fn())
        except Exception as error:  # the row says what went wrong; the asset goes on
            outcome.append((False, f"{type(error).__name__}: {_short(str(error))}"))

    started = time.monotonic()
    thread = threading.Thread(target=target, name=f"probe-{probe.site}-{probe.component}", daemon=True)
    thread.start()
    thread.join(probe.timeout_s)
    seconds = time.monotonic() - started
    if not outcome:
        return ProbeResult(
            probe.component,
            probe.site,
            Status.NOT_READY,
            f"timed out after {probe.timeout_s:g}s (no answer)",
            seconds,
            probe.scope,
        )
    ok, detail = outcome[0]
    return ProbeResult(
        probe.component, probe.site, Status.READY if ok else Status.NOT_READY, detail, seconds, probe.scope
    )


def run_probes(probes: Iterable[Probe]) -> list[ProbeResult]:
    """Every probe concurrently, each bounded by its own timeout; results in the probes' order."""
    probes = list(probes)
    results: list[ProbeResult | None] = [None] * len(probes)

    def one(index: int) -> None:
        results[index] = run_probe(probes[index])

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(probes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # run_probe returns within its probe's timeout
    return [r for r in results if r is not None]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclasses.dataclass(frozen=True)
class SiteReadiness:
    """What the readiness of one cluster means for placement: may it take steps, may it take GPU steps."""

    cluster: str
    site_ready: bool = True
    gpu_ready: bool = True
    reason: str = ""  # "component: detail; ..." of the failed rows

    def usable_for(self, gpus: int) -> bool:
        return self.site_ready and (gpus == 0 or self.gpu_ready)


def summarize(cluster: str, results: Sequence[ProbeResult]) -> SiteReadiness:
    """The placement view of one cluster's rows. Not-configured rows never count as failures."""
    failed = [r for r in results if r.failed]
    site_failed = [r for r in failed if r.scope is Scope.SITE]
    return SiteReadiness(
        cluster=cluster,
        site_ready=not site_failed,
        gpu_ready=not failed,
        reason="; ".join(f"{r.component}: {r.detail}" for r in failed),
    )


# The metadata keys a cluster readiness materialization carries (read back by the placement executor).
META_SITE_READY = "readiness/site_ready"
META_GPU_READY = "readiness/gpu_ready"
META_REASON = "readiness/reason"
META_CONFIGURED = "readiness/configured"


def summary_metadata(summary: SiteReadiness, configured: bool) -> dict[str, Any]:
    return {
        META_SITE_READY: summary.site_ready,
        META_GPU_READY: summary.gpu_ready,
        META_REASON: summary.reason,
        META_CONFIGURED: configured,
    }


def site_readiness_from_metadata(
    cluster: str, metadata: Mapping[str, Any], age_s: float, max_age_s: float
) -> tuple[SiteReadiness | None, str]:
    """The readiness of a cluster from its latest materialization's metadata (plain values), or None and
    why it does not count: too old, or the cluster is not configured for readiness probes."""
    if age_s > max_age_s:
        return None, f"readiness of {cluster} is {age_s:.0f}s old (max {max_age_s:.0f}s): not used"
    if not bool(metadata.get(META_CONFIGURED, True)):
        return None, f"readiness of {cluster} is not configured"
    if META_SITE_READY not in metadata or META_GPU_READY not in metadata:
        return None, f"readiness of {cluster} has no {META_SITE_READY}/{META_GPU_READY} metadata"
    return (
        SiteReadiness(
            cluster,
            site_ready=bool(metadata[META_SITE_READY]),
            gpu_ready=bool(metadata[META_GPU_READY]),
            reason=str(metadata.get(META_REASON) or ""),
        ),
        "",
    )


def cluster_asset_name(context: str) -> str:
    """The readiness asset of one cluster (kubeconfig context): ``eks-a`` → ``readiness_cluster_eks_a``."""
    return "readiness_cluster_" + "".join(ch if ch.isalnum() else "_" for ch in context.lower())
