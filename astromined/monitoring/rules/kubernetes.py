"""Kubernetes alerts for both clusters, from kube-state-metrics and cAdvisor."""

from __future__ import annotations

from astromined.monitoring.alert_values import (
    CLOUD_CLUSTER,
    NAMESPACE,
    ONPREM_CLUSTER,
    POD_MEMORY_LIMIT_RATIO,
    percent,
)
from astromined.monitoring.rules.spec import RuleFile, alert, comment, expr, held_for

_NS = f'namespace="{NAMESPACE}"'
_PENDING_FOR = held_for("AstrominedStepPodPending")
_UNSCHEDULABLE_FOR = held_for("AstrominedStepPodUnschedulable")

RULES = RuleFile(
    "kubernetes.rules.yml",
    "astromined-kubernetes.rules",
    header=comment(
        f"""
        Kubernetes alerts for both clusters (cluster = {ONPREM_CLUSTER} | {CLOUD_CLUSTER}), from
        kube-state-metrics and cAdvisor. Dagster runs and steps run as Jobs in the namespace "{NAMESPACE}"
        (infra/dagster/dagster-prod.yaml). Unit tests: ../tests/kubernetes.test.yml.
        """
    ),
    rules=(
        alert(
            "AstrominedStepPodPending",
            expr(
                f"""
                (
                  max by (cluster, namespace, pod) (kube_pod_status_phase{{{_NS}, phase="Pending"}}) == 1
                  unless on (cluster, namespace, pod)
                  max by (cluster, namespace, pod) (kube_pod_status_unschedulable{{{_NS}}}) == 1
                )
                * on (cluster, namespace, pod) group_left (node)
                topk by (cluster, namespace, pod) (1, kube_pod_info{{{_NS}}})
                """
            ),
            summary="Pod {{ $labels.pod }} has been Pending for "
            + _PENDING_FOR
            + " on {{ $labels.cluster }}.",
            description=(
                "The pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }} "
                "({{ $labels.cluster }}) is scheduled but has not started for "
                + _PENDING_FOR
                + " (image pull, volume or Secret mount): its Dagster run or step is stuck."
            ),
            comment=comment(
                """
                Scheduled but not started (image pull, volume or Secret mount); Unschedulable pods have their
                own alert. The node label (from kube_pod_info) lets a NotReady node inhibit it.
                """
            ),
        ),
        alert(
            "AstrominedStepPodUnschedulable",
            f"max by (cluster, namespace, pod) (kube_pod_status_unschedulable{{{_NS}}}) == 1",
            summary="Pod {{ $labels.pod }} has been Unschedulable for "
            + _UNSCHEDULABLE_FOR
            + " on {{ $labels.cluster }}.",
            description=(
                "No node of {{ $labels.cluster }} can take the pod "
                "{{ $labels.namespace }}/{{ $labels.pod }}. "
                f"On {ONPREM_CLUSTER} the executor should have moved the step to the cloud after its "
                f"Unschedulable timeout; on {CLOUD_CLUSTER} the cloud has no GPU node left to give it."
            ),
        ),
        alert(
            "AstrominedPodMemoryHigh",
            expr(
                f"""
                max by (cluster, namespace, pod, container, node) (
                  container_memory_working_set_bytes{{{_NS}, container!="", container!="POD"}}
                )
                / on (cluster, namespace, pod, container) group_left ()
                max by (cluster, namespace, pod, container) (
                  kube_pod_container_resource_limits{{{_NS}, resource="memory"}}
                )
                > {POD_MEMORY_LIMIT_RATIO}
                """
            ),
            summary="Container {{ $labels.container }} of {{ $labels.pod }} is at "
            "{{ $value | humanizePercentage }} of its memory limit.",
            description=(
                "The working set of {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) on "
                "node {{ $labels.node }} ({{ $labels.cluster }}) has stayed above "
                + percent(POD_MEMORY_LIMIT_RATIO)
                + " of its memory limit for "
                + held_for("AstrominedPodMemoryHigh")
                + ". At the limit the kernel OOM-kills it and the Dagster step fails."
            ),
        ),
        alert(
            "AstrominedNodeNotReady",
            'max by (cluster, node) (kube_node_status_condition{condition="Ready", status="true"}) == 0',
            summary="Node {{ $labels.node }} of {{ $labels.cluster }} is not Ready.",
            description=(
                "The node {{ $labels.node }} of {{ $labels.cluster }} has not been Ready for "
                + held_for("AstrominedNodeNotReady")
                + ". Its pods are not running; its GPUs are lost to the pipeline (on "
                + ONPREM_CLUSTER
                + ", steps spill to the cloud instead)."
            ),
        ),
    ),
)
