"""The executor reads each cluster's latest readiness materialization from the instance: a site whose GPU
rows failed takes no GPU step (it goes to the other site, the reason in its placement record); when no site
can run the GPU step, the step fails at once naming the component, the site and the reason.

The readiness rows are real probes of the simulated clusters (astromined.readiness.kube) recorded as the
readiness_cluster_<context> materializations the readiness assets write."""

import dagster as dg
from dagster._core.execution.api import execute_job
from support.placement_runs import engine_records, job, placements

from astromined.placement.snapshot import load_api_client
from astromined.readiness.kube import ClusterProbeConfig, cluster_probes
from astromined.readiness.result import cluster_asset_name, run_probes, summarize, summary_metadata


def record_readiness(instance: dg.DagsterInstance, kubeconfig, context: str) -> str:
    api_client = load_api_client(str(kubeconfig), context)
    config = ClusterProbeConfig(context, namespace="default", timeout_s=5.0)
    summary = summarize(context, run_probes(cluster_probes(api_client, config)))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(cluster_asset_name(context), metadata=summary_metadata(summary, True))
    )
    return summary.reason


def readiness_records(instance, run_id) -> dict[str, str]:
    return engine_records(instance, run_id, "placement/readiness")


def test_gpu_step_on_a_not_ready_onprem_site_goes_to_the_cloud(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.onprem.set_device_plugin(False)  # on-prem has free GPUs, but no device plugin
    reason = record_readiness(instance, clusters.kubeconfig, "eks-a")
    assert "device_plugin: DaemonSet kube-system/nvidia-device-plugin not found" in reason
    record_readiness(instance, clusters.kubeconfig, "eks")
    with execute_job(job("gpu_solo_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
    ((step, site, cluster, why),) = placements(instance, result.run_id)
    assert (step, site, cluster) == ("train_solo", "cloud", "eks")
    assert "onprem eks-a not ready for GPU steps (readiness: device_plugin: DaemonSet" in why
    assert readiness_records(instance, result.run_id)["train_solo"].startswith(
        "eks-a: not ready for GPU steps"
    )


def test_cpu_step_stays_on_a_site_whose_gpu_rows_failed(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.onprem.set_node_ready("v100-1", False)
    record_readiness(instance, clusters.kubeconfig, "eks-a")
    with execute_job(job("gpu_pair_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
    sites = {step: (site, cluster) for step, site, cluster, _ in placements(instance, result.run_id)}
    assert sites == {"prepare": ("onprem", "eks-a"), "train_a": ("cloud", "eks"), "train_b": ("cloud", "eks")}


def test_no_site_ready_blocks_the_gpu_step_naming_component_site_and_reason(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.onprem.set_device_plugin(False)
    clusters.cloud.set_access_denied({"create jobs"})
    record_readiness(instance, clusters.kubeconfig, "eks-a")
    record_readiness(instance, clusters.kubeconfig, "eks")
    with execute_job(job("gpu_solo_job"), instance, run_config=clusters.run_config()) as result:
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "blocked: no site can run this GPU step" in message
    assert "onprem eks-a not ready for GPU steps (readiness: device_plugin:" in message
    assert (
        "cloud eks not ready (readiness: executor_rbac: service account may not: create jobs.batch" in message
    )
    assert not clusters.onprem.jobs("default") and not clusters.cloud.jobs("default")


def test_readiness_older_than_the_max_age_is_not_used(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.onprem.set_device_plugin(False)
    record_readiness(instance, clusters.kubeconfig, "eks-a")
    clusters.onprem.set_device_plugin(True)
    run_config = clusters.run_config(readiness_max_age_s=1e-9)
    with execute_job(job("gpu_solo_job"), instance, run_config=run_config) as result:
        assert result.success
    ((_step, site, _cluster, _why),) = placements(instance, result.run_id)
    assert site == "onprem"
    record = readiness_records(instance, result.run_id)["train_solo"]
    assert record.startswith("readiness of eks-a is ") and "old (max 0s): not used" in record
