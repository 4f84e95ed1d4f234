"""Least privilege: each service account is granted exactly the Kubernetes API calls its code makes.

The calls are found in the code (``<x>_api.<method>`` of the Kubernetes Python client) and mapped to RBAC
rules by API_CALLS. A new call in the code fails this test until its line is added here (and the verb to
infra/k8s/base/rbac.yaml); a verb granted that no code uses fails it too.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster_k8s
import pytest
from support.deploy_checks import OVERLAYS, REPO, build

# Kubernetes client method -> (API group, resource, verbs, cluster-scoped?). One line per method.
API_CALLS: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    "create_namespaced_job": ("batch", "jobs", ("create",), False),
    "list_namespaced_job": ("batch", "jobs", ("list",), False),
    "read_namespaced_job_status": ("batch", "jobs/status", ("get",), False),
    "delete_namespaced_job": ("batch", "jobs", ("delete",), False),
    "read_namespaced_pod": ("", "pods", ("get",), False),
    "list_namespaced_pod": ("", "pods", ("list",), False),
    "delete_namespaced_pod": ("", "pods", ("delete",), False),
    "read_namespaced_pod_log": ("", "pods/log", ("get",), False),
    "list_namespaced_event": ("", "events", ("list",), False),
    # informer.py lists then watches nodes and pods (the GPU decisions' cache).
    "list_node": ("", "nodes", ("list", "watch"), True),
    "read_node": ("", "nodes", ("get",), True),
    "list_pod_for_all_namespaces": ("", "pods", ("list", "watch"), True),
    "read_namespace": ("", "namespaces", ("get",), True),
    # astromined/readiness/kube.py (the cluster readiness assets run as the run worker's account).
    "read_namespaced_daemon_set": ("apps", "daemonsets", ("get",), False),
    "list_storage_class": ("storage.k8s.io", "storageclasses", ("list",), True),
    "create_self_subject_access_review": (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        ("create",),
        True,
    ),
}
CALL = re.compile(r"\b(?:core|batch|apps|authorization|storage|rbac|custom_objects)_api\.(\w+)")
PACKAGE = Path(dagster_k8s.__file__).parent


def _files(*patterns: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    found = []
    for pattern in patterns:
        base = PACKAGE if pattern.startswith("dagster_k8s/") else REPO
        relative = pattern.removeprefix("dagster_k8s/")
        found += [p for p in base.glob(relative) if not any(part in p.as_posix() for part in exclude)]
    return sorted(set(found))


# Whose code runs under which service account (the exporter, steps and web proxy call no API today).
CODE_OF_ACCOUNT = {
    # The run worker: the placement executor and the dagster-k8s client/step handler it drives.
    "astromined-run": _files(
        "astromined/placement/*.py",
        "astromined/readiness/*.py",
        "dagster_k8s/client.py",
        "dagster_k8s/executor.py",
        exclude=("/demo.py",),
    ),
    "astromined-exporter": _files("astromined/monitoring/**/*.py"),
    # Step pods run the asset code, its resources and the library under it (not the executor or simulators).
    "astromined-step": _files(
        "assets/**/*.py",
        "resources/**/*.py",
        "astromined/**/*.py",
        exclude=("/placement/", "/sim/", "/monitoring/", "/readiness/"),
    ),
}
# Accounts of pods that must never hold a Kubernetes API token.
NO_API_ACCOUNTS = (
    "astromined-step",
    "astromined-step-irsa",
    "astromined-exporter",
    "astromined-oauth2-proxy",
)


def used_rules(files: list[Path]) -> set[tuple[str, str, str, bool]]:
    rules = set()
    unknown = []
    for path in files:
        for method in CALL.findall(path.read_text(encoding="utf-8")):
            if method not in API_CALLS:
                unknown.append(f"{path}: {method}")
                continue
            group, resource, verbs, cluster = API_CALLS[method]
            rules |= {(group, resource, verb, cluster) for verb in verbs}
    assert not unknown, f"Kubernetes API calls with no line in API_CALLS: {unknown}"
    return rules


def granted_rules(docs, account: str) -> set[tuple[str, str, str, bool]]:
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Role", "ClusterRole")}
    granted = set()
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"]):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        cluster = role["kind"] == "ClusterRole"
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], f"wildcard in {rule}"
            granted |= {
                (group, resource, verb, cluster)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return granted


def test_the_code_scan_finds_the_calls_it_maps():
    run_worker = used_rules(CODE_OF_ACCOUNT["astromined-run"])
    assert ("batch", "jobs", "create", False) in run_worker
    assert ("", "nodes", "watch", True) in run_worker
    informer = (REPO / "astromined" / "placement" / "informer.py").read_text()
    assert "watch=True" in informer, "the watch verb is granted for informer.py's watch streams"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("account", sorted(CODE_OF_ACCOUNT))
def test_each_account_is_granted_exactly_what_its_code_calls(overlay, account):
    assert granted_rules(build(overlay), account) == used_rules(CODE_OF_ACCOUNT[account])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_that_call_no_api_get_no_token_and_no_binding(overlay):
    docs = build(overlay)
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for name in NO_API_ACCOUNTS:
        if name in CODE_OF_ACCOUNT:
            assert used_rules(CODE_OF_ACCOUNT[name]) == set(), name
        assert accounts[name].get("automountServiceAccountToken") is False, name
        assert granted_rules(docs, name) == set(), name
    for workload in (d for d in docs if d["kind"] in ("Deployment", "DaemonSet")):
        spec = workload["spec"]["template"]["spec"]
        if spec.get("serviceAccountName") in NO_API_ACCOUNTS:
            assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]


@pytest.mark.fault("bad-config", "a Role granting a verb no code uses, or code calling an API no Role grants")
def test_an_extra_or_missing_verb_is_caught(tmp_path):
    new_call = tmp_path / "readiness.py"
    new_call.write_text("apps_api.create_namespaced_daemon_set(namespace, body)\n")
    docs = [dict(d) for d in build("eks-a")]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "astromined-run-worker")
    widened = {
        **role,
        "rules": [*role["rules"], {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    docs[docs.index(role)] = widened
    extra = granted_rules(docs, "astromined-run") - used_rules(CODE_OF_ACCOUNT["astromined-run"])
    assert extra == {("", "secrets", "get", False)}
    with pytest.raises(AssertionError, match="create_namespaced_daemon_set"):
        used_rules([new_call])
