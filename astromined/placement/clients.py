"""Kubernetes clients of the executor: one ``DagsterKubernetesClient`` per kubeconfig context, and Job
creation that survives a lost answer."""

import time

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from dagster_k8s.client import DagsterKubernetesClient, PatchedApiClient
from kubernetes.client.rest import ApiException

from astromined.placement.settings import Mode, PlacementSettings
from astromined.placement.snapshot import is_unreachable_error, load_api_client

IN_CLUSTER = "in-cluster"


def load_cluster_clients(settings: PlacementSettings) -> dict[str, DagsterKubernetesClient]:
    """One DagsterKubernetesClient per configured context (never the process-wide default configuration)."""
    if settings.mode is Mode.SINGLE_CLUSTER:
        name = settings.single_cluster_context or IN_CLUSTER
        in_cluster = settings.single_cluster_context is None and settings.kubeconfig_file is None
        return {name: _client(settings.kubeconfig_file, settings.single_cluster_context, in_cluster)}
    return {c.context: _client(settings.kubeconfig_file, c.context, c.in_cluster) for c in settings.clusters}


def _client(kubeconfig_file: str | None, context: str | None, in_cluster: bool) -> DagsterKubernetesClient:
    if in_cluster:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        api_client = PatchedApiClient(configuration=configuration)
    else:
        api_client = load_api_client(kubeconfig_file, context, PatchedApiClient)
    return DagsterKubernetesClient.production_client(
        batch_api_override=kubernetes.client.BatchV1Api(api_client),
        core_api_override=kubernetes.client.CoreV1Api(api_client),
    )


def create_job_once(batch_api, job: kubernetes.client.V1Job, namespace: str, timeout: float) -> None:
    """Create the job, retrying once after a transport error or a transient status. A 409 on that retry
    means the first attempt did create it (its answer was lost). dagster-k8s 0.29.27's
    ``k8s_api_retry_creation_mutation`` only accepts the 409 when the first failure was an HTTP status, so a
    dropped connection followed by 409 fails the run there."""
    for attempt in (1, 2):
        try:
            batch_api.create_namespaced_job(body=job, namespace=namespace, _request_timeout=timeout)
            return
        except ApiException as error:
            if attempt == 2 and error.status == 409:
                return
            if attempt == 2 or not is_unreachable_error(error):
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if attempt == 2:
                raise
        time.sleep(1.0)
