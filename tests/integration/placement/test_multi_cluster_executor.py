"""Real Dagster runs through the multi-cluster executor against two simulated Kubernetes clusters.

Every step is a Kubernetes Job whose pod runs `dagster api execute_step` as a local process of the
simulated kubelet, against the test's filesystem (SQLite) instance.
"""

import threading
from types import SimpleNamespace

import dagster as dg
from dagster._core.execution.api import ReexecutionOptions, execute_job
from support.placement_runs import job, output_metadata, placements, snapshot_sources


def sites_by_step(instance, run_id) -> dict[str, str]:
    return {step: site for step, site, _cluster, _reason in placements(instance, run_id)}


def placement_tags(instance, run_id) -> dict[str, str]:
    tags = instance.get_run_by_id(run_id).tags
    return {
        k.removeprefix("astromined/placement/"): v
        for k, v in tags.items()
        if k.startswith("astromined/placement/")
    }


def job_clusters(clusters) -> dict[str, set[str]]:
    """Which cluster holds a Kubernetes Job for which step (by the dagster/op label)."""
    found: dict[str, set[str]] = {}
    for name, cluster in (("eks-a", clusters.onprem), ("eks", clusters.cloud)):
        for item in cluster.jobs("default"):
            found.setdefault(item["metadata"]["labels"]["dagster/op"], set()).add(name)
    return found


