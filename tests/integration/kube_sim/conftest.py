"""A small two-node simulated cluster and `kubernetes` clients bound to it through a generated kubeconfig."""

from pathlib import Path

import pytest
from support.kube_sim import SMALL_CLUSTER, Clients

from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig


@pytest.fixture
def cluster(tmp_path: Path):
    sim = SimulatedCluster(ClusterSpec.from_dict(SMALL_CLUSTER), workdir=tmp_path, job_backoff_seconds=0.2)
    with sim:
        yield sim


@pytest.fixture
def clients(cluster: SimulatedCluster, tmp_path: Path) -> Clients:
    path = write_kubeconfig({"eks-a": cluster}, tmp_path / "kubeconfig.yaml", current_context="eks-a")
    clients = Clients(path, "eks-a")
    clients.core.create_namespace({"metadata": {"name": "dagster"}})
    return clients
