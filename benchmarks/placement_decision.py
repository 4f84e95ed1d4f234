"""Placement decision time per GPU step against the Kubernetes API simulator: 1,000 nodes, 5,000 pods.

Usage:  .venv/bin/python benchmarks/placement_decision.py [--nodes 1000] [--pods 5000] [--rounds 15]
                                                          [--model-rounds 3] [--churn-per-s 50]

Two simulated clusters (astromined.sim.kube) of ``--nodes`` nodes each (a fifth GPU nodes with 2 GPUs,
tainted and labelled like infra/sim/; the rest CPU nodes) and ``--pods`` pods each, bound and Running
(no process). On-prem, the pods hold every GPU but one, so the policy has to look at every GPU node.
While the watch-cache cases run, a background thread churns the on-prem cluster (``--churn-per-s`` pod
creations and deletions per second on CPU nodes), so the cache is applying events during the decisions.

Measured per round, in alternating order, over HTTP on loopback:
  decide      Placer.decide for a 1-GPU step as the executor runs it by default: one reachability probe
              of the on-prem API, the watch cache's snapshot (informer.py), the ledger and the policy;
  spill       the same for a step that fits nowhere on-prem: the decision adds a probe of the cloud API;
  list        Placer.decide with the watch cache off and a fresh list (snapshot_ttl_s=0): list the on-prem
              GPU nodes and the non-terminated pods as raw JSON, json.loads, add up, run the policy;
  warm        list mode, a decision right after another one (within snapshot_ttl_s, 2 s): cached list;
  baseline    the bare round trip of the two list calls (all nodes, non-terminated pods), read as bytes;
  parse       baseline + json.loads of both bodies: the floor of any snapshot listed per decision;
  models      (``--model-rounds``) the two list calls through the kubernetes client's default path,
              deserialized into V1Node/V1Pod objects: what a straightforward client-based snapshot costs.
Also: the watch cache's initial sync (start → first snapshot, paid once per run worker, in the
background) and its lag (a pod added to the simulated cluster → visible in the cache; the simulator, the
churn and the client share this one Python process and its GIL), and a check that after the churn the
cache equals a fresh list. Reported: median and p95 milliseconds, the paired ratios list/decide,
decide/baseline, and the target: decide < 200 ms per GPU step.
"""

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import kubernetes.client  # noqa: E402

from astromined.placement.placer import Placer  # noqa: E402
from astromined.placement.policy import Site, StepRequest  # noqa: E402
from astromined.placement.settings import settings_from_config  # noqa: E402
from astromined.placement.snapshot import (  # noqa: E402
    NON_TERMINATED,
    PLACEMENT_ID_LABEL,
    load_api_client,
    take_snapshot,
)
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


