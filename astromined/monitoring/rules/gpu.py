"""Hybrid GPU capacity: on-prem EKS Anywhere first, AWS EKS when on-prem is full."""

from __future__ import annotations

from astromined.monitoring.alert_values import (
    CLOUD_CLUSTER,
    CLOUD_GPU_HOURS_BUDGET,
    CLOUD_GPU_HOURS_BUDGET_DAILY,
    GPU_ALLOCATABLE,
    GPU_HOURS_1D,
    GPU_REQUESTS_SCHEDULED,
    GPU_REQUESTS_SCHEDULED_RATIO,
    ONPREM_CLUSTER,
    ONPREM_GPU_SATURATION_RATIO,
)
from astromined.monitoring.rules.spec import Record, RuleFile, alert, comment, expr, held_for

RULES = RuleFile(
    "astromined-gpu.rules.yml",
    "astromined-gpu.rules",
    header=comment(
        f"""
        Hybrid GPU capacity: on-prem EKS Anywhere (cluster="{ONPREM_CLUSTER}", 27 servers x 2 V100) first,
        AWS EKS (cluster="{CLOUD_CLUSTER}") when on-prem is full. kube-state-metrics names the
        nvidia.com/gpu resource "nvidia_com_gpu". Unit tests: ../tests/astromined-gpu.test.yml.
        """
    ),
    rules=(
        Record(GPU_ALLOCATABLE, 'sum by (cluster) (kube_node_status_allocatable{resource="nvidia_com_gpu"})'),
        Record(
            GPU_REQUESTS_SCHEDULED,
            expr(
                """
                sum by (cluster) (
                  kube_pod_container_resource_requests{resource="nvidia_com_gpu", node!=""}
                  and on (cluster, namespace, pod)
                  (kube_pod_status_phase{phase=~"Pending|Running"} == 1)
                )
                """
            ),
            comment="GPUs held by pods that are scheduled on a node and not finished (Pending with a node = "
            "starting).",
        ),
        Record(GPU_REQUESTS_SCHEDULED_RATIO, f"{GPU_REQUESTS_SCHEDULED} / {GPU_ALLOCATABLE}"),
        Record(
            GPU_HOURS_1D,
            "sum by (site) (increase(astromined_gpu_seconds_total[1d])) / 3600",
            comment="GPU-hours of pipeline steps per site over the last 24 hours (from the executor's "
            "placements).",
        ),
        Record(
            CLOUD_GPU_HOURS_BUDGET,
            f"vector({CLOUD_GPU_HOURS_BUDGET_DAILY})",
            comment=comment(
                """
                The daily cloud GPU budget, in GPU-hours per rolling 24 hours (alert_values.py
                CLOUD_GPU_HOURS_BUDGET_DAILY): the alert and the hybrid GPU dashboard read this series.
                """
            ),
        ),
        alert(
            "AstrominedOnPremGPUsSaturated",
            expr(
                f"""
                {GPU_REQUESTS_SCHEDULED_RATIO}{{cluster="{ONPREM_CLUSTER}"}} >= {ONPREM_GPU_SATURATION_RATIO}
                and on ()
                sum(increase(astromined_step_placements_total{{site="cloud"}}[1h])) > 0
                """
            ),
            summary="On-prem GPUs are saturated and pipeline steps spill to AWS EKS.",
            description=(
                "{{ $value | humanizePercentage }} of the on-prem GPUs have been requested for "
                + held_for("AstrominedOnPremGPUsSaturated")
                + " and the executor placed steps in the cloud in the last hour. Training still runs, at "
                "cloud prices; if it lasts, add on-prem capacity or spread retrains and backfills."
            ),
        ),
        alert(
            "AstrominedCloudGPUHoursOverBudget",
            expr(
                f"""
                {GPU_HOURS_1D}{{site="cloud"}}
                > on () group_left ()
                {CLOUD_GPU_HOURS_BUDGET}
                """
            ),
            summary="Cloud GPU use is over its daily budget.",
            description=(
                'Pipeline steps used {{ $value | printf "%.1f" }} GPU-hours on AWS EKS in the last 24 hours, '
                'over the budget of {{ with query "'
                + CLOUD_GPU_HOURS_BUDGET
                + '" }}{{ . | first | value }}{{ end }} GPU-hours a day.'
            ),
        ),
    ),
)
