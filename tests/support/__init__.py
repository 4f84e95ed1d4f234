"""Helpers shared by the tests (importable as ``support``: pyproject puts tests/ on pytest's pythonpath).

Not tests themselves, and never imported by product code. A test imports shared code from here, never
from a conftest or another test module (tests/unit/test_suite_layout.py checks it):

- ``services``: a free loopback port, ``http_ok``, ``loopback_service`` (start a process and wait until
  it answers), moto's S3 server and the AWS test environment;
- ``tools``: ``require_tool`` (a missing external tool fails under CI=true, skips elsewhere);
- ``waiting``: ``wait_until`` / ``poll_until``, condition waits instead of fixed sleeps;
- ``monitoring_stack``: real Prometheus and Alertmanager, rule and PromQL helpers;
- ``postgres_server``, ``deploy_checks``: a throwaway PostgreSQL, the offline deployment checks;
- ``kube_sim``, ``kube_objects``, ``placement_runs``: simulated-cluster specs and clients, Kubernetes
  list objects, and readers of what the multi-cluster executor recorded;
- ``automation_world``: the days and training config of the automation tests' world;
- ``killed_writer``: a store whose writer is killed part-way (the atomic-write fault).
"""
