"""Cluster declarations for the Kubernetes simulator (`infra/sim/*.yaml`).

```yaml
name: eks-a                 # kubeconfig context and cluster name
site: onprem                # free text, read by the placement policy
kubernetes_version: v1.30.4 # reported by /version and node status (optional)
image_pull_seconds: 0       # how long a bound pod waits in ContainerCreating before its process starts
nodes:
  - name: cpu-01            # one node ...
    allocatable: {cpu: "16", memory: 64Gi}
  - name: gpu-v100          # ... or a group: gpu-v100-01 … gpu-v100-27
    count: 27
    instance_type: dgx-1v   # → label node.kubernetes.io/instance-type
    zones: [dc1-a, dc1-b]   # → label topology.kubernetes.io/zone, round robin
    labels: {astromined.io/gpu: v100}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
    allocatable: {cpu: "62", memory: 480Gi, nvidia.com/gpu: 2, pods: 110}
    capacity: {...}         # optional, defaults to allocatable
    ready: true             # optional
    unschedulable: false    # optional (cordoned)
```
Errors name the file, the node entry and the field at fault.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from astromined.sim.kube.quantity import (
    QuantityError,
    is_extended_resource,
    is_whole,
    parse_quantity,
    parse_signed_quantity,
)
from astromined.sim.kube.selectors import SelectorError, validate_label_key, validate_label_value

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CLUSTER_KEYS = {"name", "site", "kubernetes_version", "image_pull_seconds", "nodes"}
_NODE_KEYS = {
    "name",
    "count",
    "labels",
    "taints",
    "allocatable",
    "capacity",
    "ready",
    "unschedulable",
    "instance_type",
    "zones",
}


class ClusterSpecError(ValueError):
    """A cluster YAML that cannot be simulated; the message names the file and field at fault."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    allocatable: dict[str, str]
    capacity: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    ready: bool = True
    unschedulable: bool = False


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    site: str
    nodes: tuple[NodeSpec, ...]
    kubernetes_version: str = "v1.30.4"
    image_pull_seconds: float = 0.0
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ClusterSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as error:
            raise ClusterSpecError(f"{path}: cannot read cluster file: {error}") from error
        except yaml.YAMLError as error:
            raise ClusterSpecError(f"{path}: not valid YAML: {error}") from error
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "ClusterSpec":
        if not isinstance(data, Mapping):
            raise ClusterSpecError(f"{source}: a cluster must be a mapping with name, site and nodes")
        unknown = sorted(set(data) - _CLUSTER_KEYS)
        if unknown:
            raise ClusterSpecError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(_CLUSTER_KEYS)}")
        name = data.get("name")
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
            raise ClusterSpecError(
                f"{source}: name: must be a lowercase DNS name such as 'eks-a', got {name!r}"
            )
        site = data.get("site")
        if not isinstance(site, str) or not site:
            raise ClusterSpecError(f"{source}: site: must be a non-empty string, got {site!r}")
        version = data.get("kubernetes_version", "v1.30.4")
        if not isinstance(version, str) or not re.fullmatch(r"v\d+\.\d+\.\d+", version):
            raise ClusterSpecError(f"{source}: kubernetes_version: must look like v1.30.4, got {version!r}")
        pull = data.get("image_pull_seconds", 0)
        if isinstance(pull, bool) or not isinstance(pull, int | float) or pull < 0:
            raise ClusterSpecError(f"{source}: image_pull_seconds: must be a number >= 0, got {pull!r}")
        entries = data.get("nodes")
        if not isinstance(entries, list) or not entries:
            raise ClusterSpecError(f"{source}: nodes: must be a non-empty list of nodes or node groups")
        nodes: list[NodeSpec] = []
        for index, entry in enumerate(entries):
            nodes.extend(_parse_node_entry(entry, f"{source}: nodes[{index}]"))
        seen: set[str] = set()
        for node in nodes:
            if node.name in seen:
                raise ClusterSpecError(f"{source}: node name {node.name!r} is declared more than once")
            seen.add(node.name)
        return cls(name, site, tuple(nodes), version, float(pull), source)

    def with_nodes(self, nodes: list[NodeSpec] | tuple[NodeSpec, ...]) -> "ClusterSpec":
        return replace(self, nodes=tuple(nodes))


