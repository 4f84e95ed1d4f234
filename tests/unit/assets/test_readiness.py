"""Direct invocation of the readiness asset with real local resources."""

import dagster as dg
import pytest

from assets.readiness import ReadinessConfig, infrastructure_readiness
from resources import ComputeResource
from resources.lake import LocalLakeResource


def _run(lake, config=None):
    with dg.build_asset_context() as context:
        outputs = list(
            infrastructure_readiness(
                context=context, config=config or ReadinessConfig(), lake=lake, compute=ComputeResource()
            )
        )
    [materialization] = [o for o in outputs if isinstance(o, dg.MaterializeResult)]
    [check] = [o for o in outputs if isinstance(o, dg.AssetCheckResult)]
    return materialization.metadata, check


def test_ready_when_lake_writable_and_device_computes(tmp_path):
    metadata, check = _run(
        LocalLakeResource(root=str(tmp_path / "lake")), ReadinessConfig(min_free_disk_gib=0.0)
    )
    assert check.passed
    assert metadata["ready/lake"] and metadata["ready/compute_device"] and metadata["ready/lake_disk"]
    assert list((tmp_path / "lake").rglob("probe-*")) == []  # the probe cleans up after itself


def test_unwritable_lake_fails_the_blocking_check(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the lake directory should be")
    metadata, check = _run(LocalLakeResource(root=str(blocker)), ReadinessConfig(min_free_disk_gib=0.0))
    assert not check.passed
    assert "lake" in check.description
    assert metadata["ready/lake"] is False


def test_insufficient_disk_is_reported(tmp_path):
    _metadata, check = _run(LocalLakeResource(root=str(tmp_path)), ReadinessConfig(min_free_disk_gib=1e9))
    assert not check.passed
    assert "lake_disk" in check.description


def _instance_with(events: dict):
    """A stand-in for the instance's latest-materialization lookup (only what gpu_sites_row reads)."""
    from types import SimpleNamespace

    def latest(key):
        found = events.get(key.to_user_string())
        if found is None:
            return None
        timestamp, metadata = found
        wrapped = {
            k: dg.MetadataValue.bool(v) if isinstance(v, bool) else dg.MetadataValue.text(v)
            for k, v in metadata.items()
        }
        return SimpleNamespace(timestamp=timestamp, asset_materialization=SimpleNamespace(metadata=wrapped))

    return SimpleNamespace(get_latest_materialization_event=latest)


def _cluster(site_ready: bool, gpu_ready: bool, reason: str = "", configured: bool = True) -> dict:
    return {
        "readiness/site_ready": site_ready,
        "readiness/gpu_ready": gpu_ready,
        "readiness/reason": reason,
        "readiness/configured": configured,
    }


def test_gpu_sites_row_ready_when_one_site_can_run_gpu_steps():
    from assets.readiness import gpu_sites_row
    from astromined.readiness.result import Status

    instance = _instance_with(
        {
            "readiness_cluster_eks_a": (1000.0, _cluster(True, False, "device_plugin: not found")),
            "readiness_cluster_eks": (1000.0, _cluster(True, True)),
        }
    )
    row = gpu_sites_row(instance, now=1100.0)
    assert row.status is Status.READY
    assert row.detail == "GPU steps can run on eks; not ready: eks-a: device_plugin: not found"


@pytest.mark.fault("bad-config", "stale or unconfigured cluster readiness does not block training")
def test_gpu_sites_row_ignores_stale_and_unconfigured_readiness():
    from assets.readiness import gpu_sites_row
    from astromined.readiness.result import Status

    instance = _instance_with(
        {
            "readiness_cluster_eks_a": (0.0, _cluster(False, False, "kubernetes_api: refused")),
            "readiness_cluster_eks": (5000.0, _cluster(True, True, configured=False)),
        }
    )
    row = gpu_sites_row(instance, now=5000.0, max_age_s=900)
    assert row.status is Status.NOT_CONFIGURED
    assert row.detail == "no cluster readiness recorded within 900s (eks-a older)"


def test_cluster_probes_run_as_the_run_workers_account_on_prem():
    """SelfSubjectAccessReview answers for the caller: the probes must run as the account the executor uses
    (the run launcher's), with its kubeconfig, and never on the cloud cluster."""
    import json
    from pathlib import Path

    import yaml

    from assets.readiness import cluster_readiness_assets

    prod = yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "infra/dagster/dagster-prod.yaml").read_text()
    )
    run_account = prod["run_launcher"]["config"]["service_account_name"]
    for asset in cluster_readiness_assets:
        tags = asset.op.tags
        assert tags["astromined/site"] == "onprem"
        k8s = json.loads(tags["dagster-k8s/config"])
        assert k8s["pod_spec_config"]["service_account_name"] == run_account
        mounts = {m["name"]: m["mount_path"] for m in k8s["container_config"]["volume_mounts"]}
        assert mounts["kubeconfig"] == "/var/run/secrets/astromined/kubeconfig"
