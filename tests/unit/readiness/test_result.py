"""Probe rows, per-probe timeouts, the placement summary and its metadata round trip (pure)."""

import threading

import pytest

from astromined.readiness.result import (
    META_CONFIGURED,
    META_GPU_READY,
    META_REASON,
    META_SITE_READY,
    Probe,
    ProbeResult,
    Scope,
    SiteReadiness,
    Status,
    cluster_asset_name,
    run_probe,
    run_probes,
    site_readiness_from_metadata,
    summarize,
    summary_metadata,
)


@pytest.mark.fault("kill", "a probe that never returns fails its own row by timeout; the others answer")
def test_a_hung_probe_fails_its_row_only():
    release = threading.Event()

    def hangs() -> tuple[bool, str]:
        release.wait()
        return True, "late"

    try:
        results = run_probes(
            [
                Probe("hung_api", "eks-a", hangs, timeout_s=0.2),
                Probe("fine", "eks-a", lambda: (True, "ok"), timeout_s=5),
            ]
        )
    finally:
        release.set()
    assert [(r.component, r.status) for r in results] == [
        ("hung_api", Status.NOT_READY),
        ("fine", Status.READY),
    ]
    assert results[0].detail == "timed out after 0.2s (no answer)"


def test_a_raising_probe_is_a_not_ready_row_with_the_error():
    def boom() -> tuple[bool, str]:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    result = run_probe(Probe("kubernetes_api", "eks", boom))
    assert result.status is Status.NOT_READY
    assert result.detail == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_not_configured_is_not_a_failure():
    result = run_probe(Probe("grafana", "monitoring", None))
    assert result.status is Status.NOT_CONFIGURED and not result.failed
    assert summarize("monitoring", [result]) == SiteReadiness("monitoring", True, True, "")


def test_summary_scopes():
    rows = [
        ProbeResult("device_plugin", "eks-a", Status.NOT_READY, "DaemonSet not found", scope=Scope.GPU),
        ProbeResult("kubernetes_api", "eks-a", Status.READY, "v1.30.4"),
    ]
    summary = summarize("eks-a", rows)
    assert summary.site_ready and not summary.gpu_ready
    assert summary.usable_for(0) and not summary.usable_for(1)
    assert summary.reason == "device_plugin: DaemonSet not found"
    rows.append(ProbeResult("executor_rbac", "eks-a", Status.NOT_READY, "may not: create jobs.batch"))
    assert not summarize("eks-a", rows).usable_for(0)


def test_metadata_round_trip_and_age():
    summary = SiteReadiness("eks-a", True, False, "gpu_nodes: 1 of 2 GPU node(s) NotReady: g2")
    metadata = summary_metadata(summary, configured=True)
    assert site_readiness_from_metadata("eks-a", metadata, age_s=60, max_age_s=900) == (summary, "")
    entry, why = site_readiness_from_metadata("eks-a", metadata, age_s=1200, max_age_s=900)
    assert entry is None and why == "readiness of eks-a is 1200s old (max 900s): not used"


@pytest.mark.fault("bad-input", "readiness metadata without the summary keys is not used, and says why")
def test_metadata_without_summary_or_not_configured_is_not_used():
    entry, why = site_readiness_from_metadata("eks", {META_REASON: "x"}, 1, 900)
    assert entry is None and META_SITE_READY in why and META_GPU_READY in why
    entry, why = site_readiness_from_metadata(
        "eks", {META_CONFIGURED: False, META_SITE_READY: True, META_GPU_READY: True}, 1, 900
    )
    assert entry is None and why == "readiness of eks is not configured"


def test_cluster_asset_names():
    assert cluster_asset_name("eks-a") == "readiness_cluster_eks_a"
    assert cluster_asset_name("eks") == "readiness_cluster_eks"
