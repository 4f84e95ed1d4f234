"""The deployment files validated offline: every overlay builds with kustomize, every resource validates
against the Kubernetes schemas of two versions (strict) or the prometheus-operator CRD schemas, the
generated PrometheusRule and dashboard ConfigMaps equal infra/monitoring, no Secret is committed, and the
Dockerfile ships the production config to where the code reads it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from support.deploy_checks import (
    CRD_KINDS,
    DOCKERFILE,
    INFRA,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    REPO,
    build,
    dockerfile_instructions,
    dockerfile_problems,
    ident,
    named,
    validate_builtin,
    validate_crd,
)

from astromined.monitoring import kube_manifests
from astromined.placement.executor import PRODUCTION_EXECUTOR_CONFIG

DEPLOY_DOC = REPO / "docs" / "deploy.md"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_every_resource_validates(overlay):
    docs = build(overlay)
    assert docs, overlay
    problems = []
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            problems += validate_crd(doc)
        else:
            for version in KUBERNETES_VERSIONS:
                problems += validate_builtin(doc, version)
    assert not problems, "\n".join(problems)
    names = [ident(d) for d in docs]
    assert len(names) == len(set(names)), "a resource is defined twice"


def test_only_the_onprem_overlay_runs_the_exporter_web_ui_and_rules():
    onprem = {ident(d) for d in build("eks-a")}
    cloud = {ident(d) for d in build("eks")}
    for resource in (
        "Deployment/astromined/astromined-exporter",
        "ServiceMonitor/astromined/astromined-exporter",
        "PrometheusRule/astromined/astromined",
        "Ingress/astromined/astromined-webui",
        "Deployment/astromined/astromined-oauth2-proxy",
    ):
        assert resource in onprem and resource not in cloud, resource
    assert named(build("eks-a"), "StorageClass", "vsphere-csi")["provisioner"] == "csi.vsphere.vmware.com"
    assert named(build("eks"), "StorageClass", "gp3")["parameters"]["type"] == "gp3"


@pytest.mark.fault("bad-config", "a ServiceMonitor field the prometheus-operator CRD does not have")
def test_crd_validation_rejects_an_unknown_field():
    monitor = copy.deepcopy(named(build("eks-a"), "ServiceMonitor", "astromined-exporter"))
    monitor["spec"]["endpoints"][0]["honorLabel"] = True  # the field is honorLabels
    assert validate_crd(monitor) == [
        "ServiceMonitor/astromined/astromined-exporter: unknown field .spec.endpoints[0].honorLabel"
    ]
    rule = copy.deepcopy(named(build("eks-a"), "PrometheusRule", "astromined"))
    rule["spec"]["groups"][0]["rules"][0]["expr"] = {"not": "a string"}
    assert validate_crd(rule)


@pytest.mark.fault("bad-config", "a Deployment field Kubernetes does not have (strict schema)")
def test_strict_schema_rejects_an_unknown_field():
    exporter = copy.deepcopy(named(build("eks-a"), "Deployment", "astromined-exporter"))
    exporter["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    for version in KUBERNETES_VERSIONS:
        assert validate_builtin(exporter, version), version


def test_generated_manifests_are_up_to_date():
    assert kube_manifests.differences() == [], "run: python -m astromined.monitoring.kube_manifests"


def test_prometheus_rule_groups_equal_the_promtool_tested_rules():
    rule = named(build("eks-a"), "PrometheusRule", "astromined")
    expected = []
    for path in sorted((INFRA / "monitoring" / "prometheus" / "rules").glob("*.rules.yml")):
        expected += yaml.safe_load(path.read_text())["groups"]
    assert rule["spec"]["groups"] == expected
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboard_config_maps_hold_the_generated_json_unchanged():
    dashboards = {p.name: p.read_text() for p in (INFRA / "monitoring" / "dashboards").glob("*.json")}
    config_maps = [
        d
        for d in build("eks-a")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("astromined-dashboard-")
    ]
    held = {}
    for config_map in config_maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        held.update(config_map["data"])
    assert held == dashboards
    assert all(json.loads(text)["uid"] for text in held.values())


@pytest.mark.fault(
    "tamper", "a hand-edited PrometheusRule / dashboard ConfigMap differs from infra/monitoring"
)
def test_generator_check_names_a_stale_manifest(tmp_path):
    kube_manifests.write_all(tmp_path)
    assert kube_manifests.differences(tmp_path) == []
    rule = tmp_path / "prometheusrule.yaml"
    rule.write_text(rule.read_text().replace("for: ", "for: 1", 1))
    (tmp_path / "grafana-dashboards.yaml").unlink()
    assert kube_manifests.differences(tmp_path) == [
        "prometheusrule.yaml: differs from the generator",
        "grafana-dashboards.yaml: missing",
    ]
    assert kube_manifests.main(["--check", "--out", str(tmp_path)]) == 1


def _secret_refs(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretRef", "secretKeyRef") and isinstance(value, dict):
                found.add(value["name"])
            elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                found.add(value["secretName"])
            elif key in (
                "secretName",
                "configSecret",
                "existingSecret",
                "postgresqlSecretName",
            ) and isinstance(value, str):
                found.add(value)
            else:
                _secret_refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _secret_refs(item, found)
    return found


def test_secrets_are_referenced_never_committed_and_each_is_documented():
    for path in INFRA.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), f"{path} commits a Secret"
    refs: set[str] = set()
    for overlay in OVERLAYS:
        _secret_refs(list(build(overlay)), refs)
    for values in (INFRA / "helm").glob("*.yaml"):
        _secret_refs(yaml.safe_load(values.read_text()), refs)
    helm_dagster = yaml.safe_load((INFRA / "helm" / "dagster-values.yaml").read_text())
    refs |= {e["name"] for e in helm_dagster["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    prometheus = yaml.safe_load((INFRA / "helm" / "kube-prometheus-stack-values.yaml").read_text())
    refs |= set(prometheus["alertmanager"]["alertmanagerSpec"]["secrets"])
    import assets.uplink

    refs |= {assets.uplink.SIGNING_KEY_SECRET}
    doc = DEPLOY_DOC.read_text()
    undocumented = sorted(
        name
        for name in refs
        if f"create secret generic {name} " not in doc and f"create secret tls {name} " not in doc
    )
    assert not undocumented, f"docs/deploy.md says how to create none of {undocumented}"
    assert f"create configmap {assets.uplink.FLEET_PUBLIC_KEY_CONFIG_MAP}" in doc


def test_alertmanager_secret_files_are_where_alertmanager_yml_reads_them():
    prometheus = yaml.safe_load((INFRA / "helm" / "kube-prometheus-stack-values.yaml").read_text())
    mounted = set(prometheus["alertmanager"]["alertmanagerSpec"]["secrets"])
    config = (INFRA / "monitoring" / "alertmanager" / "alertmanager.yml").read_text()
    read = set(re.findall(r"_file: /etc/alertmanager/secrets/([\w-]+)/", config))
    assert read and read == mounted


def test_dockerfile_is_non_root_pinned_and_ships_the_production_config():
    text = DOCKERFILE.read_text()
    assert dockerfile_problems(text) == []
    instructions = dockerfile_instructions(text)
    workdirs = [rest for word, rest in instructions if word == "WORKDIR"]
    repo_root = Path(workdirs[-1])
    copies = [rest.split() for word, rest in instructions if word == "COPY" and not rest.startswith("--from")]
    shipped = {
        (repo_root / dest / Path(src).name if dest.endswith("/") else Path(dest)).as_posix()
        for *sources, dest in copies
        for src in sources
    }
    # production_executor(REPO_ROOT) reads REPO_ROOT / PRODUCTION_EXECUTOR_CONFIG; REPO_ROOT is the directory
    # the package is installed editable from (pip install -e . in WORKDIR).
    assert (repo_root / PRODUCTION_EXECUTOR_CONFIG).as_posix() in shipped
    assert (repo_root / "infra/dagster/dagster-prod.yaml").as_posix() in shipped
    assert any(word == "RUN" and "pip install -e ." in rest for word, rest in instructions)
    build_workdirs = {rest for word, rest in instructions if word == "WORKDIR"}
    assert build_workdirs == {repo_root.as_posix()}, "the editable install and the final WORKDIR differ"
    # The code version recorded on every artifact (astromined/environment.py code_version).
    args = {rest.split("=")[0] for word, rest in instructions if word == "ARG"}
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    assert "ASTROMINED_CODE_VERSION" in args and "ASTROMINED_CODE_VERSION=${ASTROMINED_CODE_VERSION}" in env
    assert "ASTROMINED_ENV=prod" in env
    # CPU torch by default, the project's exact torch pin.
    pin = re.search(r'"torch==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert f"TORCH_VERSION={pin}" in {rest for word, rest in instructions if word == "ARG"}
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in {
        rest for word, rest in instructions if word == "ARG"
    }


def test_dockerignore_keeps_every_copied_path_in_the_context():
    ignore = (INFRA / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert patterns[0] == "**"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                src = src.rstrip("/")
                assert any(src == inc or src.startswith(inc + "/") for inc in included), src


@pytest.mark.fault("bad-config", "a Dockerfile running as root or from a floating base image")
def test_dockerfile_check_rejects_root_and_floating_base():
    good = DOCKERFILE.read_text()
    assert dockerfile_problems(good.replace("USER 10001:10001", "USER root")) == [
        "USER root: the final user must be a numeric non-root uid"
    ]
    assert dockerfile_problems(good.replace("USER 10001:10001\n", "")) == [
        "no USER: the image would run as root"
    ]
    floating = good.replace("python:3.11.11-slim-bookworm", "python:3.11-slim")
    assert dockerfile_problems(floating) == [
        "FROM python:3.11-slim: pin the base image to an exact version",
        "FROM python:3.11-slim: pin the base image to an exact version",
    ]
