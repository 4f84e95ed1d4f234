"""The simulated kubelet: admits pod objects into the store, runs a bound pod's first container as a local
process (`astromined.sim.kube.process`) after the image-pull delay, writes the pod's phase and container
statuses, restarts containers under `restartPolicy`, and deletes pods with a termination grace period.

Timers (start after image pull, restart back-off, SIGKILL after grace) are fields of each `PodRuntime`;
the controller loop calls `start_due` and asks `deadlines` when to wake. Container processes report their
exit from their own threads (`_on_exit`), which takes the store lock.
"""

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from astromined.sim.kube import objects as o
from astromined.sim.kube.events import EventRecorder
from astromined.sim.kube.process import ContainerProcess, PodLog, container_argv, container_env
from astromined.sim.kube.scheduler import pod_requests
from astromined.sim.kube.scheduling import PodScheduler
from astromined.sim.kube.status import base_container_status, condition
from astromined.sim.kube.store import Key, ObjectStore

NO_RUN_ANNOTATION = "sim.astromined.io/run"


@dataclass
class PodRuntime:
    requests: dict[str, int]
    run: bool
    node: str | None = None  # node whose capacity this pod holds (bound and not terminated)
    start_at: float | None = None
    process: ContainerProcess | None = None
    restart_at: float | None = None
    kill_at: float | None = None
    deleting: bool = False
    log: PodLog = field(default_factory=PodLog)
    started_at: str | None = None


class PodOwners(Protocol):
    """What the kubelet tells the controllers that own pods (the job controller)."""

    def pod_admitted(self, key: Key, pod: Mapping[str, Any]) -> None: ...

    def pod_changed(self, pod: Mapping[str, Any]) -> None: ...

    def pod_deleted(self, key: Key, pod: Mapping[str, Any]) -> None: ...


class _NoOwners:
    def pod_admitted(self, key: Key, pod: Mapping[str, Any]) -> None:
        pass

    def pod_changed(self, pod: Mapping[str, Any]) -> None:
        pass

    def pod_deleted(self, key: Key, pod: Mapping[str, Any]) -> None:
        pass


