"""The readiness assets materialized for real: clusters probed in the Kubernetes simulator, the local lake,
the test's instance; the latest cluster readiness decides infrastructure_readiness's gpu_sites row."""

import json
from pathlib import Path

import dagster as dg
import kubernetes
import pytest

import assets.readiness as readiness_assets
from astromined.placement.snapshot import load_api_client
from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig
from resources import ComputeResource, ReadinessResource
from resources.lake import LocalLakeResource
from resources.landing_zone import LocalLandingZoneResource

GPU_NODE = {
    "name": "gpu-1",
    "labels": {"nvidia.com/gpu.present": "true"},
    "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 2},
}


def spec(name: str, site: str) -> ClusterSpec:
    return ClusterSpec.from_dict({"name": name, "site": site, "nodes": [GPU_NODE]})


@pytest.fixture
def clusters(tmp_path: Path):
    with (
        SimulatedCluster(spec("eks-a", "onprem"), workdir=tmp_path) as onprem,
        SimulatedCluster(spec("eks", "cloud"), workdir=tmp_path) as cloud,
    ):
        kubeconfig = write_kubeconfig({"eks-a": onprem, "eks": cloud}, tmp_path / "kubeconfig")
        for context in ("eks-a", "eks"):
            core = kubernetes.client.CoreV1Api(load_api_client(str(kubeconfig), context))
            core.create_namespace({"metadata": {"name": "astromined"}})
        yield onprem, cloud, kubeconfig


def resources(tmp_path: Path, kubeconfig: Path | None) -> dict:
    clusters = {"eks-a": {}, "eks": {}} if kubeconfig else {}
    return {
        "readiness": ReadinessResource(
            clusters_json=json.dumps(clusters), kubeconfig_file=str(kubeconfig or ""), probe_timeout_s=5.0
        ),
        "lake": LocalLakeResource(root=str(tmp_path / "lake")),
        "landing_zone": LocalLandingZoneResource(root=str(tmp_path / "landing")),
        "compute": ComputeResource(),
    }


RUN_CONFIG = {"ops": {"infrastructure_readiness": {"config": {"min_free_disk_gib": 0.0}}}}


def materialize(instance, tmp_path, kubeconfig):
    return dg.materialize(
        readiness_assets.READINESS_ASSETS,
        instance=instance,
        resources=resources(tmp_path, kubeconfig),
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )


