from pathlib import Path

import pytest

from astromined.sim.kube.spec import ClusterSpec, ClusterSpecError

REPO = Path(__file__).resolve().parents[4]


def cluster(**node_overrides):
    node = {
        "name": "gpu",
        "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1},
        **node_overrides,
    }
    return {
        "name": "eks-a",
        "site": "onprem",
        "nodes": [{"name": "cpu", "allocatable": {"cpu": 1, "memory": "1Gi"}}, node],
    }


def test_shipped_clusters_load():
    onprem = ClusterSpec.from_yaml(REPO / "infra/sim/eks-a.yaml")
    cloud = ClusterSpec.from_yaml(REPO / "infra/sim/eks.yaml")
    assert (onprem.name, onprem.site, cloud.name, cloud.site) == ("eks-a", "onprem", "eks", "cloud")
    v100 = [n for n in onprem.nodes if n.labels.get("astromined.io/gpu") == "v100"]
    assert len(v100) == 27 and all(n.allocatable["nvidia.com/gpu"] == "2" for n in v100)
    assert all(
        n.taints == ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},) for n in v100
    )
    assert {n.labels.get("eks.amazonaws.com/nodegroup") for n in cloud.nodes} == {
        "gpu-p3",
        "gpu-g5",
        "cpu-general",
    }
    for small in ("eks-a-small.yaml", "eks-small.yaml"):
        assert ClusterSpec.from_yaml(REPO / "infra/sim" / small).nodes


def test_node_groups_expand_with_padded_names_and_standard_labels():
    spec = ClusterSpec.from_dict(cluster(count=12, zones=["z1", "z2"], instance_type="p3.8xlarge"))
    names = [n.name for n in spec.nodes]
    assert names[1:3] == ["gpu-01", "gpu-02"] and names[-1] == "gpu-12"
    first = spec.nodes[1]
    assert first.labels["kubernetes.io/hostname"] == "gpu-01"
    assert (
        first.labels["topology.kubernetes.io/zone"] == "z1"
        and spec.nodes[2].labels["topology.kubernetes.io/zone"] == "z2"
    )
    assert first.labels["node.kubernetes.io/instance-type"] == "p3.8xlarge"
    assert first.allocatable["pods"] == "110"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"allocatable": {"cpu": "lots", "memory": "1Gi"}},
            r"nodes\[1\] \(gpu\): allocatable.cpu: not a Kubernetes quantity: 'lots'",
        ),
        ({"allocatable": {"cpu": "1"}}, r"nodes\[1\] \(gpu\): allocatable.memory: required"),
        (
            {"allocatable": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "0.5"}},
            r"allocatable.nvidia.com/gpu: must be a whole number",
        ),
        (
            {"taints": [{"key": "nvidia.com/gpu", "effect": "NoWay"}]},
            r"nodes\[1\] \(gpu\): taints\[0\]: effect: must be one of",
        ),
        ({"labels": {"bad key!": "x"}}, r"nodes\[1\] \(gpu\): labels.bad key!: invalid label key"),
        ({"count": 0}, r"nodes\[1\] \(gpu\): count: must be a positive integer"),
        ({"gpus": 2}, r"nodes\[1\] \(gpu\): unknown field\(s\) \['gpus'\]"),
        ({"ready": "yes"}, r"nodes\[1\] \(gpu\): ready: must be true or false"),
        ({"capacity": {"cpu": "4"}}, r"allocatable.cpu: 8 exceeds capacity 4"),
    ],
)
def test_errors_name_the_node_and_field(override, message):
    with pytest.raises(ClusterSpecError, match=message):
        ClusterSpec.from_dict(cluster(**override), source="eks-a.yaml")


def test_cluster_level_errors(tmp_path):
    with pytest.raises(ClusterSpecError, match=r"more than once"):
        ClusterSpec.from_dict(cluster(name="cpu"))
    with pytest.raises(ClusterSpecError, match=r"name: must be a lowercase DNS name"):
        ClusterSpec.from_dict({**cluster(), "name": "EKS A"})
    with pytest.raises(ClusterSpecError, match=r"nodes: must be a non-empty list"):
        ClusterSpec.from_dict({"name": "x", "site": "s", "nodes": []})
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ClusterSpecError, match=r"broken\.yaml: not valid YAML"):
        ClusterSpec.from_yaml(broken)