def _parse_node_entry(entry: Any, where: str) -> list[NodeSpec]:
    if not isinstance(entry, Mapping):
        raise ClusterSpecError(f"{where}: must be a mapping with at least name and allocatable")
    name = entry.get("name")
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name) or len(name) > 240:
        raise ClusterSpecError(f"{where}: name: must be a lowercase DNS subdomain, got {name!r}")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - _NODE_KEYS)
    if unknown:
        raise ClusterSpecError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_NODE_KEYS)}")
    count = entry.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ClusterSpecError(f"{where}: count: must be a positive integer, got {count!r}")
    labels = _labels(entry.get("labels"), where)
    if entry.get("instance_type") is not None:
        if not isinstance(entry["instance_type"], str):
            raise ClusterSpecError(f"{where}: instance_type: must be a string")
        labels.setdefault("node.kubernetes.io/instance-type", entry["instance_type"])
        labels.setdefault("beta.kubernetes.io/instance-type", entry["instance_type"])
    zones = entry.get("zones") or []
    if not isinstance(zones, list) or not all(isinstance(zone, str) and zone for zone in zones):
        raise ClusterSpecError(f"{where}: zones: must be a list of zone names")
    taints = _taints(entry.get("taints"), where)
    allocatable = _resources(entry.get("allocatable"), f"{where}: allocatable", required=True)
    capacity = _resources(entry.get("capacity"), f"{where}: capacity", required=False) or dict(allocatable)
    for resource, value in allocatable.items():
        if resource in capacity and parse_quantity(value) > parse_quantity(capacity[resource]):
            raise ClusterSpecError(
                f"{where}: allocatable.{resource}: {value} exceeds capacity {capacity[resource]}"
            )
    ready = entry.get("ready", True)
    unschedulable = entry.get("unschedulable", False)
    for key, value in (("ready", ready), ("unschedulable", unschedulable)):
        if not isinstance(value, bool):
            raise ClusterSpecError(f"{where}: {key}: must be true or false, got {value!r}")
    width = len(str(count)) if count else 0
    names = [name] if count is None else [f"{name}-{i:0{max(width, 2)}d}" for i in range(1, count + 1)]
    nodes = []
    for i, node_name in enumerate(names):
        node_labels = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": node_name,
            **labels,
        }
        if zones:
            node_labels.setdefault("topology.kubernetes.io/zone", zones[i % len(zones)])
        nodes.append(
            NodeSpec(node_name, dict(allocatable), dict(capacity), node_labels, taints, ready, unschedulable)
        )
    return nodes


def _labels(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ClusterSpecError(f"{where}: labels: must be a mapping of label key to value")
    labels = {}
    for key, value in raw.items():
        value = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            validate_label_key(str(key))
            validate_label_value(value)
        except SelectorError as error:
            raise ClusterSpecError(f"{where}: labels.{key}: {error}") from None
        labels[str(key)] = value
    return labels


def _taints(raw: Any, where: str) -> tuple[dict[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ClusterSpecError(f"{where}: taints: must be a list of {{key, value, effect}}")
    taints = []
    for index, taint in enumerate(raw):
        at = f"{where}: taints[{index}]"
        if not isinstance(taint, Mapping) or "key" not in taint or "effect" not in taint:
            raise ClusterSpecError(f"{at}: needs key and effect")
        unknown = sorted(set(taint) - {"key", "value", "effect"})
        if unknown:
            raise ClusterSpecError(f"{at}: unknown field(s) {unknown}")
        if taint["effect"] not in TAINT_EFFECTS:
            raise ClusterSpecError(
                f"{at}: effect: must be one of {list(TAINT_EFFECTS)}, got {taint['effect']!r}"
            )
        try:
            validate_label_key(str(taint["key"]))
            if taint.get("value") is not None:
                validate_label_value(str(taint["value"]))
        except SelectorError as error:
            raise ClusterSpecError(f"{at}: {error}") from None
        clean = {"key": str(taint["key"]), "effect": taint["effect"]}
        if taint.get("value") is not None:
            clean["value"] = str(taint["value"])
        taints.append(clean)
    return tuple(taints)


def _resources(raw: Any, where: str, *, required: bool) -> dict[str, str]:
    if raw is None:
        if required:
            raise ClusterSpecError(f"{where}: required (cpu and memory at least)")
        return {}
    if not isinstance(raw, Mapping):
        raise ClusterSpecError(f"{where}: must be a mapping of resource name to quantity")
    resources = {}
    for resource, value in raw.items():
        try:
            quantity = parse_signed_quantity(value)
        except QuantityError as error:
            raise ClusterSpecError(f"{where}.{resource}: {error}") from None
        if quantity < 0:
            raise ClusterSpecError(f"{where}.{resource}: must not be negative, got {value!r}")
        if (is_extended_resource(str(resource)) or resource == "pods") and not is_whole(quantity):
            raise ClusterSpecError(f"{where}.{resource}: must be a whole number, got {value!r}")
        resources[str(resource)] = str(value)
    if required:
        for resource in ("cpu", "memory"):
            if resource not in resources:
                raise ClusterSpecError(f"{where}.{resource}: required")
        resources.setdefault("pods", "110")
    return resources
