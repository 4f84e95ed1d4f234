"""Hybrid GPU usage by site: on-prem EKS Anywhere first, AWS EKS when on-prem is full. GPU capacity and
requests per cluster (kube-state-metrics), the executor's placements and GPU-hours per site, the cloud
budget, and the pods that could not be scheduled."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from astromined.monitoring.alert_values import (
    CLOUD_CLUSTER,
    CLOUD_GPU_HOURS_BUDGET,
    CLOUD_GPU_HOURS_BUDGET_DAILY,
    GPU_ALLOCATABLE,
    GPU_HOURS_1D,
    GPU_REQUESTS_SCHEDULED,
    GPU_REQUESTS_SCHEDULED_RATIO,
    NAMESPACE,
    ONPREM_CLUSTER,
    ONPREM_GPU_SATURATION_RATIO,
    POD_MEMORY_LIMIT_RATIO,
    percent,
)
from astromined.monitoring.dashboards.panels import (
    label_variable,
    new_dashboard,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "astromined-hybrid-gpu"
FILENAME = "hybrid-gpu-usage.json"
CLUSTER = 'cluster=~"$cluster"'
NS = f'namespace="{NAMESPACE}"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "AstroMined / Hybrid GPU usage",
            f"GPU capacity and use on-prem ({ONPREM_CLUSTER}, 27 x 2 V100) and in AWS ({CLOUD_CLUSTER}), "
            "where the executor placed steps, GPU-hours per site against the cloud budget.",
        )
        .with_variable(label_variable("cluster", "Cluster", "kube_node_status_allocatable"))
        .with_row(dashboard.Row("Now"))
        .with_panel(
            stat_panel(
                "On-prem GPUs requested",
                "Share of on-prem GPUs held by scheduled, unfinished pods "
                f"(AstrominedOnPremGPUsSaturated >= {percent(ONPREM_GPU_SATURATION_RATIO)}).",
                f'max({GPU_REQUESTS_SCHEDULED_RATIO}{{cluster="{ONPREM_CLUSTER}"}})',
                unit="percentunit",
                threshold_steps=((None, "green"), (0.75, "orange"), (ONPREM_GPU_SATURATION_RATIO, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Steps spilled to cloud (24 h)",
                "Share of the steps the executor placed in AWS EKS over the last 24 hours.",
                'sum(increase(astromined_step_placements_total{site="cloud"}[1d])) '
                "/ sum(increase(astromined_step_placements_total[1d]))",
                unit="percentunit",
                threshold_steps=((None, "green"), (0.25, "orange"), (0.5, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Cloud GPU-hours (24 h)",
                "GPU-hours of steps in AWS EKS in the last 24 hours (AstrominedCloudGPUHoursOverBudget).",
                f'sum({GPU_HOURS_1D}{{site="cloud"}}) or vector(0)',
                unit="h",
                threshold_steps=((None, "green"), (CLOUD_GPU_HOURS_BUDGET_DAILY, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Daily cloud GPU budget",
                f"GPU-hours per rolling 24 hours (recording rule {CLOUD_GPU_HOURS_BUDGET}).",
                f"max({CLOUD_GPU_HOURS_BUDGET})",
                unit="h",
            )
        )
        .with_row(dashboard.Row("Capacity by cluster"))
        .with_panel(
            timeseries_panel(
                "GPUs requested / allocatable",
                "Share of each cluster's GPUs held by scheduled, unfinished pods.",
                [query(f"{GPU_REQUESTS_SCHEDULED_RATIO}{{{CLUSTER}}}", "{{cluster}}")],
                unit="percentunit",
                threshold_steps=((None, "green"), (ONPREM_GPU_SATURATION_RATIO, "red")),
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "GPUs allocatable and requested",
                "Allocatable GPUs (nodes Ready) and GPUs requested by scheduled pods, per cluster.",
                [
                    query(f"{GPU_ALLOCATABLE}{{{CLUSTER}}}", "{{cluster}} allocatable"),
                    query(f"{GPU_REQUESTS_SCHEDULED}{{{CLUSTER}}}", "{{cluster}} requested"),
                ],
            )
        )
        .with_row(dashboard.Row("Placements by site"))
        .with_panel(
            timeseries_panel(
                "Steps placed per hour by site",
                "Steps the multi-cluster executor placed on-prem and in the cloud.",
                [query("sum by (site) (increase(astromined_step_placements_total[1h]))", "{{site}}")],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "GPU-hours per site (24 h)",
                "GPU-hours of GPU steps per site over a rolling 24 hours, and the cloud budget.",
                [
                    query(GPU_HOURS_1D, "{{site}}"),
                    query(CLOUD_GPU_HOURS_BUDGET, "cloud budget"),
                ],
                unit="h",
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "GPUs busy by site",
                "GPU-seconds per second, i.e. GPUs in use by pipeline steps, per site.",
                [query("sum by (site) (rate(astromined_gpu_seconds_total[$__rate_interval]))", "{{site}}")],
                width=8,
            )
        )
        .with_row(dashboard.Row("Pods and nodes"))
        .with_panel(
            timeseries_panel(
                "Pipeline pods Pending / Unschedulable",
                f"Pods in namespace {NAMESPACE} waiting to start, per cluster.",
                [
                    query(
                        f'sum by (cluster) (kube_pod_status_phase{{{NS}, phase="Pending", {CLUSTER}}})',
                        "{{cluster}} pending",
                    ),
                    query(
                        f"sum by (cluster) (kube_pod_status_unschedulable{{{NS}, {CLUSTER}}})",
                        "{{cluster}} unschedulable",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Nodes not Ready",
                "Nodes whose Ready condition is not true, per cluster (AstrominedNodeNotReady).",
                [
                    query(
                        "count by (cluster) "
                        f'(kube_node_status_condition{{condition="Ready", status="true", {CLUSTER}}} == 0)',
                        "{{cluster}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            table_panel(
                "Pipeline containers closest to their memory limit",
                f"Top 10 containers in namespace {NAMESPACE} by working set / memory limit "
                f"(AstrominedPodMemoryHigh > {percent(POD_MEMORY_LIMIT_RATIO)}).",
                "topk(10, max by (cluster, pod, container, node) "
                f'(container_memory_working_set_bytes{{{NS}, container!="", {CLUSTER}}}) '
                "/ on (cluster, pod, container) group_left () max by (cluster, pod, container) "
                "(kube_pod_container_resource_limits"
                f'{{{NS}, resource="memory", {CLUSTER}}}))',
                width=8,
                unit="percentunit",
            )
        )
    )
