"""Grafana dashboards as code (grafana-foundation-sdk), one module per dashboard.

``python -m astromined.monitoring.dashboards`` (or ``make dashboards``) writes the JSON models into
``infra/monitoring/dashboards/``; the JSON is committed and a test fails when it differs from what this
code generates. Every query uses the metric names of ``astromined.monitoring.catalog``, the recording
rules of ``infra/monitoring/prometheus/rules/`` and standard kube-state-metrics names.
"""
