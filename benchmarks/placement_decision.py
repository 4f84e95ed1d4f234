"""Placement decision time per GPU step against the Kubernetes API simulator: 1,000 nodes, 5,000 pods.

Usage:  .venv/bin/python benchmarks/placement_decision.py [--nodes 1000] [--pods 5000] [--rounds 15]
                                                          [--model-rounds 3]

Two simulated clusters (astromined.sim.kube) of ``--nodes`` nodes each (a fifth GPU nodes with 2 GPUs,
tainted and labelled like infra/sim/; the rest CPU nodes) and ``--pods`` pods each, bound and Running
(no process). On-prem, the pods hold every GPU but one, so the policy has to look at every GPU node.

Measured per round, in alternating order, over HTTP on loopback:
  decide      Placer.decide for a 1-GPU step with a fresh snapshot (snapshot_ttl_s=0): list the on-prem
              GPU nodes and the non-terminated pods as raw JSON, json.loads, add up the requests on GPU
              nodes, run the policy — the executor's whole decision for a step that fits on-prem;
  spill       the same for a step that fits nowhere on-prem: the decision adds a probe of the cloud API;
  warm        a decision right after another one (within snapshot_ttl_s, the default 2 s): the cached
              snapshot, the reservation ledger and the policy, as for steps launched together;
  baseline    the bare round trip of the two list calls (all nodes, non-terminated pods), read as bytes;
  parse       baseline + json.loads of both bodies: the floor of any JSON snapshot without a watch cache;
  models      (``--model-rounds``) the two list calls through the kubernetes client's default path,
              deserialized into V1Node/V1Pod objects: what a straightforward client-based snapshot costs.
Reported: median and p95 milliseconds, the paired ratios decide/baseline, decide/parse and
decide/models, and the target: decide < 200 ms per GPU step.
"""

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import kubernetes.client  # noqa: E402

from astromined.placement.placer import Placer  # noqa: E402
from astromined.placement.policy import Site, StepRequest  # noqa: E402
from astromined.placement.settings import settings_from_config  # noqa: E402
from astromined.placement.snapshot import NON_TERMINATED, load_api_client  # noqa: E402
from astromined.sim.kube import ClusterSpec, SimulatedCluster, write_kubeconfig  # noqa: E402

GPU_LABELS = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def cluster_spec(name: str, site: str, nodes: int) -> ClusterSpec:
    gpu_nodes = nodes // 5
    return ClusterSpec.from_dict(
        {
            "name": name,
            "site": site,
            "nodes": [
                {
                    "name": "gpu",
                    "count": gpu_nodes,
                    "labels": {**GPU_LABELS, "astromined.io/site": site},
                    "taints": [GPU_TAINT],
                    "allocatable": {"cpu": "40", "memory": "376Gi", "nvidia.com/gpu": "2", "pods": "110"},
                },
                {
                    "name": "cpu",
                    "count": nodes - gpu_nodes,
                    "labels": {"astromined.io/site": site},
                    "allocatable": {"cpu": "32", "memory": "250Gi", "pods": "110"},
                },
            ],
        }
    )