class Kubelet:
    """Pod runtimes and container processes of one cluster (every node's kubelet at once)."""

    def __init__(
        self,
        store: ObjectStore,
        events: EventRecorder,
        scheduler: PodScheduler,
        runtimes: dict[Key, PodRuntime],
        wake: threading.Event,
        *,
        cluster_name: str,
        base_env: Mapping[str, str],
        workdir: str,
        image_pull_seconds: float,
        restart_backoff_seconds: float,
        max_grace_seconds: float,
    ):
        self._store = store
        self._events = events
        self._scheduler = scheduler
        self.runtimes = runtimes
        self._wake = wake
        self._cluster_name = cluster_name
        self.base_env = dict(base_env)
        self.workdir = workdir
        self.image_pull_seconds = image_pull_seconds
        self.restart_backoff_seconds = restart_backoff_seconds
        self.max_grace_seconds = max_grace_seconds
        self.owners: PodOwners = _NoOwners()  # the cluster connects the job controller
        self._pod_ip = 0

    # --- admission and deletion -----------------------------------------------------------------------------

    def admit(self, pod: dict[str, Any]) -> None:
        """Put an admitted pod object (`objects.admit_pod`) in the store: bound at once when it names a
        node, else queued for the scheduler."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        run = (pod["metadata"].get("annotations") or {}).get(NO_RUN_ANNOTATION) != "false"
        rt = PodRuntime(requests=pod_requests(pod["spec"]), run=run)
        self.runtimes[key] = rt
        self.owners.pod_admitted(key, pod)
        self._store.put("pods", pod)
        node = pod["spec"].get("nodeName")
        if node:
            self._scheduler.bind(key, node, scheduled_by_us=False)
        else:
            self._scheduler.enqueue(key)

    def pod_bound(self, key: Key) -> None:
        """The scheduler bound the pod: its process starts after the image pull (or, for a pod that runs
        nothing, it is Running now)."""
        rt = self.runtimes[key]
        if rt.run:
            rt.start_at = time.monotonic() + self.image_pull_seconds
        else:
            self._mark_running(key, process=None)

    def delete(self, key: Key, grace: int | None) -> bytes:
        """Delete a pod: at once when no process runs, else SIGTERM now, SIGKILL after the grace period, and
        gone when the process has exited. Returns the pod JSON the API answers with."""
        store = self._store
        pod, rt = store.objects["pods"][key], self.runtimes[key]
        self._scheduler.forget(key)
        rt.start_at = None
        rt.restart_at = None
        if rt.process is not None and rt.process.running():
            seconds = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            if not rt.deleting:
                rt.deleting = True
                pod["metadata"]["deletionTimestamp"] = o.now()
                pod["metadata"]["deletionGracePeriodSeconds"] = seconds
                self._events.record(
                    pod,
                    "Normal",
                    "Killing",
                    f"Stopping container {pod['spec']['containers'][0]['name']}",
                    "kubelet",
                )
                store.touch("pods", pod)
                if seconds <= 0:
                    rt.process.kill()
                else:
                    rt.process.terminate()
                    rt.kill_at = time.monotonic() + min(seconds, self.max_grace_seconds)
            return store.with_kind("pods", store.item_json("pods", key))
        pod["metadata"]["deletionTimestamp"] = o.now()
        pod["metadata"]["deletionGracePeriodSeconds"] = 0
        result = store.with_kind("pods", json.dumps(pod, separators=(",", ":")).encode())
        self._finalize_deletion(key)
        return result

    def _finalize_deletion(self, key: Key) -> None:
        store = self._store
        pod = store.objects["pods"].get(key)
        if pod is not None:
            store.pods_on_node.get(pod["spec"].get("nodeName", ""), set()).discard(key)
        self._scheduler.release(key)
        self.runtimes.pop(key, None)
        self._scheduler.forget(key)
        store.remove("pods", key)
        if pod is not None:
            self.owners.pod_deleted(key, pod)

    # --- containers -----------------------------------------------------------------------------------------

    def start_due(self, now: float) -> None:
        for key, rt in list(self.runtimes.items()):
            if rt.start_at is not None and rt.start_at <= now and rt.process is None and not rt.deleting:
                rt.start_at = None
                self._start_container(key)
            elif rt.restart_at is not None and rt.restart_at <= now and not rt.deleting:
                rt.restart_at = None
                self._start_container(key)
            if rt.kill_at is not None and rt.kill_at <= now and rt.process is not None:
                rt.kill_at = None
                rt.process.kill()

    def deadlines(self, now: float) -> Iterator[float]:
        """Seconds until each pending timer (negative: overdue)."""
        for rt in self.runtimes.values():
            for at in (rt.start_at, rt.restart_at, rt.kill_at):
                if at is not None:
                    yield at - now

    def _start_container(self, key: Key) -> None:
        pod, rt = self._store.objects["pods"][key], self.runtimes[key]
        container = pod["spec"]["containers"][0]
        env, warnings = container_env(pod, container, self.base_env)
        for warning in warnings:
            self._events.record(pod, "Warning", "SimulatorUnresolvedEnv", warning, "kubelet")
        argv = container_argv(container, env)
        if not argv:
            self._container_finished(
                key,
                128,
                "StartError",
                "no command: the simulator has no image ENTRYPOINT; set command or args",
            )
            return
        if rt.started_at is None:
            self._events.record(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{container["image"]}" already present on machine',
                "kubelet",
            )
        try:
            process = ContainerProcess(
                argv, env, self.workdir, rt.log, lambda code, key=key: self._on_exit(key, code)
            )
        except OSError as error:
            self._container_finished(
                key, 128, "StartError", f"failed to start container process {argv[0]!r}: {error}"
            )
            return
        rt.process = process
        self._events.record(pod, "Normal", "Created", f"Created container {container['name']}", "kubelet")
        self._events.record(pod, "Normal", "Started", f"Started container {container['name']}", "kubelet")
        self._mark_running(key, process)
        self._store.touch("pods", pod)

    def _mark_running(self, key: Key, process: ContainerProcess | None) -> None:
        pod, rt = self._store.objects["pods"][key], self.runtimes[key]
        stamp = o.now()
        rt.started_at = rt.started_at or stamp
        self._pod_ip += 1
        status = pod["status"]
        status["phase"] = "Running"
        status.setdefault(
            "podIP",
            f"10.{100 + self._pod_ip // 65536 % 100}.{self._pod_ip // 256 % 256}.{self._pod_ip % 256}",
        )
        status["podIPs"] = [{"ip": status["podIP"]}]
        status["conditions"] = [
            condition("PodReadyToStartContainers", "True", stamp),
            condition("Initialized", "True", stamp),
            condition("Ready", "True", stamp),
            condition("ContainersReady", "True", stamp),
            condition("PodScheduled", "True", status.get("startTime", stamp)),
        ]
        statuses = []
        previous = {s["name"]: s for s in status.get("containerStatuses") or []}
        for index, container in enumerate(pod["spec"]["containers"]):
            old = previous.get(container["name"], {})
            entry = base_container_status(container, old.get("restartCount", 0))
            entry["lastState"] = old.get("lastState", {})
            if index == 0:
                pid = process.pid if process is not None else 0
                entry.update(
                    ready=True,
                    started=True,
                    containerID=f"sim://{self._cluster_name}/{pid}",
                    state={"running": {"startedAt": stamp}},
                )
            else:
                entry.update(
                    containerID=f"sim://{self._cluster_name}/none",
                    state={
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": "the simulator runs only the first container",
                            "startedAt": stamp,
                            "finishedAt": stamp,
                        }
                    },
                )
            statuses.append(entry)
        status["containerStatuses"] = statuses

    def _on_exit(self, key: Key, code: int) -> None:
        with self._store.lock:
            rt = self.runtimes.get(key)
            if rt is None:
                return
            rt.process = None
            rt.kill_at = None
            reason = "Completed" if code == 0 else "Error"
            self._container_finished(key, code, reason, None)
        self._wake.set()

    def _container_finished(self, key: Key, code: int, reason: str, message: str | None) -> None:
        pod, rt = self._store.objects["pods"][key], self.runtimes[key]
        if rt.deleting:
            self._finalize_deletion(key)
            return
        stamp = o.now()
        rt.started_at = rt.started_at or stamp
        status = pod["status"]
        container = pod["spec"]["containers"][0]
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": rt.started_at or stamp,
            "finishedAt": stamp,
            "containerID": (status.get("containerStatuses") or [{}])[0].get(
                "containerID", f"sim://{self._cluster_name}/0"
            ),
        }
        if message:
            terminated["message"] = message
        first = dict((status.get("containerStatuses") or [base_container_status(container, 0)])[0])
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            first.update(
                restartCount=first.get("restartCount", 0) + 1,
                ready=False,
                started=False,
                lastState={"terminated": terminated},
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off restarting failed container {container['name']}",
                    }
                },
            )
            status["containerStatuses"] = [first, *(status.get("containerStatuses") or [])[1:]]
            rt.restart_at = time.monotonic() + self.restart_backoff_seconds
            self._events.record(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {container['name']}",
                "kubelet",
            )
            self._store.touch("pods", pod)
            self.owners.pod_changed(pod)
            return
        first.update(ready=False, started=False, state={"terminated": terminated})
        status["containerStatuses"] = [first, *(status.get("containerStatuses") or [])[1:]]
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        conditions = [
            c for c in status.get("conditions") or [] if c["type"] not in ("Ready", "ContainersReady")
        ]
        for kind in ("Ready", "ContainersReady"):
            conditions.append({**condition(kind, "False", stamp), "reason": "PodCompleted"})
        status["conditions"] = conditions
        self._scheduler.release(key)
        self._store.touch("pods", pod)
        self.owners.pod_changed(pod)

    # --- logs and processes ---------------------------------------------------------------------------------

    def read_log(self, namespace: str, name: str, query: Mapping[str, str]) -> bytes:
        """`GET .../pods/NAME/log`: the first container's output (other containers never ran: empty)."""
        with self._store.lock:
            pod = self._store.objects["pods"].get((namespace, name))
            if pod is None:
                raise o.not_found("pods", name)
            containers = [c["name"] for c in pod["spec"]["containers"]]
            container = query.get("container") or containers[0]
            if container not in containers:
                if len(containers) > 1 and not query.get("container"):
                    raise o.bad_request(
                        f"a container name must be specified for pod {name}, choose one of: {containers}"
                    )
                raise o.bad_request(f"container {container} is not valid for pod {name}")
            rt = self.runtimes[(namespace, name)]
            if container == containers[0] and rt.started_at is None:
                reason = "ContainerCreating" if pod["spec"].get("nodeName") else "Pending"
                raise o.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
            log = rt.log if container == containers[0] else PodLog()
        return log.render(
            tail_lines=int(query["tailLines"]) if query.get("tailLines") else None,
            timestamps=query.get("timestamps") in ("true", "1", "True"),
            limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None,
            since_seconds=int(query["sinceSeconds"]) if query.get("sinceSeconds") else None,
        )

    def container_pid(self, key: Key) -> int | None:
        with self._store.lock:
            rt = self.runtimes.get(key)
            return (
                rt.process.pid if rt is not None and rt.process is not None and rt.process.running() else None
            )

    def stop_processes(self) -> None:
        """SIGTERM every container process, SIGKILL those still alive 3 s later."""
        with self._store.lock:
            processes = [rt.process for rt in self.runtimes.values() if rt.process is not None]
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 3
        for process in processes:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                process.kill()
