"""Tiny jobs for the placement integration tests, loaded by file path in the simulated step pods.

Each op is a real Dagster step run by `dagster api execute_step` in a pod of a simulated cluster; the GPU
ops declare their GPU the way assets/models.py's candidate_model does.
"""

import os
from pathlib import Path

import dagster as dg

from astromined.placement.executor import astromined_k8s_executor
from astromined.placement.step_metadata import placement_metadata

GPU_TAGS = {
    "astromined/gpus": "1",
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "1"}}}
    },
}


@dg.op
def prepare(context: dg.OpExecutionContext) -> int:
    context.log.info(f"prepare ran with {placement_metadata()}")
    return 3


def _train(context: dg.OpExecutionContext, x: int = 1) -> int:
    placement = placement_metadata()
    if not placement:
        raise RuntimeError("the executor did not pass its placement to the step pod")
    context.add_output_metadata(placement)
    return x * 2


@dg.op(tags=GPU_TAGS)
def train_a(context: dg.OpExecutionContext) -> int:
    return _train(context)


@dg.op(tags=GPU_TAGS)
def train_b(context: dg.OpExecutionContext) -> int:
    return _train(context)


@dg.job(executor_def=astromined_k8s_executor)
def gpu_pair_job():
    """Three independent steps, launched together: one without GPUs, two asking for one GPU each."""
    prepare()
    train_a()
    train_b()


@dg.op(tags=GPU_TAGS)
def train_solo(context: dg.OpExecutionContext) -> int:
    return _train(context)


@dg.job(executor_def=astromined_k8s_executor)
def gpu_solo_job():
    train_solo()


@dg.op(config_schema={"marker": str})
def flaky(context: dg.OpExecutionContext, x: int) -> int:
    """Fails until the marker file exists: the test creates it between the run and its re-execution."""
    marker = Path(context.op_config["marker"])
    if not marker.exists():
        raise RuntimeError(f"flaky step failing on purpose: {marker} does not exist (pid {os.getpid()})")
    return x + 1


@dg.job(executor_def=astromined_k8s_executor)
def flaky_job():
    flaky(prepare())
