"""The simulated Job controller (`batch/v1`): creates a Job's pods, counts their outcomes into the Job's
status, applies `backoffLimit` (with exponential back-off between replacement pods), `completions`,
`parallelism`, `activeDeadlineSeconds` and `ttlSecondsAfterFinished`, and deletes or orphans pods with
their Job.

A Job is reconciled when one of its pods changes (the kubelet tells it, as `PodOwners`) and on its timers,
from the controller loop (`run`, `deadlines`).
"""

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from astromined.sim.kube import objects as o
from astromined.sim.kube.events import EventRecorder
from astromined.sim.kube.kubelet import Kubelet
from astromined.sim.kube.status import condition
from astromined.sim.kube.store import Key, ObjectStore


@dataclass
class JobRuntime:
    next_create_at: float = 0.0
    seen_failed: int = 0
    failed_gone: int = 0  # pods deleted while running count as failed, as in Kubernetes
    finished_at: float | None = None
    started: float = field(default_factory=time.monotonic)


class JobController:
    def __init__(
        self, store: ObjectStore, events: EventRecorder, kubelet: Kubelet, *, backoff_seconds: float
    ):
        self._store = store
        self._events = events
        self._kubelet = kubelet
        self.backoff_seconds = backoff_seconds
        self._jobs: dict[Key, JobRuntime] = {}
        self._job_pods: dict[str, set[Key]] = {}  # job uid → pod keys
        self._dirty: set[Key] = set()

    # --- API --------------------------------------------------------------------------------------------

    def create(self, job: dict[str, Any]) -> None:
        """Store an admitted Job (`objects.admit_job`); its pods are created on the next reconcile."""
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        self._store.put("jobs", job)
        self._jobs[key] = JobRuntime()
        self._job_pods[job["metadata"]["uid"]] = set()
        self._dirty.add(key)

    def delete(self, key: Key, policy: str, grace: int | None) -> None:
        """Delete a Job; `policy` "Orphan" keeps its pods (without the owner reference), else they are
        deleted too."""
        store = self._store
        job = store.objects["jobs"][key]
        uid = job["metadata"]["uid"]
        for pod_key in sorted(self._job_pods.pop(uid, set())):
            pod = store.objects["pods"].get(pod_key)
            if pod is None:
                continue
            if policy == "Orphan":
                pod["metadata"]["ownerReferences"] = [
                    ref for ref in pod["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid
                ]
                if not pod["metadata"]["ownerReferences"]:
                    del pod["metadata"]["ownerReferences"]
                store.touch("pods", pod)
            else:
                self._kubelet.delete(pod_key, grace)
        self._jobs.pop(key, None)
        self._dirty.discard(key)
        store.remove("jobs", key)

    # --- PodOwners (called by the kubelet) --------------------------------------------------------------

    def pod_admitted(self, key: Key, pod: Mapping[str, Any]) -> None:
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Job" and owner.get("uid") in self._job_pods:
                self._job_pods[owner["uid"]].add(key)

    def pod_changed(self, pod: Mapping[str, Any]) -> None:
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Job":
                job_key = (pod["metadata"]["namespace"], owner["name"])
                job = self._store.objects["jobs"].get(job_key)
                if job is not None and job["metadata"]["uid"] == owner.get("uid"):
                    self._dirty.add(job_key)

    def pod_deleted(self, key: Key, pod: Mapping[str, Any]) -> None:
        if pod["status"].get("phase") == "Running":
            for owner in pod["metadata"].get("ownerReferences") or []:
                runtime = self._jobs.get((pod["metadata"]["namespace"], owner.get("name")))
                if owner.get("kind") == "Job" and runtime is not None and runtime.finished_at is None:
                    runtime.failed_gone += 1
        for owner in pod["metadata"].get("ownerReferences") or []:
            pods = self._job_pods.get(owner.get("uid"))
            if pods is not None:
                pods.discard(key)
        self.pod_changed(pod)

    # --- controller loop ------------------------------------------------------------------------------------

    def run(self, now: float) -> None:
        """Reconcile the Jobs whose pods changed, then those whose deadline or TTL has come."""
        for key in list(self._dirty):
            self._dirty.discard(key)
            self._reconcile(key, now)
        for key, runtime in list(self._jobs.items()):
            job = self._store.objects["jobs"].get(key)
            if job is None:
                continue
            deadline = job["spec"].get("activeDeadlineSeconds")
            ttl = job["spec"].get("ttlSecondsAfterFinished")
            if (
                runtime.finished_at is None and deadline is not None and now - runtime.started >= deadline
            ) or (runtime.finished_at is not None and ttl is not None and now >= runtime.finished_at + ttl):
                self._reconcile(key, now)

    def deadlines(self, now: float) -> Iterator[float]:
        """Seconds until each waiting Job may create its next pod; 0 while a Job waits for a reconcile."""
        for key in self._dirty:
            runtime = self._jobs.get(key)
            if runtime is not None:
                yield runtime.next_create_at - now
        if self._dirty:
            yield 0.0

    def _reconcile(self, key: Key, now: float) -> None:
        store = self._store
        job = store.objects["jobs"].get(key)
        runtime = self._jobs.get(key)
        if job is None or runtime is None:
            return
        spec, status = job["spec"], job["status"]
        if runtime.finished_at is not None:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None and now >= runtime.finished_at + ttl:
                self.delete(key, "Background", None)
            return
        pods = [
            store.objects["pods"][k]
            for k in sorted(self._job_pods.get(job["metadata"]["uid"], ()))
            if k in store.objects["pods"]
        ]
        active = [
            p
            for p in pods
            if p["status"]["phase"] in ("Pending", "Running") and "deletionTimestamp" not in p["metadata"]
        ]
        succeeded = sum(1 for p in pods if p["status"]["phase"] == "Succeeded")
        failed_pods = sum(1 for p in pods if p["status"]["phase"] == "Failed")
        restarts = sum(
            s.get("restartCount", 0) for p in pods for s in p["status"].get("containerStatuses") or []
        )
        failed = runtime.failed_gone + failed_pods
        ready = sum(1 for p in active if p["status"]["phase"] == "Running")
        stamp = o.now()
        new_status: dict[str, Any] = {
            "startTime": status.get("startTime", stamp),
            "ready": ready,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        if active:
            new_status["active"] = len(active)
        if succeeded:
            new_status["succeeded"] = succeeded
        if failed:
            new_status["failed"] = failed
        completions, parallelism, backoff = spec["completions"], spec["parallelism"], spec["backoffLimit"]
        deadline = spec.get("activeDeadlineSeconds")
        finished = None
        if succeeded >= completions:
            finished = ("Complete", None, None)
        elif failed + restarts > backoff:
            finished = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and now - runtime.started >= deadline:
            finished = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if finished is not None:
            kind, reason, message = finished
            first = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
            conditions = []
            for condition_type in (first, kind):
                entry = {**condition(condition_type, "True", stamp), "lastProbeTime": stamp}
                if reason:
                    entry.update(reason=reason, message=message)
                elif condition_type in ("SuccessCriteriaMet", "Complete"):
                    entry.update(
                        reason="CompletionsReached", message="Reached expected number of succeeded pods"
                    )
                conditions.append(entry)
            new_status["conditions"] = conditions
            new_status.pop("active", None)
            new_status["ready"] = 0
            if kind == "Complete":
                new_status["completionTime"] = stamp
            runtime.finished_at = now
            for pod in active:
                self._kubelet.delete((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
            self._events.record(
                job,
                "Normal" if kind == "Complete" else "Warning",
                "Completed" if kind == "Complete" else reason or kind,
                "Job completed" if kind == "Complete" else message or kind,
                "job-controller",
            )
        else:
            if failed + restarts > runtime.seen_failed:
                runtime.seen_failed = failed + restarts
                backoff_seconds = min(self.backoff_seconds * 2 ** (runtime.seen_failed - 1), 360.0)
                runtime.next_create_at = now + backoff_seconds
            wanted = min(parallelism, completions - succeeded) - len(active)
            if wanted > 0:
                if now >= runtime.next_create_at:
                    for _ in range(wanted):
                        self._create_pod(job)
                    new_status["active"] = len(active) + wanted
                else:
                    self._dirty.add(key)
        if new_status != status:
            job["status"] = new_status
            store.touch("jobs", job)

    def _create_pod(self, job: dict[str, Any]) -> None:
        template = job["spec"]["template"]
        meta = json.loads(json.dumps(template.get("metadata") or {}))
        meta["generateName"] = f"{job['metadata']['name']}-"
        meta["namespace"] = job["metadata"]["namespace"]
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        meta.pop("name", None)
        body = {"metadata": meta, "spec": json.loads(json.dumps(template["spec"]))}
        pod = o.admit_pod(body, job["metadata"]["namespace"])
        while (pod["metadata"]["namespace"], pod["metadata"]["name"]) in self._store.objects["pods"]:
            pod["metadata"]["name"] = o.generate_name(meta["generateName"])
        self._job_pods[job["metadata"]["uid"]].add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self._kubelet.admit(pod)
        self._events.record(
            job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "job-controller"
        )
