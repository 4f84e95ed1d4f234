"""Every private Dagster name the project's code uses, in one place.

Written against the pinned ``dagster==1.13.27`` and ``dagster-k8s==0.29.27`` (pyproject.toml; ``PINNED``
below, checked against the installed versions by tests/unit/placement/test_dagster_private_imports.py).
Dagster gives no compatibility promise for anything under ``dagster._`` or for underscore names, so no other
module imports them (the same test scans every module of ``astromined``, ``assets`` and ``resources``).
Everything else the executor needs is public: ``dagster.{DagsterEvent, Executor, ExecutorDefinition,
InitExecutorContext, MetadataValue, multiple_process_executor_requirements, execute_job}`` and the
``dagster_k8s`` modules (``job``, ``client``, ``container_context``, ``launcher``, ``utils``, ``executor``).

Why each name is here, and what to check when the pins move:

``StepDelegatingExecutor``, ``StepHandler``, ``StepHandlerContext``, ``CheckStepHealthResult``
    (``dagster._core.executor.step_delegating``) — the step-handler API that dagster-k8s's own
    ``k8s_job_executor`` is built on; there is no public way to write a step-delegating executor.
    On upgrade: the constructor keywords ``build_executor`` passes (``retries``, ``max_concurrent``,
    ``tag_concurrency_limits``, ``should_verify_step``, ``check_step_health_interval_seconds``,
    ``step_dependency_config``), ``StepDelegatingExecutor.execute`` (``PlacementExecutor`` wraps it to
    stop the watch caches), the ``StepHandler`` methods and ``StepHandlerContext``'s ``execute_step_args``,
    ``dagster_run``, ``step_tags``, ``instance``, ``get_step_context``.
``EngineEventData`` (``dagster._core.events``) — the payload ``DagsterEvent.engine_event`` requires for the
    placement records (metadata ``placement/*``, docs/contracts.md). On upgrade: its ``metadata`` keyword.
``RetryMode`` (``dagster._core.execution.retries``) and ``StepDependencyConfig``
    (``dagster._core.execution.step_dependency_config``) — turn the ``retries`` and
    ``step_dependency_config`` fields of the executor config (dagster-k8s's schema) into what
    ``StepDelegatingExecutor`` takes, as ``k8s_job_executor`` does. On upgrade: ``from_config``.
``process_config`` (``dagster._config``) — validates infra/dagster/executor-prod.yaml against the executor's
    schema when the production definitions load (``production_executor``), so a bad field fails with the
    file's name instead of at the first run (``ExecutorDefinition.configured`` does not validate). On
    upgrade: the result's ``success``, ``value`` and ``errors[].message``.
``ReconstructableRepository`` (``dagster._core.definitions.reconstruct``) — ``make demo-k8s``
    (placement/demo.py) runs the main job from a module's ``Definitions`` so its step pods can load it
    (``dagster.reconstructable`` only takes a module-level job). On upgrade: ``for_module`` and
    ``get_reconstructable_job``.
``CachingStaleStatusResolver``, ``StaleStatus`` (``dagster._core.definitions.data_version``),
    ``AssetGraphView``, ``TemporalContext`` (``dagster._core.asset_graph_view.asset_graph_view``) — what the
    UI's "Materialize changed and missing" asks; ``astromined run --stale`` (automation/staleness.py) asks
    the same in the process that then runs the stale assets. The only public door is a sensor's
    ``RunRequest(stale_assets_only=True)``. On upgrade: the resolver's ``get_status`` and
    ``get_stale_root_causes`` (their ``key.asset_key`` and ``reason``), and ``AssetGraphView``'s keywords.
``K8S_EXECUTOR_CONFIG_SCHEMA`` (``dagster_k8s.executor._K8S_EXECUTOR_CONFIG_SCHEMA``) — dagster-k8s's
    executor config fields, extended with the placement fields so that ``astromined_k8s`` accepts
    everything ``k8s`` does. On upgrade: new or renamed fields (``build_executor`` reads them by name) and
    that ``kubeconfig_file`` is still one of them.

Not imports, but the same kind of risk: ``PlacementStepHandler`` subclasses dagster-k8s's
``K8sStepHandler`` and calls its underscore methods ``_get_step_key``, ``_get_k8s_step_job_name`` and
``_detect_current_name_and_uid``, and ``step_job.step_job`` repeats the job construction of its
``launch_step``. tests/integration/placement/test_step_job_matches_dagster_k8s.py compares our Job with
the one ``launch_step`` builds for the same step: run it first after moving the pins.
"""

from dagster._config import process_config
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.events import EngineEventData
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.step_delegating import (
    CheckStepHealthResult,
    StepDelegatingExecutor,
    StepHandler,
    StepHandlerContext,
)
from dagster_k8s.executor import _K8S_EXECUTOR_CONFIG_SCHEMA

# The versions the names above were checked against (pyproject.toml pins the same).
PINNED = {"dagster": "1.13.27", "dagster-k8s": "0.29.27"}

K8S_EXECUTOR_CONFIG_SCHEMA = _K8S_EXECUTOR_CONFIG_SCHEMA

__all__ = [
    "K8S_EXECUTOR_CONFIG_SCHEMA",
    "PINNED",
    "AssetGraphView",
    "CachingStaleStatusResolver",
    "CheckStepHealthResult",
    "EngineEventData",
    "ReconstructableRepository",
    "RetryMode",
    "StaleStatus",
    "StepDelegatingExecutor",
    "StepDependencyConfig",
    "StepHandler",
    "StepHandlerContext",
    "TemporalContext",
    "process_config",
]
