"""The readiness resource's cluster config: parsed, errors name the field; unset is not configured."""

import pytest

from astromined.readiness.result import Status, run_probes
from resources.readiness import ReadinessConfigError, ReadinessResource


def test_from_environment_reads_the_documented_variables(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    resource = ReadinessResource.from_environment(
        {
            "ASTROMINED_READINESS_CLUSTERS": '{"eks-a": {"in_cluster": true}, "eks": {}}',
            "ASTROMINED_PROMETHEUS_URL": "http://prometheus:9090",
            "ASTROMINED_GRAFANA_TOKEN_FILE": str(token),
        }
    )
    assert set(resource.clusters()) == {"eks-a", "eks"}
    assert resource.prometheus_url == "http://prometheus:9090"
    assert "secret-token" not in repr(resource)  # the token is read at probe time only


def test_unset_means_not_configured():
    resource = ReadinessResource.from_environment({})
    probes, configured = resource.cluster_probes("eks-a")
    assert not configured
    assert {r.status for r in run_probes(probes)} == {Status.NOT_CONFIGURED}
    assert {r.status for r in run_probes(resource.monitoring_probes())} == {Status.NOT_CONFIGURED}


@pytest.mark.fault("bad-config", "readiness clusters JSON with an unknown field is refused, naming it")
def test_bad_cluster_config_is_named():
    with pytest.raises(ReadinessConfigError, match=r"clusters_json\.eks: unknown field\(s\) \['gpus'\]"):
        ReadinessResource(clusters_json='{"eks": {"gpus": 4}}').clusters()
    with pytest.raises(ReadinessConfigError, match="not JSON"):
        ReadinessResource(clusters_json="{eks").clusters()


@pytest.mark.fault("bad-config", "a kubeconfig without the context fails that cluster's rows, not the asset")
def test_missing_kubeconfig_context_fails_rows(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    resource = ReadinessResource(clusters_json='{"eks": {}}', kubeconfig_file=str(kubeconfig))
    probes, configured = resource.cluster_probes("eks")
    results = run_probes(probes)
    assert configured and {r.status for r in results} == {Status.NOT_READY}
    assert all(r.detail.startswith("no API client for context eks") for r in results)


def test_the_variables_come_through_settings_only(tmp_path):
    """astromined/environment.py reads them (once, lazily); build_resources hands them over."""
    from astromined.environment import load_settings
    from resources import build_resources

    environ = {
        "ASTROMINED_STATE_DIR": str(tmp_path),
        "ASTROMINED_PROMETHEUS_URL": "http://prometheus:9090",
        "ASTROMINED_READINESS_CLUSTERS": '{"eks-a": {}}',
    }
    for environment in ("local", "prod"):
        settings = load_settings({**environ, "ASTROMINED_ENV": environment})
        readiness = build_resources(settings)["readiness"]
        assert readiness.prometheus_url == "http://prometheus:9090"
        assert set(readiness.clusters()) == {"eks-a"}
    assert (
        build_resources(load_settings({"ASTROMINED_STATE_DIR": str(tmp_path)}))["readiness"].clusters() == {}
    )
