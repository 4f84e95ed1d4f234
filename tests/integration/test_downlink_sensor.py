"""The downlink-arrival sensor against a real instance and a real landing-zone directory."""

import datetime as dt

import dagster as dg

from astromined.automation.sensors import downlink_arrival_sensor
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.population import generate_population
from resources.landing_zone import SimulatedLandingZoneResource, day_prefix


def _drop_file(landing_zone: SimulatedLandingZoneResource, day: dt.date, satellite: int) -> None:
    population = generate_population(500, 1)
    downlink = simulate_satellite_day(population, day, satellite, 3, 1)
    landing_zone.store().put_bytes(day_prefix(day) + downlink.file_name, downlink.data)


def test_new_late_and_repeated_arrivals(tmp_path):
    landing_zone = SimulatedLandingZoneResource(root=str(tmp_path / "landing"))
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"landing_zone": landing_zone})
        assert isinstance(downlink_arrival_sensor(context), dg.SkipReason)

        _drop_file(landing_zone, yesterday, 1)
        _drop_file(landing_zone, yesterday, 2)
        context = dg.build_sensor_context(instance=instance, resources={"landing_zone": landing_zone})
        requests = downlink_arrival_sensor(context)
        assert [r.partition_key for r in requests] == [yesterday.isoformat()]
        assert requests[0].run_key == f"{yesterday.isoformat()}:2"
        cursor = context.cursor

        # Nothing new: skip, with the reason.
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"landing_zone": landing_zone}
        )
        skip = downlink_arrival_sensor(context)
        assert isinstance(skip, dg.SkipReason)
        assert "no new downlink files" in skip.skip_message

        # A late file for the same day re-triggers that day with a new run key.
        _drop_file(landing_zone, yesterday, 3)
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"landing_zone": landing_zone}
        )
        [late] = downlink_arrival_sensor(context)
        assert late.partition_key == yesterday.isoformat()
        assert late.run_key == f"{yesterday.isoformat()}:3"
