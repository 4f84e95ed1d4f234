"""Our Kubernetes Job for a plain step equals dagster-k8s's, apart from what the placement adds on purpose.

``astromined/placement/step_job.py`` repeats the job construction of dagster-k8s 0.29.27's
``K8sStepHandler.launch_step`` (labels, args, env, ``construct_dagster_k8s_job``) and ``PlacementStepHandler``
its container-context merge. The pins (dagster 1.13.27, dagster-k8s 0.29.27) are the upgrade risk: a new
label, env var or merge rule in dagster-k8s would silently be missing from our step pods. This test runs
a real step through the multi-cluster executor (one on-prem cluster, no GPU, the executor's default
settings) and, at the moment it is launched, builds the Job both ways from the same
``StepHandlerContext``: ours (``PlacementStepHandler._build_job``, what ``_create`` sends) and the one
dagster-k8s's ``k8s_job_executor``, created from the same executor config, hands to the API. The two must
be equal once the placement's additions (``INTENTIONAL_LABELS``, ``INTENTIONAL_ENV``) are taken out of ours.

dagster-k8s reads ``job_image``, ``dagster_home`` and ``instance_config_map`` from a ``K8sRunLauncher``
(production: infra/dagster/dagster-prod.yaml); both handlers see the step on an instance with such a
launcher, a minimal one and the production one (not loading any kubeconfig into the process).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import dagster as dg
import dagster_k8s.launcher
import kubernetes.client
import kubernetes.config
import pytest
import yaml
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from support.placement_runs import job

import astromined.placement.executor as placement_executor
from astromined.environment import REPO_ROOT
from astromined.placement.executor import PlacementStepHandler
from astromined.placement.snapshot import PLACEMENT_ID_LABEL
from astromined.placement.step_job import CLUSTER_LABEL, SITE_LABEL
from astromined.placement.step_metadata import ENV_CLUSTER, ENV_GPUS, ENV_REASON, ENV_SITE

CLUSTER = "eks-a"
# What the placement adds to dagster-k8s's Job, on purpose (placement_k8s_config): every other field of
# the body must be dagster-k8s's. A decision's reason varies, so ENV_REASON is checked for presence.
INTENTIONAL_LABELS = {  # on the Job's metadata and on its pod template's
    PLACEMENT_ID_LABEL: "<job name>",
    SITE_LABEL: "onprem",
    CLUSTER_LABEL: CLUSTER,
}
INTENTIONAL_ENV = {ENV_SITE: "onprem", ENV_CLUSTER: CLUSTER, ENV_REASON: "<decision reason>", ENV_GPUS: "0"}


def launchers() -> dict[str, K8sRunLauncher]:
    production = yaml.safe_load((REPO_ROOT / "infra/dagster/dagster-prod.yaml").read_text())["run_launcher"]
    return {
        "minimal": K8sRunLauncher(
            service_account_name="dagster",
            instance_config_map="dagster-instance",
            dagster_home="/opt/dagster/dagster_home",
            load_incluster_config=False,
        ),
        "production": K8sRunLauncher(**production["config"]),
    }


class OnRunLauncher:
    """The run's StepHandlerContext, seen on an instance whose run launcher is ``launcher``."""

    def __init__(self, ctx, launcher: K8sRunLauncher) -> None:
        self._ctx = ctx
        self.instance = SimpleNamespace(run_launcher=launcher)

    def __getattr__(self, name: str):
        return getattr(self._ctx, name)


class RecordingClient:
    """dagster-k8s's DagsterKubernetesClient as far as ``K8sStepHandler.launch_step`` uses it."""

    def __init__(self) -> None:
        self.created: list[tuple[kubernetes.client.V1Job, str]] = []

    def create_namespaced_job_with_retries(self, body: kubernetes.client.V1Job, namespace: str) -> None:
        self.created.append((body, namespace))


def as_sent(job: kubernetes.client.V1Job) -> dict:
    """The body as it goes over the wire (camelCase keys, no nulls)."""
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def flat(value, path: str = "") -> dict[str, object]:
    """Leaf values by path (``spec.template.spec.containers[0].env[3].value``), for readable diffs."""
    if isinstance(value, dict):
        return {
            k: v
            for key, item in value.items()
            for k, v in flat(item, f"{path}.{key}" if path else key).items()
        }
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{path}[{i}]").items()}
    return {path: value}


def differences(ours: dict, theirs: dict) -> list[str]:
    a, b = flat(ours), flat(theirs)
    return [
        f"{key}: ours {a.get(key, '<absent>')!r}, dagster-k8s {b.get(key, '<absent>')!r}"
        for key in sorted(a.keys() | b.keys())
        if a.get(key, "<absent>") != b.get(key, "<absent>")
    ]