def test_onprem_with_room_runs_every_step_onprem(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    with execute_job(job("gpu_pair_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
        assert sites_by_step(instance, result.run_id) == {
            "prepare": "onprem",
            "train_a": "onprem",
            "train_b": "onprem",
        }
        assert placement_tags(instance, result.run_id) == sites_by_step(instance, result.run_id)
        assert job_clusters(clusters) == {"prepare": {"eks-a"}, "train_a": {"eks-a"}, "train_b": {"eks-a"}}
        assert output_metadata(result, "train_a")["placement/site"] == "onprem"
        assert output_metadata(result, "train_a")["placement/gpus"] == 1
        # GPU decisions read on-prem from the watch cache; the CPU step only needed a reachability probe.
        sources = snapshot_sources(instance, result.run_id)
        assert sources == {
            "prepare": "eks-a: probe",
            "train_a": "eks-a: watch cache",
            "train_b": "eks-a: watch cache",
        }
    # The run's watch caches stopped with its executor.
    assert not [t.name for t in threading.enumerate() if t.name.startswith("informer-")]
    gpu_pods = [p for p in clusters.onprem.pods("default") if p["spec"]["containers"][0]["args"][-1:] != []]
    train_pods = [p for p in gpu_pods if p["metadata"]["labels"]["dagster/op"].startswith("train")]
    assert {p["spec"]["nodeName"] for p in train_pods} == {"v100-1"}
    for pod in train_pods:
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"][
            "tolerations"
        ]


def test_one_free_onprem_gpu_and_two_gpu_steps_at_once_spill_one_to_the_cloud(
    make_clusters, instance
) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.occupy_onprem_gpus(1)
    with execute_job(job("gpu_pair_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
        sites = sites_by_step(instance, result.run_id)
    assert sites["prepare"] == "onprem"
    assert sorted([sites["train_a"], sites["train_b"]]) == ["cloud", "onprem"]
    spilled = next(p for p in placements(instance, result.run_id) if p[1] == "cloud")
    assert "no Ready on-prem eks-a GPU node has 1 GPU(s) free" in spilled[3]
    assert placement_tags(instance, result.run_id) == sites
    assert_a_restarted_run_worker_finds_every_job(clusters, result.run_id, sites)


def test_a_cluster_refusing_watches_is_listed_instead(make_clusters, instance) -> None:
    """RBAC without the 'watch' verb: the executor notices, lists on-prem for each GPU decision, and the
    placements are the same as with the watch cache (one free GPU, two GPU steps: one spills)."""
    clusters = make_clusters(onprem_gpus=2)
    clusters.occupy_onprem_gpus(1)
    clusters.onprem.set_watch_forbidden(True)
    with execute_job(job("gpu_pair_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
        sites = sites_by_step(instance, result.run_id)
    assert sorted([sites["train_a"], sites["train_b"]]) == ["cloud", "onprem"]
    sources = snapshot_sources(instance, result.run_id)
    onprem_step = "train_a" if sites["train_a"] == "onprem" else "train_b"
    assert sources[onprem_step] in ("eks-a: list", "eks-a: cached list")


def assert_a_restarted_run_worker_finds_every_job(clusters, run_id: str, sites: dict[str, str]) -> None:
    """A fresh step handler (no memory of the placements) finds each step's job by its labels on the
    cluster it ran on: what check_step_health and terminate_step use after a run worker restart."""
    from dagster_k8s.container_context import K8sContainerContext

    from astromined.placement.clients import load_cluster_clients
    from astromined.placement.executor import PlacementStepHandler
    from astromined.placement.settings import settings_from_config

    settings = settings_from_config(clusters.run_config()["execution"]["config"])
    handler = PlacementStepHandler(
        settings, load_cluster_clients(settings), "astromined:test", K8sContainerContext(namespace="default")
    )
    ctx = SimpleNamespace(execute_step_args=SimpleNamespace(run_id=run_id))
    jobs = {
        job["metadata"]["labels"]["dagster/op"]: job["metadata"]["name"]
        for cluster in (clusters.onprem, clusters.cloud)
        for job in cluster.jobs("default")
    }
    for step, job_name in jobs.items():
        placement, job = handler._locate(ctx, step, job_name)
        assert (placement.site.value, job["metadata"]["name"]) == (sites[step], job_name)
        assert placement.cluster == {"onprem": "eks-a", "cloud": "eks"}[sites[step]]
        assert not job["status"].get("failed")  # (the step reported success; the job may still be finishing)
    assert handler._locate(ctx, "nothing", "dagster-step-none") is None


def test_onprem_api_down_sends_every_step_to_the_cloud(make_clusters, instance) -> None:
    clusters = make_clusters()
    clusters.onprem.set_api_down(True)
    with execute_job(job("gpu_pair_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
    found = placements(instance, result.run_id)
    assert {step: site for step, site, _c, _r in found} == {
        "prepare": "cloud",
        "train_a": "cloud",
        "train_b": "cloud",
    }
    assert all("on-prem eks-a API unreachable" in reason for _s, _site, _c, reason in found)
    assert clusters.cloud.jobs("default") and not clusters.onprem.jobs("default")


def test_node_not_ready_after_the_decision_moves_the_step_to_the_cloud(
    make_clusters, instance, monkeypatch
) -> None:
    """The GPU node fails between the placement decision and the job reaching the cluster: the pod sits
    Unschedulable on-prem, is deleted after unschedulable_timeout_s and the step runs in the cloud."""
    from astromined.placement.executor import PlacementStepHandler

    clusters = make_clusters()
    create = PlacementStepHandler._create
    failed = []

    def node_fails_then_create(self, launch, cluster, decision):
        if cluster == "eks-a" and not failed:
            clusters.onprem.set_node_ready("v100-1", False)
            failed.append(launch.job_name)
        return create(self, launch, cluster, decision)

    monkeypatch.setattr(PlacementStepHandler, "_create", node_fails_then_create)
    with execute_job(job("gpu_solo_job"), instance, run_config=clusters.run_config()) as result:
        assert result.success
        assert output_metadata(result, "train_solo")["placement/site"] == "cloud"
    (first, moved) = placements(instance, result.run_id)
    assert first[:3] == ("train_solo", "onprem", "eks-a")
    assert moved[:3] == ("train_solo", "cloud", "eks")
    assert "Unschedulable on on-prem eks-a" in moved[3] and "unschedulable_timeout_s=3" in moved[3]
    assert placement_tags(instance, result.run_id) == {"train_solo": "cloud"}
    assert not clusters.onprem.jobs("default")  # deleted, with its pod
    assert not [p for p in clusters.onprem.pods("default") if p["metadata"]["name"].startswith(failed[0])]


def test_failed_step_is_reported_and_reexecution_from_failure_completes(
    make_clusters, instance, tmp_path
) -> None:
    clusters = make_clusters()
    marker = tmp_path / "flaky-may-pass"
    run_config = {**clusters.run_config(), "ops": {"flaky": {"config": {"marker": str(marker)}}}}
    with execute_job(job("flaky_job"), instance, run_config=run_config) as result:
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        assert [e.step_key for e in failures] == ["flaky"]
        assert "flaky step failing on purpose" in str(failures[0].step_failure_data.error)
        first_run = result.run_id
    assert instance.get_run_by_id(first_run).status == dg.DagsterRunStatus.FAILURE
    marker.touch()
    options = ReexecutionOptions.from_failure(first_run, instance)
    with execute_job(
        job("flaky_job"), instance, run_config=run_config, reexecution_options=options
    ) as result:
        assert result.success
        assert [e.step_key for e in result.all_events if e.is_step_success] == ["flaky"]
        assert sites_by_step(instance, result.run_id) == {"flaky": "onprem"}


def test_cloud_unreachable_with_onprem_full_waits_then_fails_clearly(make_clusters, instance) -> None:
    clusters = make_clusters(onprem_gpus=2)
    clusters.occupy_onprem_gpus(2)
    clusters.cloud.set_api_down(True)
    with execute_job(job("gpu_solo_job"), instance, run_config=clusters.run_config()) as result:
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "no cluster could take step train_solo" in message
    assert "cloud_unreachable_timeout_s=4" in message and "cloud eks API unreachable" in message
    waiting = [
        r.dagster_event.message
        for r in instance.all_logs(result.run_id)
        if r.dagster_event and "is waiting for a cluster" in (r.dagster_event.message or "")
    ]
    assert waiting and "no Ready on-prem eks-a GPU node has 1 GPU(s) free" in waiting[0]
    assert not clusters.onprem.jobs("default")
