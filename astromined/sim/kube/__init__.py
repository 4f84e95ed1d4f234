"""A Kubernetes API simulator for tests and demos: local HTTP servers speaking the subset of the Kubernetes
REST API that the `kubernetes` client and dagster-k8s use, with a scheduler, a job controller and a kubelet
that runs each pod's container command as a local process. See docs/kubernetes-simulator.md.

```python
spec = ClusterSpec.from_yaml("infra/sim/eks-a.yaml")
with SimulatedCluster(spec) as cluster:
    write_kubeconfig({"eks-a": cluster}, "kubeconfig.yaml")
```
"""

from astromined.sim.kube.cluster import NO_RUN_ANNOTATION, SimulatedCluster
from astromined.sim.kube.kubeconfig import kubeconfig_dict, write_kubeconfig
from astromined.sim.kube.objects import ApiError
from astromined.sim.kube.quantity import QuantityError, parse_quantity, to_units
from astromined.sim.kube.spec import ClusterSpec, ClusterSpecError, NodeSpec

__all__ = [
    "NO_RUN_ANNOTATION",
    "ApiError",
    "ClusterSpec",
    "ClusterSpecError",
    "NodeSpec",
    "QuantityError",
    "SimulatedCluster",
    "kubeconfig_dict",
    "parse_quantity",
    "to_units",
    "write_kubeconfig",
]
