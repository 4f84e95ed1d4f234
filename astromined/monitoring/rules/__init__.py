"""Prometheus recording and alerting rules as code, one module per rule file.

``python -m astromined.monitoring.rules`` (or ``make dashboards``) writes the YAML into
``infra/monitoring/prometheus/rules/``; the YAML is committed, tested by promtool
(``infra/monitoring/prometheus/tests/``), and a test fails when it differs from what this code generates.
Severities, teams, ``for`` durations, thresholds, cluster names and runbook URLs come from
``astromined.monitoring.alert_values``; metric names from ``astromined.monitoring.catalog``.
"""