def metadata_of(instance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def checks(result) -> dict:
    return {
        (
            e.asset_check_evaluation_data.asset_key.to_user_string(),
            e.asset_check_evaluation_data.check_name,
        ): (e.asset_check_evaluation_data.passed)
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_local_mode_clusters_and_monitoring_not_configured(tmp_path: Path):
    with dg.instance_for_test() as instance:
        result = materialize(instance, tmp_path, None)
        assert result.success
        eks_a = metadata_of(instance, "readiness_cluster_eks_a")
        assert eks_a["readiness/configured"] is False
        assert {row["status"] for row in eks_a["readiness/rows"]} == {"not_configured"}
        monitoring = metadata_of(instance, "readiness_monitoring")
        assert {row["status"] for row in monitoring["readiness/rows"]} == {"not_configured"}
        stores = {
            r["component"]: r["status"]
            for r in metadata_of(instance, "readiness_object_stores")["readiness/rows"]
        }
        assert stores == {"lake_bucket": "ready", "landing_zone": "ready"}
        storage = metadata_of(instance, "readiness_instance_storage")["readiness/rows"]
        assert {r["component"]: r["status"] for r in storage} == {
            "run_storage": "ready",
            "event_log_storage": "ready",
            "schedule_storage": "ready",
        }
        infra = metadata_of(instance, "infrastructure_readiness")
        assert infra["ready/gpu_sites"] is True
        assert all(checks(result).values()), checks(result)


def test_clusters_ready_in_the_simulator(tmp_path: Path, clusters):
    _onprem, _cloud, kubeconfig = clusters
    with dg.instance_for_test() as instance:
        result = materialize(instance, tmp_path, kubeconfig)
        assert result.success
        eks_a = metadata_of(instance, "readiness_cluster_eks_a")
        assert eks_a["readiness/site_ready"] and eks_a["readiness/gpu_ready"]
        assert {row["status"] for row in eks_a["readiness/rows"]} == {"ready"}
        assert "| eks-a  | kubernetes_api" in eks_a["components"]
        assert (
            "GPU steps can run on eks-a, eks"
            in metadata_of(instance, "infrastructure_readiness")["components"]
        )


@pytest.mark.fault("bad-config", "one site not ready: its check fails, training is not blocked")
def test_one_site_not_ready_does_not_block_training(tmp_path: Path, clusters):
    onprem, _cloud, kubeconfig = clusters
    onprem.set_device_plugin(False)
    with dg.instance_for_test() as instance:
        result = materialize(instance, tmp_path, kubeconfig)
        assert result.success
        found = checks(result)
        assert found[("readiness_cluster_eks_a", "cluster_ready")] is False
        assert found[("readiness_cluster_eks", "cluster_ready")] is True
        assert found[("infrastructure_readiness", "all_components_ready")] is True
        eks_a = metadata_of(instance, "readiness_cluster_eks_a")
        assert eks_a["readiness/site_ready"] is True and eks_a["readiness/gpu_ready"] is False
        assert (
            "device_plugin: DaemonSet kube-system/nvidia-device-plugin not found" in eks_a["readiness/reason"]
        )


@pytest.mark.fault("kill", "no site can run GPU steps: infrastructure_readiness's blocking check fails")
def test_no_gpu_site_fails_the_blocking_check_naming_sites_and_reasons(tmp_path: Path, clusters):
    onprem, cloud, kubeconfig = clusters
    onprem.set_node_ready("gpu-1", False)
    cloud.set_api_down(True)
    with dg.instance_for_test() as instance:
        result = materialize(instance, tmp_path, kubeconfig)
        evaluations = [
            e.asset_check_evaluation_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.asset_check_evaluation_data.check_name == "all_components_ready"
        ]
    (evaluation,) = evaluations
    assert not evaluation.passed
    description = evaluation.description
    assert description.startswith("not ready: gpu_sites (no site can run GPU steps: ")
    assert "eks-a: gpu_nodes: 1 of 1 GPU node(s) NotReady: gpu-1" in description
    assert "eks: kubernetes_api: " in description


@pytest.mark.fault("bad-config", "S3 lake writable but the landing bucket is missing: only that row fails")
def test_object_stores_on_s3(tmp_path: Path):
    import boto3
    from support.services import aws_test_environment, moto_s3_server

    from resources.lake import S3LakeResource
    from resources.landing_zone import S3LandingZoneResource

    with aws_test_environment(), moto_s3_server(tmp_path) as url, dg.instance_for_test() as instance:
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="lake")
        result = dg.materialize(
            [readiness_assets.readiness_object_stores],
            instance=instance,
            resources={
                "readiness": ReadinessResource(probe_timeout_s=10.0),
                "lake": S3LakeResource(bucket="lake", endpoint_url=url, region_name="us-east-1"),
                "landing_zone": S3LandingZoneResource(
                    bucket="no-such-landing", endpoint_url=url, region_name="us-east-1"
                ),
            },
        )
        assert result.success
        rows = {r["component"]: r for r in metadata_of(instance, "readiness_object_stores")["readiness/rows"]}
        assert checks(result)[("readiness_object_stores", "object_stores_ready")] is False
    assert rows["lake_bucket"]["status"] == "ready"
    assert rows["lake_bucket"]["detail"] == "s3://lake: probe object written, read back and deleted"
    assert rows["landing_zone"]["status"] == "not_ready"
    assert "NoSuchBucket" in rows["landing_zone"]["detail"]
