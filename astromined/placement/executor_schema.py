"""The executor's config schema: dagster-k8s's ``k8s_job_executor`` fields plus the placement's.

The placement fields are read and checked by ``settings.settings_from_config``; every field is documented
in docs/kubernetes.md.
"""

from dagster import Bool, Enum, EnumValue, Field, Float, Int, Map, Noneable, Shape, StringSource
from dagster_k8s.job import USER_DEFINED_K8S_JOB_CONFIG_SCHEMA

from astromined.placement.dagster_compat import K8S_EXECUTOR_CONFIG_SCHEMA
from astromined.placement.policy import Site
from astromined.placement.settings import DEFAULT_CLUSTERS, Mode

_TOLERATION_SCHEMA = Noneable(
    Shape(
        {
            "key": Field(str, is_required=False),
            "operator": Field(str, is_required=False, default_value="Equal"),
            "value": Field(str, is_required=False),
            "effect": Field(str, is_required=False),
        }
    )
)
_CLUSTER_SCHEMA = Shape(
    {
        "site": Field(Enum("PlacementSite", [EnumValue(s.value) for s in Site]), is_required=True),
        "gpu_node_selector": Field(
            Map(str, str), is_required=False, default_value={}, description="Labels of the site's GPU nodes."
        ),
        "gpu_toleration": Field(
            _TOLERATION_SCHEMA,
            is_required=False,
            description="Toleration for the taint on the site's GPU nodes.",
        ),
        "site_node_selector": Field(
            Map(str, str),
            is_required=False,
            default_value={},
            description="single_cluster mode: labels of this site's nodes in the one cluster.",
        ),
        "affinity_weight": Field(
            Int, is_required=False, description="single_cluster mode: preferred-affinity weight (1-100)."
        ),
        "step_k8s_config": Field(
            USER_DEFINED_K8S_JOB_CONFIG_SCHEMA,
            is_required=False,
            description="Raw k8s config for the step pods placed on this cluster (merged last).",
        ),
        "in_cluster": Field(
            bool,
            is_required=False,
            default_value=False,
            description="Talk to this cluster with the pod's service account (the run worker's own cluster).",
        ),
    }
)

PLACEMENT_EXECUTOR_CONFIG_SCHEMA = {
    **K8S_EXECUTOR_CONFIG_SCHEMA,
    "mode": Field(
        Enum("PlacementMode", [EnumValue(m.value) for m in Mode]),
        is_required=False,
        default_value=Mode.MULTI_CLUSTER.value,
    ),
    "clusters": Field(
        Map(str, _CLUSTER_SCHEMA, key_label_name="kubeconfig_context"),
        is_required=False,
        default_value=DEFAULT_CLUSTERS,
        description="Clusters by kubeconfig context: the site each one is and how to find its GPU nodes.",
    ),
    "single_cluster_context": Field(
        Noneable(str),
        is_required=False,
        default_value=None,
        description="single_cluster mode: the kubeconfig context (default: the current context).",
    ),
    "unschedulable_timeout_s": Field(Float, is_required=False, default_value=300.0),
    "cloud_unreachable_timeout_s": Field(Float, is_required=False, default_value=900.0),
    "health_check_interval_s": Field(Int, is_required=False, default_value=20),
    "api_timeout_s": Field(Float, is_required=False, default_value=10.0),
    "watch_cluster_state": Field(
        Bool,
        is_required=False,
        default_value=True,
        description="GPU decisions read on-prem nodes and pods from a watch-based cache (list + watch, "
        "started with the run) instead of listing them per decision. Needs the 'watch' verb on nodes "
        "and pods; without it the executor falls back to lists.",
    ),
    "readiness_max_age_s": Field(
        Float,
        is_required=False,
        default_value=900.0,
        description="Each decision reads every cluster's latest readiness materialization "
        "(readiness_cluster_<context>) from the instance; one younger than this keeps a not-ready "
        "site from taking steps (GPU rows failed: GPU steps). Older or missing: not used. 0: never.",
    ),
    "snapshot_ttl_s": Field(
        Float,
        is_required=False,
        default_value=2.0,
        description="Without the watch cache: GPU decisions within this many seconds share one listed "
        "on-prem snapshot (0: list every time).",
    ),
    # Used when the instance's run launcher is not a K8sRunLauncher (which otherwise supplies them).
    "dagster_home": Field(Noneable(StringSource), is_required=False, default_value=None),
    "instance_config_map": Field(Noneable(StringSource), is_required=False, default_value=None),
    "postgres_password_secret": Field(Noneable(StringSource), is_required=False, default_value=None),
}
# dagster-k8s's own "kubeconfig_file" field is reused: one kubeconfig holding every context.
if "kubeconfig_file" not in PLACEMENT_EXECUTOR_CONFIG_SCHEMA:
    raise ImportError("dagster-k8s's executor config has no kubeconfig_file field (see dagster_compat.py)")
