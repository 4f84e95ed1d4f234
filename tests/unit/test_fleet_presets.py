"""The presets in astromined.fleet_presets are plain data; the simulator must read each drift preset back
to exactly the JSON the environment hands the simulated landing zone (its regeneration signature)."""

import pytest

from astromined.fleet_presets import DRIFT_PRESETS, SCALES, drift_preset_json
from astromined.sim.scenarios import DEMO_DRIFT, PRESETS, Scenarios


@pytest.mark.parametrize("name", sorted(DRIFT_PRESETS))
def test_drift_preset_json_is_the_simulators_canonical_form(name: str) -> None:
    text = drift_preset_json(name)
    assert Scenarios.from_json(text).to_json() == text
    assert PRESETS[name].to_json() == text


def test_presets_are_the_simulators() -> None:
    assert set(PRESETS) == set(DRIFT_PRESETS) == {"none", "demo"}
    assert drift_preset_json("none") == "[]"
    assert {type(s).__name__ for s in DEMO_DRIFT.items} == {
        "CorruptionBurst",
        "GainDrift",
        "CompositionShift",
        "CalibrationStep",
    }


def test_scales_are_named_by_their_key() -> None:
    assert list(SCALES) == ["tiny", "default", "benchmark", "benchmark-quarter"]
    assert all(scale.name == name for name, scale in SCALES.items())
