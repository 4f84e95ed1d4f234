"""Shared pieces of the AstroMined dashboards: the Prometheus data source, variables, panel builders."""

from __future__ import annotations

import json
from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from astromined.monitoring.alert_values import RUNBOOKS_INDEX_URL

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["astromined"]


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the conventions all AstroMined dashboards share (data source variable, links)."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("utc")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .link(
            dashboard.DashboardLink("AstroMined dashboards")
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .link(dashboard.DashboardLink("Runbooks").url(RUNBOOKS_INDEX_URL).target_blank(True).icon("doc"))
    )


def label_variable(
    name: str, label: str, metric: str, label_name: str | None = None
) -> dashboard.QueryVariable:
    """A multi-value variable over a label's values; "All" is the regex ``.*`` (queries use ``=~``)."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label_name or name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def query(expr: str, legend: str | None = None, *, instant: bool = False) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend is not None:
        target = target.legend_format(legend)
    if instant:
        target = target.instant().format("table")
    return target


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: ``(None, "green")`` is the base step, then ``(value, color)`` upwards."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def timeseries_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    threshold_steps: Sequence[tuple[float | None, str]] = (),
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if threshold_steps:
        panel = panel.thresholds(thresholds(*threshold_steps)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def stat_panel(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    width: int = 6,
    height: int = 4,
    threshold_steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    legend: str | None = None,
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend))
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(thresholds(*threshold_steps))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def table_panel(
    title: str, description: str, expr: str, *, width: int = 12, height: int = 8, unit: str = "short"
) -> table.Panel:
    """An instant query as a table: one row per series, its labels as columns (bookkeeping ones hidden)."""
    hidden = {name: True for name in ("Time", "__name__", "instance", "prometheus")}
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr, instant=True))
        .with_transformation(DataTransformerConfig(id_val="organize", options={"excludeByName": hidden}))
        .unit(unit)
        .span(width)
        .height(height)
    )


def render(built: object) -> str:
    """The dashboard's JSON model, deterministic: panel ids and query refIds numbered in order."""
    model = json.loads(json.dumps(built, cls=JSONEncoder))
    next_id = 1
    for panel in _all_panels(model.get("panels", [])):
        panel["id"] = next_id
        next_id += 1
        for index, target in enumerate(panel.get("targets", [])):
            target["refId"] = chr(ord("A") + index)
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _all_panels(panels: list[dict]) -> list[dict]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_all_panels(panel.get("panels", [])))
    return found