def without_placement(job: dict, job_name: str) -> dict:
    """``job`` with each intentional addition checked and taken out (a missing one fails too)."""
    job = copy.deepcopy(job)
    labels = {**INTENTIONAL_LABELS, PLACEMENT_ID_LABEL: job_name}
    for metadata in (job["metadata"], job["spec"]["template"]["metadata"]):
        assert {key: metadata["labels"].pop(key, None) for key in labels} == labels
    container = job["spec"]["template"]["spec"]["containers"][0]
    added = {e["name"]: e.get("value") for e in container["env"] if e["name"] in INTENTIONAL_ENV}
    assert added.pop(ENV_REASON, "")
    assert added == {k: v for k, v in INTENTIONAL_ENV.items() if k != ENV_REASON}
    container["env"] = [e for e in container["env"] if e["name"] not in INTENTIONAL_ENV]
    return job


def test_plain_step_job_equals_dagster_k8s_launch_step_job(make_clusters, instance, monkeypatch) -> None:
    clusters = make_clusters()
    # K8sRunLauncher and K8sStepHandler load a kubeconfig into the process-wide default on creation;
    # nothing here talks through it (our clients are per context, theirs only record).
    with monkeypatch.context() as patch:
        patch.setattr(dagster_k8s.launcher, "load_kubernetes_config", lambda **_: None)
        views = launchers()
    stock = RecordingClient()
    stock_handlers = []
    built = []
    compared: dict[str, tuple[dict, dict, str, str]] = {}

    real_build_executor = placement_executor.build_executor

    def build_executor(exc_cfg, run_launcher=None, clients=None):
        """Ours as usual, and dagster-k8s's k8s_job_executor from the same executor config."""
        with monkeypatch.context() as patch:
            patch.setattr(kubernetes.config, "load_kube_config", lambda *_, **__: None)
            patch.setattr(kubernetes.config, "load_incluster_config", lambda *_, **__: None)
            init = SimpleNamespace(
                executor_config=exc_cfg, instance=SimpleNamespace(run_launcher=views["minimal"])
            )
            theirs = k8s_job_executor.executor_creation_fn(init)
        handler = theirs._step_handler  # StepDelegatingExecutor keeps no public accessor
        handler._api_client = stock
        stock_handlers.append(handler)
        return real_build_executor(exc_cfg, run_launcher, clients)

    real_build_job = PlacementStepHandler._build_job

    def build_job(self, launch, cluster, decision):
        built.append((cluster, decision))
        return real_build_job(self, launch, cluster, decision)

    real_launch_step = PlacementStepHandler.launch_step

    def launch_step(self, ctx):
        yield from real_launch_step(self, ctx)
        cluster, decision = built[-1]
        for name, launcher in views.items():
            view = OnRunLauncher(ctx, launcher)
            ours = real_build_job(self, self._launch(view), cluster, decision)
            list(stock_handlers[-1].launch_step(view))
            theirs, namespace = stock.created.pop()
            compared[name] = (as_sent(ours), as_sent(theirs), self._namespace, namespace)

    monkeypatch.setattr(placement_executor, "build_executor", build_executor)
    monkeypatch.setattr(PlacementStepHandler, "_build_job", build_job)
    monkeypatch.setattr(PlacementStepHandler, "launch_step", launch_step)
    run_config = clusters.run_config(clusters={CLUSTER: {"site": "onprem"}})
    with dg.execute_job(
        job("gpu_pair_job"), instance, run_config=run_config, op_selection=["prepare"]
    ) as result:
        assert result.success
    assert [(cluster, decision.gpus, decision.site.value) for cluster, decision in built] == [
        (CLUSTER, 0, "onprem")
    ]
    assert sorted(compared) == ["minimal", "production"]
    for name, (ours, theirs, our_namespace, their_namespace) in compared.items():
        job_name = theirs["metadata"]["name"]
        normalised = without_placement(ours, job_name)
        assert normalised == theirs, f"{name} launcher: {differences(normalised, theirs)}"
        assert our_namespace == their_namespace == "default", name
    # The comparison is not vacuous: the production launcher's settings reached both Jobs.
    _, production, _, _ = compared["production"]
    assert "astromined-env" in str(production["spec"]["template"]["spec"]["containers"][0]["envFrom"])


@pytest.mark.parametrize("missing", [*INTENTIONAL_LABELS, *INTENTIONAL_ENV])
def test_the_normalisation_fails_when_an_intentional_addition_is_missing(missing: str) -> None:
    """``without_placement`` checks every listed addition is there, so the list cannot go stale."""
    labels = {**INTENTIONAL_LABELS, PLACEMENT_ID_LABEL: "dagster-step-x"}
    env = [{"name": k, "value": v} for k, v in INTENTIONAL_ENV.items()]
    job = {
        "metadata": {"labels": dict(labels)},
        "spec": {"template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"env": env}]}}},
    }
    assert without_placement(job, "dagster-step-x") == {
        "metadata": {"labels": {}},
        "spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": [{"env": []}]}}},
    }
    job["metadata"]["labels"].pop(missing, None)
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [e for e in env if e["name"] != missing]
    with pytest.raises(AssertionError):
        without_placement(job, "dagster-step-x")
