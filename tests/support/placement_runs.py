"""Reading what the multi-cluster executor did from a run's Dagster log, and the placement tests' jobs
(tests/integration/placement/placement_jobs.py, loaded by file path in the simulated step pods)."""

from pathlib import Path

import dagster as dg

JOBS_FILE = Path(__file__).resolve().parents[1] / "integration" / "placement" / "placement_jobs.py"


def job(name: str):
    from dagster._core.definitions.reconstruct import ReconstructableJob

    return ReconstructableJob.for_file(str(JOBS_FILE), name)


def placements(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, str, str]]:
    """(step, site, cluster, reason) of every placement engine event of the run, in order."""
    found = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.is_engine_event:
            continue
        metadata = event.engine_event_data.metadata or {}
        if "placement/site" in metadata:
            found.append(
                (
                    event.step_key,
                    metadata["placement/site"].value,
                    metadata["placement/cluster"].value,
                    metadata["placement/reason"].value,
                )
            )
    return found


def engine_records(instance: dg.DagsterInstance, run_id: str, key: str) -> dict[str, str]:
    """The value of metadata ``key`` on the run's engine events, by step (the last one per step)."""
    found = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.is_engine_event:
            metadata = event.engine_event_data.metadata or {}
            if key in metadata:
                found[event.step_key] = metadata[key].value
    return found


def snapshot_sources(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """How each step's placement decision looked at the clusters (placement/snapshot), by step."""
    return engine_records(instance, run_id, "placement/snapshot")


def output_metadata(result, step_key: str) -> dict:
    """Metadata the step itself recorded (placement_metadata() from its pod's env)."""
    for event in result.all_events:
        if event.step_key == step_key and event.is_successful_output:
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
    return {}
