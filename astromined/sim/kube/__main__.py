"""Run simulated clusters until SIGINT/SIGTERM:

    python -m astromined.sim.kube --cluster infra/sim/eks-a.yaml --cluster infra/sim/eks.yaml \\
        --kubeconfig .state/sim-kubeconfig.yaml

Each cluster's name (from its YAML) is its kubeconfig context; the first is the current context unless
--current-context says otherwise.
"""

import argparse
import signal
import sys
import threading
from pathlib import Path

from astromined.sim.kube.cluster import SimulatedCluster
from astromined.sim.kube.kubeconfig import write_kubeconfig
from astromined.sim.kube.spec import ClusterSpec, ClusterSpecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m astromined.sim.kube", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cluster", action="append", required=True, help="cluster YAML (repeatable)")
    parser.add_argument("--kubeconfig", required=True, type=Path, help="where to write the kubeconfig")
    parser.add_argument("--current-context", default=None)
    parser.add_argument("--workdir", default=None, help="working directory of pod processes (default: cwd)")
    parser.add_argument(
        "--port", type=int, action="append", default=None, help="port per cluster (default: any)"
    )
    args = parser.parse_args(argv)
    try:
        specs = [ClusterSpec.from_yaml(path) for path in args.cluster]
    except ClusterSpecError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        sys.stderr.write(f"error: cluster names must be unique, got {names}\n")
        return 2
    ports = args.port or [0] * len(specs)
    if len(ports) != len(specs):
        sys.stderr.write("error: give --port once per --cluster or not at all\n")
        return 2
    clusters = {
        spec.name: SimulatedCluster(spec, workdir=args.workdir, port=port)
        for spec, port in zip(specs, ports, strict=True)
    }
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for cluster in clusters.values():
            cluster.start()
        path = write_kubeconfig(clusters, args.kubeconfig, current_context=args.current_context)
        for name, cluster in clusters.items():
            sys.stdout.write(
                f"{name} (site {cluster.site}, {len(cluster.spec.nodes)} nodes): {cluster.url}\n"
            )
        sys.stdout.write(f"kubeconfig: {path}\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        for cluster in clusters.values():
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
