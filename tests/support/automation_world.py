"""The days and training config of the automation tests' small world (built by the ``world`` fixture in
tests/integration/automation/conftest.py).

The simulator's ``demo`` drift preset is clean until 2025-03-05 and has a fleet-wide calibration step
from 2025-03-22: two clean reference days train the champion, then the drifted day and one more clean day
are ingested (in that order, so a cursor just before the clean day sees only the clean day).
"""

REFERENCE_DAYS = ["2025-03-01", "2025-03-02"]
CLEAN_DAY = "2025-03-04"
DRIFTED_DAY = "2025-03-22"  # demo: CalibrationStep, ir_factor 0.93 fleet-wide
TRAIN_CONFIG = {
    "ops": {
        "training_set": {"config": {"window_days": len(REFERENCE_DAYS)}},
        "candidate_model": {"config": {"max_epochs": 15, "patience": 5}},
        "infrastructure_readiness": {"config": {"min_free_disk_gib": 0.0}},
    }
}
