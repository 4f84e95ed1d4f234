"""The downlink-arrival sensor on real landing zones: a local directory and an S3 prefix (moto server).

Files are real simulated CCSDS downlinks dropped the way ground stations deliver them.
"""

import datetime as dt

import boto3
import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from support.services import aws_test_environment, moto_s3_server

import assets.features
import assets.telemetry
from astromined.automation.jobs import INGEST_JOB_NAME, ingest_day_job
from astromined.automation.sensors import LOOKBACK_DAYS, downlink_arrival_sensor, fingerprint
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.population import generate_population
from resources.lake import LocalLakeResource
from resources.landing_zone import LocalLandingZoneResource, S3LandingZoneResource, day_prefix

POPULATION = generate_population(500, 1)
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def drop(landing_zone, day: dt.date, satellite: int, observations: int = 3) -> None:
    downlink = simulate_satellite_day(POPULATION, day, satellite, observations, 1)
    landing_zone.store().put_bytes(day_prefix(day) + downlink.file_name, downlink.data)


def tick(instance, landing_zone, cursor=None):
    """One evaluation as the daemon runs it (run requests resolved against the code location's job)."""
    definitions = dg.Definitions(
        assets=[assets.telemetry.raw_telemetry, assets.features.asteroid_features],
        jobs=[ingest_day_job],
        sensors=[downlink_arrival_sensor],
        resources={"landing_zone": landing_zone, "lake": LocalLakeResource(root="unused-lake")},
    )
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=definitions.get_repository_def(),
        resources={"landing_zone": landing_zone},
    )
    return downlink_arrival_sensor.evaluate_tick(context)


def test_new_late_redelivered_and_repeated_arrivals(tmp_path):
    landing_zone = LocalLandingZoneResource(root=str(tmp_path / "landing"))
    key = YESTERDAY.isoformat()
    with dg.instance_for_test() as instance:
        empty = tick(instance, landing_zone)
        assert not empty.run_requests and "no new downlink files" in empty.skip_message

        drop(landing_zone, YESTERDAY, 1)
        drop(landing_zone, YESTERDAY, 2)
        first = tick(instance, landing_zone)
        [request] = first.run_requests
        files = landing_zone.list_downlinks(YESTERDAY)
        assert request.partition_key == key and request.job_name in (None, INGEST_JOB_NAME)
        assert request.run_key == f"{key}:{fingerprint(files)}" and fingerprint(files).startswith("2-")
        # The same files evaluated again (a lost cursor) ask for the same run key: one run per arrival.
        assert tick(instance, landing_zone).run_requests[0].run_key == request.run_key

        repeat = tick(instance, landing_zone, first.cursor)
        assert not repeat.run_requests and "no new downlink files" in repeat.skip_message

        # A late pass for the same day re-triggers that day, with a new run key.
        drop(landing_zone, YESTERDAY, 3)
        [late] = tick(instance, landing_zone, first.cursor).run_requests
        assert late.partition_key == key and late.run_key != request.run_key
        assert late.run_key.startswith(f"{key}:3-")

        # A re-delivered (now complete) file of another size re-triggers too, though the count is the same.
        after_late = tick(instance, landing_zone, first.cursor).cursor
        [late_file] = [f for f in landing_zone.list_downlinks(YESTERDAY) if f.name.startswith("sat-003")]
        complete = simulate_satellite_day(POPULATION, YESTERDAY, 3, 6, 1).data
        landing_zone.store().put_bytes(late_file.key, complete)  # same name, now complete
        [redelivered] = tick(instance, landing_zone, after_late).run_requests
        assert redelivered.run_key.startswith(f"{key}:3-") and redelivered.run_key != late.run_key


def test_day_with_a_run_in_flight_is_deferred_not_duplicated(tmp_path):
    landing_zone = LocalLandingZoneResource(root=str(tmp_path / "landing"))
    key = YESTERDAY.isoformat()
    drop(landing_zone, YESTERDAY, 1)
    with dg.instance_for_test() as instance:
        run = dg.DagsterRun(
            job_name=INGEST_JOB_NAME,
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": key},
        )
        instance.add_run(run)
        deferred = tick(instance, landing_zone)
        assert not deferred.run_requests
        assert f"{key} (run {run.run_id[:8]} still in flight)" in deferred.skip_message
        assert key not in (deferred.cursor or "")  # not marked seen: requested once the run ends

        instance.report_run_failed(run)
        [request] = tick(instance, landing_zone, deferred.cursor).run_requests
        assert request.partition_key == key


def test_days_outside_the_lookback_window_are_ignored(tmp_path):
    landing_zone = LocalLandingZoneResource(root=str(tmp_path / "landing"))
    old = YESTERDAY - dt.timedelta(days=LOOKBACK_DAYS)
    drop(landing_zone, old, 1)
    with dg.instance_for_test() as instance:
        result = tick(instance, landing_zone)
        assert not result.run_requests and "no new downlink files" in result.skip_message


@pytest.fixture
def s3_endpoint(tmp_path):
    with aws_test_environment(), moto_s3_server(tmp_path) as url:
        yield url


def test_s3_prefix_arrivals(s3_endpoint):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="landing")
    landing_zone = S3LandingZoneResource(bucket="landing", prefix="ground", endpoint_url=s3_endpoint)
    key = YESTERDAY.isoformat()
    with dg.instance_for_test() as instance:
        assert not tick(instance, landing_zone).run_requests
        drop(landing_zone, YESTERDAY, 1)
        first = tick(instance, landing_zone)
        [request] = first.run_requests
        assert request.partition_key == key and request.run_key.startswith(f"{key}:1-")
        drop(landing_zone, YESTERDAY, 2)
        [late] = tick(instance, landing_zone, first.cursor).run_requests
        assert late.run_key.startswith(f"{key}:2-")
        objects = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="landing")["Contents"]
        assert all(o["Key"].startswith(f"ground/downlinks/{key}/") for o in objects)
