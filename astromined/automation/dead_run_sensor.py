"""`dead_run_reaper`: under `dagster dev`, fail runs whose worker process died and free their pool slots.

Local only: in production Dagster's run monitoring asks Kubernetes about each run worker
(infra/dagster/dagster-prod.yaml). The sensor requests no runs; each tick says what it cleaned up.
"""

import dagster as dg

from astromined.automation.dead_runs import reap_dead_runs

SENSOR_NAME = "dead_run_reaper"


def build_dead_run_sensor(default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        default_status=default_status,
        description="Marks runs whose local worker process died as failed and frees their pool slots.",
    )
    def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        reaped = reap_dead_runs(context.instance)
        for item in reaped:
            context.log.warning(f"cleaned up after a killed run: {item.describe()}")
        if not reaped:
            return dg.SkipReason("no run with a dead worker and no slot held by a finished run")
        return dg.SkipReason("cleaned up: " + "; ".join(item.describe() for item in reaped))

    return dead_run_reaper
