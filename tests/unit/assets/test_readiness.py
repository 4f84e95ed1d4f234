"""Direct invocation of the readiness asset with real local resources."""

import dagster as dg

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