def fill(cluster: SimulatedCluster, pods: int, free_gpus: int) -> None:
    """Bind `pods` pods: one per GPU (all GPUs but `free_gpus`), the rest small CPU pods round robin."""
    nodes = cluster.nodes()
    gpu_slots = [
        n["metadata"]["name"]
        for n in nodes
        for _ in range(int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)))
    ]
    gpu_slots = gpu_slots[: max(len(gpu_slots) - free_gpus, 0)]
    cpu_nodes = [n["metadata"]["name"] for n in nodes if "nvidia.com/gpu" not in n["status"]["allocatable"]]
    bodies = []
    for i in range(pods):
        if i < len(gpu_slots):
            node, resources, tolerations = gpu_slots[i], {"limits": {"nvidia.com/gpu": "1"}}, [TOLERATION]
        else:
            node, resources, tolerations = cpu_nodes[i % len(cpu_nodes)], {"requests": {"cpu": "100m"}}, []
        bodies.append(
            {
                "metadata": {"name": f"load-{i}", "namespace": "default", "labels": {"app": "load"}},
                "spec": {
                    "nodeName": node,
                    "tolerations": tolerations,
                    "containers": [{"name": "c", "image": "load", "resources": resources}],
                },
            }
        )
    cluster.add_bound_pods(bodies)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--model-rounds", type=int, default=3)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        SimulatedCluster(cluster_spec("eks-a", "onprem", args.nodes)) as onprem,
        SimulatedCluster(cluster_spec("eks", "cloud", args.nodes)) as cloud,
    ):
        fill(onprem, args.pods, free_gpus=1)
        fill(cloud, args.pods, free_gpus=args.nodes)  # the cloud has room (its size does not matter here)
        kubeconfig = Path(tmp) / "kubeconfig"
        write_kubeconfig({"eks-a": onprem, "eks": cloud}, kubeconfig, current_context="eks-a")
        settings = settings_from_config({"kubeconfig_file": str(kubeconfig), "snapshot_ttl_s": 0})
        clients = {c.context: load_api_client(str(kubeconfig), c.context) for c in settings.clusters}
        cores = {name: kubernetes.client.CoreV1Api(client) for name, client in clients.items()}
        cold = Placer(settings, cores, "default")
        warm = Placer(dataclasses.replace(settings, snapshot_ttl_s=2.0), cores, "default")
        onprem_core = cores["eks-a"]
        request = StepRequest("candidate_model", gpus=1, cpu_millis=2000, memory_bytes=4 * 2**30)

        def decide() -> Site | None:
            return cold.decide(request).decision.site

        def spill() -> Site | None:
            return cold.decide(StepRequest("candidate_model", gpus=2)).decision.site  # no node has 2 free

        def warm_decide() -> Site | None:
            return warm.decide(request).decision.site

        def raw_lists() -> tuple[bytes, bytes]:
            nodes = onprem_core.list_node(_preload_content=False)
            pods = onprem_core.list_pod_for_all_namespaces(
                field_selector=NON_TERMINATED, _preload_content=False
            )
            try:
                return nodes.data, pods.data
            finally:
                nodes.release_conn()
                pods.release_conn()

        def baseline() -> int:
            return sum(len(body) for body in raw_lists())

        def parse() -> int:
            return sum(len(json.loads(body)["items"]) for body in raw_lists())

        def models() -> int:
            nodes = onprem_core.list_node()
            pods = onprem_core.list_pod_for_all_namespaces(field_selector=NON_TERMINATED)
            return len(nodes.items) + len(pods.items)

        assert decide() is Site.ONPREM, "the on-prem cluster should have exactly one free GPU"
        assert spill() is Site.CLOUD
        payload = baseline()
        assert parse() == args.nodes + args.pods
        cases = {"decide": decide, "spill": spill, "baseline": baseline, "parse": parse}
        times: dict[str, list[float]] = {name: [] for name in [*cases, "warm", "models"]}

        def timed(name: str, fn) -> None:
            started = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - started) * 1000)

        for round_ in range(args.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            for name in order:
                timed(name, cases[name])
            warm_decide()  # takes the snapshot ...
            timed("warm", warm_decide)  # ... the next decision reuses it
        for _ in range(args.model_rounds):
            timed("models", models)

    def median(name: str) -> float:
        return statistics.median(times[name])

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    print(f"## Placement decision time ({dt.date.today():%Y-%m-%d})\n")
    print(
        f"{args.nodes} nodes and {args.pods} pods per simulated cluster "
        f"({args.nodes // 5} GPU nodes x 2 GPUs, one on-prem GPU free), "
        f"{args.rounds} rounds, {payload / 1e6:.1f} MB of list JSON per snapshot.\n"
    )
    print("| measurement | median ms | p95 ms | rounds |")
    print("|---|---:|---:|---:|")
    for name in ("decide", "spill", "warm", "baseline", "parse", "models"):
        print(f"| {name} | {median(name):.1f} | {percentile(times[name], 0.95):.1f} | {len(times[name])} |")
    print()
    print(f"- decide / baseline (paired median): {paired('decide', 'baseline'):.2f}x")
    print(f"- decide / parse (paired median): {paired('decide', 'parse'):.2f}x")
    print(f"- decide / models (medians): {median('decide') / median('models'):.3f}x")
    print(f"- warm / decide (paired median): {paired('warm', 'decide'):.4f}x")
    verdict = "met" if median("decide") < 200 and median("spill") < 200 else "NOT met"
    print(
        f"- target < 200 ms per GPU step with a fresh snapshot: {verdict} "
        f"(decide {median('decide'):.0f} ms, spill {median('spill'):.0f} ms); "
        f"within snapshot_ttl_s: {median('warm'):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