def churn(cluster: SimulatedCluster, per_second: float, stop: threading.Event) -> int:
    """Create and delete small pods on CPU nodes at ``per_second`` changes per second; returns how many."""
    cpu_node = first_cpu_node(cluster)
    changes, interval = 0, 1.0 / per_second if per_second > 0 else None
    while interval is not None and not stop.wait(interval):
        name = f"churn-{changes // 2}"
        if changes % 2 == 0:
            body = {
                "metadata": {"name": name, "namespace": "default", "labels": {"app": "churn"}},
                "spec": {
                    "nodeName": cpu_node,
                    "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m"}}}],
                },
            }
            cluster.add_bound_pods([body])
        else:
            cluster.api_delete("pods", "default", name, {"gracePeriodSeconds": 0})
        changes += 1
    return changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--model-rounds", type=int, default=3)
    parser.add_argument("--churn-per-s", type=float, default=50.0)
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
        listing = dataclasses.replace(settings, watch_cluster_state=False)
        watching = Placer(settings, cores, "default")
        cold = Placer(listing, cores, "default")
        warm = Placer(dataclasses.replace(listing, snapshot_ttl_s=2.0), cores, "default")
        onprem_core = cores["eks-a"]
        request = StepRequest("candidate_model", gpus=1, cpu_millis=2000, memory_bytes=4 * 2**30)

        sync_started = time.perf_counter()
        watching.start_watching()
        informer = watching.informer("eks-a")
        assert informer is not None and informer.snapshot(wait_s=120) is not None, informer.status()
        sync_ms = (time.perf_counter() - sync_started) * 1000

        def decide() -> Site | None:
            trace = watching.decide(request)
            assert trace.sources["eks-a"] == "watch cache", trace.sources
            return trace.decision.site

        def spill() -> Site | None:
            return watching.decide(StepRequest("candidate_model", gpus=2)).decision.site  # no node has 2 free

        def list_decide() -> Site | None:
            return cold.decide(request).decision.site

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
        assert list_decide() is Site.ONPREM
        assert spill() is Site.CLOUD
        payload = baseline()
        assert parse() == args.nodes + args.pods
        cases = {"decide": decide, "spill": spill, "list": list_decide, "baseline": baseline, "parse": parse}
        times: dict[str, list[float]] = {name: [] for name in [*cases, "warm", "models", "lag"]}

        def timed(name: str, fn) -> None:
            started = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - started) * 1000)

        cpu_node = first_cpu_node(onprem)
        stop = threading.Event()
        churned: list[int] = []
        churner = threading.Thread(target=lambda: churned.append(churn(onprem, args.churn_per_s, stop)))
        churner.start()
        events_before = informer.status()["pods"]["events"]
        try:
            for round_ in range(args.rounds):
                order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
                for name in order:
                    timed(name, cases[name])
                warm_decide()  # takes the snapshot ...
                timed("warm", warm_decide)  # ... the next decision reuses it
                probe_id = f"lag-probe-{round_}"
                probe_pod = lag_probe(cpu_node, probe_id)
                started = time.perf_counter()
                onprem.add_bound_pods([probe_pod])
                informer.wait_for(lambda s, pid=probe_id: pid in s.seen_placement_ids, timeout=30)
                times["lag"].append((time.perf_counter() - started) * 1000)
        finally:
            stop.set()
            churner.join()
        events = informer.status()["pods"]["events"] - events_before
        for _ in range(args.model_rounds):
            timed("models", models)
        consistent = wait_consistent(informer, onprem_core)
        watching.close()

    def median(name: str) -> float:
        return statistics.median(times[name])

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    print(f"## Placement decision time ({dt.date.today():%Y-%m-%d})\n")
    print(
        f"{args.nodes} nodes and {args.pods} pods per simulated cluster "
        f"({args.nodes // 5} GPU nodes x 2 GPUs, one on-prem GPU free), "
        f"{args.rounds} rounds, {payload / 1e6:.1f} MB of list JSON per listed snapshot; "
        f"churn: {churned[0] if churned else 0} pod changes, {events} watch events applied in the rounds.\n"
    )
    print("| measurement | median ms | p95 ms | rounds |")
    print("|---|---:|---:|---:|")
    for name in ("decide", "spill", "list", "warm", "baseline", "parse", "models", "lag"):
        print(f"| {name} | {median(name):.1f} | {percentile(times[name], 0.95):.1f} | {len(times[name])} |")
    print(f"| initial sync of the watch cache (once) | {sync_ms:.0f} | | 1 |")
    print()
    print(f"- list / decide (paired median): {paired('list', 'decide'):.0f}x")
    print(f"- decide / baseline (paired median): {paired('decide', 'baseline'):.4f}x")
    print(f"- list / parse (paired median): {paired('list', 'parse'):.2f}x")
    print(f"- cache equals a fresh list after the churn: {consistent}")
    verdict = "met" if median("decide") < 200 and median("spill") < 200 else "NOT met"
    print(
        f"- target < 200 ms per GPU step: {verdict} with the watch cache "
        f"(decide {median('decide'):.1f} ms, spill {median('spill'):.1f} ms); "
        f"listing per decision: {median('list'):.0f} ms"
    )
    return 0 if consistent else 1


def first_cpu_node(cluster: SimulatedCluster) -> str:
    return next(n["metadata"]["name"] for n in cluster.nodes() if n["metadata"]["name"].startswith("cpu"))


def lag_probe(cpu_node: str, placement_id: str) -> dict:
    """A pod carrying a placement id, bound to a CPU node: the lag is until the cache has seen it."""
    return {
        "metadata": {
            "name": placement_id,
            "namespace": "default",
            "labels": {PLACEMENT_ID_LABEL: placement_id},
        },
        "spec": {"nodeName": cpu_node, "containers": [{"name": "c", "image": "x"}]},
    }


def wait_consistent(informer, core, timeout: float = 30.0) -> bool:
    """The cache equals a fresh list once the churn has stopped (within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        truth = take_snapshot(core, "eks-a", Site.ONPREM, node_selector=GPU_LABELS)
        cached = informer.snapshot()
        if cached is not None and (cached.nodes, cached.seen_placement_ids) == (
            truth.nodes,
            truth.seen_placement_ids,
        ):
            return True
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    sys.exit(main())
