"""SelfSubjectAccessReview, DaemonSets and StorageClasses of the simulator, via the kubernetes client."""

import kubernetes
import pytest

from astromined.sim.kube import SimulatedCluster


def _review(clients, verb: str, resource: str, subresource: str = "", group: str = "") -> dict:
    api = kubernetes.client.AuthorizationV1Api(clients.api_client)
    body = kubernetes.client.V1SelfSubjectAccessReview(
        spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=kubernetes.client.V1ResourceAttributes(
                verb=verb, resource=resource, subresource=subresource, group=group, namespace="dagster"
            )
        )
    )
    return api.create_self_subject_access_review(body).status


def test_access_review_allows_by_default(clients):
    status = _review(clients, "create", "jobs", group="batch")
    assert status.allowed is True


@pytest.mark.fault("bad-config", "RBAC denies one verb: only that review answers allowed=false")
def test_access_review_denied_by_fault_switch(cluster: SimulatedCluster, clients):
    cluster.set_access_denied({"get pods/log"})
    assert _review(clients, "get", "pods", subresource="log").allowed is False
    assert _review(clients, "get", "pods").allowed is True
    cluster.set_access_denied({"*"})
    assert _review(clients, "delete", "jobs", group="batch").allowed is False


def test_access_review_rejects_empty_spec(clients):
    api = kubernetes.client.AuthorizationV1Api(clients.api_client)
    with pytest.raises(kubernetes.client.ApiException) as raised:
        api.create_self_subject_access_review({"kind": "SelfSubjectAccessReview", "spec": {}})
    assert raised.value.status == 422


def test_device_plugin_daemonset_counts_ready_gpu_nodes(cluster: SimulatedCluster, clients):
    apps = kubernetes.client.AppsV1Api(clients.api_client)
    listed = apps.list_daemon_set_for_all_namespaces().items
    assert [(d.metadata.namespace, d.metadata.name) for d in listed] == [
        ("kube-system", "nvidia-device-plugin")
    ]
    ds = apps.read_namespaced_daemon_set("nvidia-device-plugin", "kube-system")
    assert (ds.status.desired_number_scheduled, ds.status.number_available) == (1, 1)
    cluster.set_node_ready("gpu-v100-01", False)
    ds = apps.read_namespaced_daemon_set("nvidia-device-plugin", "kube-system")
    assert (ds.status.desired_number_scheduled, ds.status.number_available) == (1, 0)
    assert ds.status.number_unavailable == 1
    cluster.set_node_ready("gpu-v100-01", True)
    cluster.set_device_plugin(False)
    with pytest.raises(kubernetes.client.ApiException) as raised:
        apps.read_namespaced_daemon_set("nvidia-device-plugin", "kube-system")
    assert raised.value.status == 404
    assert apps.list_namespaced_daemon_set("kube-system").items == []


def test_default_storage_class(clients):
    storage = kubernetes.client.StorageV1Api(clients.api_client)
    classes = storage.list_storage_class().items
    assert [c.metadata.name for c in classes] == ["standard"]
    assert classes[0].metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert storage.read_storage_class("standard").provisioner == "rancher.io/local-path"


def test_discovery_lists_the_new_groups(clients):
    groups = {g.name for g in kubernetes.client.ApisApi(clients.api_client).get_api_versions().groups}
    assert {"batch", "apps", "storage.k8s.io", "authorization.k8s.io"} <= groups
    resources = kubernetes.client.AppsV1Api(clients.api_client).get_api_resources().resources
    assert [r.name for r in resources] == ["daemonsets"]
