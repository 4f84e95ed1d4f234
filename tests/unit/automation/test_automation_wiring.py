"""Jobs, default statuses, the alert payload and the arrival fingerprint (no instance needed)."""

import dataclasses
import datetime as dt

import dagster as dg
import pytest

from astromined.automation import build_automation
from astromined.automation.drift_sensor import DriftPolicyResource
from astromined.automation.jobs import INGEST_ASSETS, INGEST_JOB_NAME, RETRAIN_ASSETS, RETRAIN_JOB_NAME
from astromined.automation.run_failure import ALERT_NAME, ALERT_TTL, RUNBOOK_URL, failure_alert
from astromined.automation.sensors import fingerprint
from astromined.definitions import build_definitions
from astromined.environment import load_settings

TRAINING = {"training_set", "candidate_model", "model_evaluation", "champion_model", "uplink_package"}


@pytest.fixture(scope="module")
def local_defs(tmp_path_factory):
    return build_definitions(load_settings({"ASTROMINED_STATE_DIR": str(tmp_path_factory.mktemp("s"))}))


def _selected(defs, job_name: str) -> set[str]:
    job = defs.resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.selected_asset_keys}


def test_ingest_never_trains_and_retrain_never_ingests(local_defs):
    assert _selected(local_defs, INGEST_JOB_NAME) == set(INGEST_ASSETS)
    assert not _selected(local_defs, INGEST_JOB_NAME) & TRAINING
    assert _selected(local_defs, RETRAIN_JOB_NAME) == set(RETRAIN_ASSETS)
    assert not _selected(local_defs, RETRAIN_JOB_NAME) & set(INGEST_ASSETS)
    assert not local_defs.resolve_job_def(RETRAIN_JOB_NAME).partitions_def  # one run, not one per day


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            "local",
            {
                "readiness_every_5_minutes": "RUNNING",
                "daily_retrain": "STOPPED",
                "downlink_arrival_sensor": "STOPPED",
                "drift_sensor": "RUNNING",
                "run_failure_alert_sensor": "STOPPED",
                "dead_run_reaper": "RUNNING",
            },
        ),
        (
            "prod",
            dict.fromkeys(
                [
                    "readiness_every_5_minutes",
                    "daily_retrain",
                    "downlink_arrival_sensor",
                    "drift_sensor",
                    "run_failure_alert_sensor",
                ],
                "RUNNING",
            ),
        ),
    ],
)
def test_default_statuses(tmp_path, environment, expected):
    defs = build_automation(
        load_settings({"ASTROMINED_STATE_DIR": str(tmp_path), "ASTROMINED_ENV": environment})
    )
    statuses = {s.name: s.default_status.value for s in [*defs.schedules, *defs.sensors]}
    assert statuses == expected


def test_drift_policy_maps_to_thresholds():
    policy = DriftPolicyResource(psi_threshold=0.3, sector_pvalue_threshold=0.05, min_rows=10)
    thresholds = policy.thresholds()
    assert (thresholds.psi, thresholds.sector_pvalue, thresholds.min_rows) == (0.3, 0.05, 10)
    assert dataclasses.asdict(DriftPolicyResource().thresholds()) == dataclasses.asdict(type(thresholds)())


def test_failure_alert_follows_the_contract():
    now = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    alert = failure_alert(
        "ingest_downlinks", "abcdef12-3456", ["raw_telemetry"], "boom", "http://ui/runs/x", now
    )
    assert alert["labels"] == {
        "alertname": ALERT_NAME,
        "severity": "critical",
        "team": "mlops",
        "job": "ingest_downlinks",
        "run_id": "abcdef12-3456",
        "step": "raw_telemetry",
    }
    assert set(alert["annotations"]) == {"summary", "description", "runbook_url", "run_url"}
    assert alert["annotations"]["runbook_url"] == RUNBOOK_URL
    assert RUNBOOK_URL.endswith("/docs/runbooks/AstrominedRunFailed.md")
    assert alert["startsAt"] == "2026-11-29T03:00:00Z"
    assert alert["endsAt"] == (now + ALERT_TTL).isoformat().replace("+00:00", "Z")
    outside = failure_alert("j", "r", [], "worker died", "u", now)
    assert outside["labels"]["step"] == "none" and "at step" not in outside["annotations"]["summary"]


@dataclasses.dataclass
class _File:
    name: str
    size: int


def test_fingerprint_is_order_independent_and_sees_sizes():
    a, b = _File("sat-001.ccsds", 10), _File("sat-002.ccsds", 20)
    assert fingerprint([a, b]) == fingerprint([b, a])
    assert fingerprint([a, b]).startswith("2-")
    assert fingerprint([a, _File("sat-002.ccsds", 21)]) != fingerprint([a, b])


def test_sensor_and_schedule_names_are_unique(local_defs):
    repository = local_defs.get_repository_def()
    assert {s.name for s in repository.sensor_defs} == {
        "downlink_arrival_sensor",
        "drift_sensor",
        "run_failure_alert_sensor",
        "dead_run_reaper",
    }
    assert isinstance(repository.get_schedule_def("daily_retrain"), dg.ScheduleDefinition)
