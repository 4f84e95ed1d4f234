from pathlib import Path

import pytest

from astromined.environment import SCALES, ConfigurationError, Environment, load_settings


def test_defaults_are_local_default_scale_in_repo_state_dir():
    settings = load_settings({})
    assert settings.environment is Environment.LOCAL
    assert settings.scale is SCALES["default"]
    assert settings.seed == 42
    assert settings.state_dir.name == ".state"
    assert settings.dagster_home == settings.state_dir / "dagster_home"


def test_reads_every_variable(tmp_path: Path):
    settings = load_settings(
        {
            "ASTROMINED_ENV": "prod",
            "ASTROMINED_STATE_DIR": str(tmp_path),
            "ASTROMINED_SCALE": "tiny",
            "ASTROMINED_SEED": "9",
        }
    )
    assert settings.environment is Environment.PROD
    assert settings.state_dir == tmp_path.resolve()
    assert settings.scale.name == "tiny"
    assert settings.seed == 9


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ASTROMINED_ENV", "staging"), ("ASTROMINED_SCALE", "huge"), ("ASTROMINED_SEED", "seven")],
)
def test_bad_values_name_the_variable(variable: str, value: str):
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})


def test_benchmark_scale_downlinks_at_least_a_gigabyte_per_day():
    from astromined.fleet import N_SATELLITES
    from astromined.telemetry.packet_format import PACKET_SIZE

    assert SCALES["benchmark"].observations_per_satellite * N_SATELLITES * PACKET_SIZE >= 1e9


def test_importing_definitions_does_not_read_the_environment(monkeypatch):
    import importlib

    import astromined.definitions

    monkeypatch.setenv("ASTROMINED_ENV", "not-an-environment")
    importlib.reload(astromined.definitions)  # must not raise: the environment is read lazily
