"""The executor's config, step requests and the k8s config it merges into dagster-k8s's job construction."""

import json
from pathlib import Path

import pytest
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

from astromined.environment import REPO_ROOT
from astromined.placement.executor import PlacementError, production_executor, unschedulable_seconds
from astromined.placement.policy import Action, Decision, PolicyError, Site, StepRequest
from astromined.placement.settings import Mode, settings_from_config
from astromined.placement.snapshot import PLACEMENT_ID_LABEL
from astromined.placement.step_job import placement_k8s_config, step_request

GIB = 2**30


def tags_of(op_tags: dict) -> dict[str, str]:
    """Op tags as a step sees them: dict values serialized to JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in op_tags.items()}


def test_candidate_model_tags_ask_for_one_gpu() -> None:
    from assets.models import GPU_STEP_TAGS

    tags = tags_of(GPU_STEP_TAGS)
    request = step_request("candidate_model", get_user_defined_k8s_config(tags), tags)
    assert request == StepRequest("candidate_model", gpus=1, cpu_millis=2000, memory_bytes=4 * GIB)


def test_gpu_tag_alone_and_disagreeing_tags() -> None:
    empty = get_user_defined_k8s_config({})
    assert step_request("s", empty, {"astromined/gpus": "2"}).gpus == 2
    assert step_request("s", empty, {}).gpus == 0
    tags = tags_of(
        {
            "astromined/gpus": "2",
            "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
        }
    )
    with pytest.raises(
        PolicyError, match=r"step s: op tag astromined/gpus=2 disagrees with nvidia\.com/gpu=1"
    ):
        step_request("s", get_user_defined_k8s_config(tags), tags)
    with pytest.raises(PolicyError, match=r"step s: .*astromined/gpus"):
        step_request("s", empty, {"astromined/gpus": "one"})


def build_pod_spec(settings, request, decision, step_tags) -> dict:
    """The job dagster-k8s constructs for the step with the placement config merged in, as a dict."""
    context = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags)).merge(
        K8sContainerContext(
            run_k8s_config=placement_k8s_config(settings, request, "dagster-step-abc", decision)
        )
    )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="astromined:1"),
        ["dagster", "api", "execute_step"],
        "dagster-step-abc",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.to_dict()


def test_gpu_step_on_a_cluster_gets_limits_toleration_selector_labels_and_env() -> None:
    from assets.models import GPU_STEP_TAGS

    settings = settings_from_config({})
    tags = tags_of(GPU_STEP_TAGS)
    request = step_request("candidate_model", get_user_defined_k8s_config(tags), tags)
    decision = Decision("candidate_model", Action.PLACE, "2 GPU(s) free", 1, Site.CLOUD, "eks")
    job = build_pod_spec(settings, request, decision, tags)
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {
        "limits": {"nvidia.com/gpu": "1"},
        "requests": {"cpu": "2", "memory": "4Gi"},
        "claims": None,
    } or (container["resources"]["limits"], container["resources"]["requests"]) == (
        {"nvidia.com/gpu": "1"},
        {"cpu": "2", "memory": "4Gi"},
    )
    assert pod["spec"]["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in [
        {k: v for k, v in t.items() if v is not None} for t in pod["spec"]["tolerations"]
    ]
    for labels in (pod["metadata"]["labels"], job["metadata"]["labels"]):
        assert labels[PLACEMENT_ID_LABEL] == "dagster-step-abc"
        assert labels["astromined.io/placement-site"] == "cloud"
        assert labels["astromined.io/placement-cluster"] == "eks"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ASTROMINED_PLACEMENT_SITE"] == "cloud" and env["ASTROMINED_PLACEMENT_GPUS"] == "1"


def test_non_gpu_step_gets_no_gpu_settings() -> None:
    settings = settings_from_config({})
    decision = Decision("features", Action.PLACE, "stays on-prem", 0, Site.ONPREM, "eks-a")
    pod = build_pod_spec(settings, StepRequest("features"), decision, {})["spec"]["template"]["spec"]
    assert not pod.get("node_selector") and not pod.get("tolerations")
    assert "nvidia.com/gpu" not in str(pod["containers"][0]["resources"])


def test_single_cluster_mode_prefers_onprem_nodes_by_weight() -> None:
    settings = settings_from_config({"mode": "single_cluster", "single_cluster_context": "hybrid"})
    assert settings.mode is Mode.SINGLE_CLUSTER
    pod = build_pod_spec(settings, StepRequest("train", gpus=1), None, {})["spec"]["template"]["spec"]
    node_affinity = pod["affinity"]["node_affinity"]
    preferred = {
        p["preference"]["match_expressions"][0]["values"][0]: p["weight"]
        for p in node_affinity["preferred_during_scheduling_ignored_during_execution"]
    }
    assert preferred == {"onprem": 100, "cloud": 1}
    terms = node_affinity["required_during_scheduling_ignored_during_execution"]["node_selector_terms"]
    assert terms and all(t["match_expressions"][0]["key"] == "nvidia.com/gpu.present" for t in terms)
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    non_gpu = build_pod_spec(settings, StepRequest("f"), None, {})["spec"]["template"]["spec"]
    assert "required_during_scheduling_ignored_during_execution" not in str(non_gpu["affinity"]) or (
        non_gpu["affinity"]["node_affinity"]["required_during_scheduling_ignored_during_execution"] is None
    )
    assert not non_gpu.get("tolerations")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"clusters": {"eks": {"site": "cloud"}}}, "at least one cluster with site 'onprem'"),
        ({"clusters": {"x": {"site": "mars"}}}, r"clusters\.x\.site must be one of"),
        ({"clusters": {"x": {"site": "onprem", "affinity_weight": 500}}}, r"clusters\.x\.affinity_weight"),
        ({"clusters": {"x": {"site": "onprem", "gpu_toleration": {"operator": "In"}}}}, "operator must be"),
        ({"unschedulable_timeout_s": 0}, "unschedulable_timeout_s must be positive"),
        ({"mode": "single_cluster", "clusters": {"x": {"site": "onprem"}}}, "need site_node_selector"),
        ({"readiness_max_age_s": -1}, "readiness_max_age_s must be >= 0"),
    ],
)
def test_bad_settings_name_the_field(config: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        settings_from_config(config)


def test_production_config_is_valid() -> None:
    executor = production_executor(REPO_ROOT)
    assert executor.name == "astromined_k8s"


def test_production_config_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "infra" / "dagster").mkdir(parents=True)
    config = tmp_path / "infra" / "dagster" / "executor-prod.yaml"
    config.write_text("clusters: {eks-a: {site: onprem, bogus: 1}}\n")
    with pytest.raises(PlacementError, match=r"executor-prod\.yaml: invalid executor config"):
        production_executor(tmp_path)
    config.write_text("- a list\n")
    with pytest.raises(PlacementError, match="expected a mapping"):
        production_executor(tmp_path)


def test_unschedulable_time_counts_from_the_condition_not_from_when_this_handler_first_saw_it() -> None:
    """A restarted run worker sees the pod for the first time, but the pod has waited since the condition's
    lastTransitionTime: that is what the timeout is measured against."""
    condition = {"type": "PodScheduled", "status": "False", "lastTransitionTime": "2026-11-29T10:00:00Z"}
    ten_minutes_later = 1_795_946_400.0 + 600  # 2026-11-29T10:10:00Z
    assert unschedulable_seconds(condition, seen_for=0.0, wall_now=ten_minutes_later) == 600.0
    # A handler that has watched it longer (the API server's clock behind ours) keeps its own count.
    assert unschedulable_seconds(condition, seen_for=900.0, wall_now=ten_minutes_later) == 900.0
    # Clock skew the other way, or no timestamp: never negative, falls back on the handler's count.
    assert unschedulable_seconds(condition, seen_for=5.0, wall_now=ten_minutes_later - 3600) == 5.0
    assert unschedulable_seconds({"status": "False"}, seen_for=5.0, wall_now=ten_minutes_later) == 5.0
    assert unschedulable_seconds({"lastTransitionTime": "yesterday"}, seen_for=1.0, wall_now=0.0) == 1.0
