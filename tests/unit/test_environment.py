import os
from pathlib import Path

import pytest

from astromined.environment import ConfigurationError, Environment, load_settings
from astromined.fleet_presets import SCALES


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


LOCAL_COMMANDS = [["run", "--partition", "2026-01-01"], ["model", "list"], ["home"], ["runs", "reap"]]
BAD_CONFIGURATION = [
    ({"ASTROMINED_ENV": "staging"}, "ASTROMINED_ENV='staging'", LOCAL_COMMANDS),
    ({"ASTROMINED_ENV": ""}, "ASTROMINED_ENV=''", LOCAL_COMMANDS),
    ({"ASTROMINED_SCALE": "huge"}, "ASTROMINED_SCALE='huge'", LOCAL_COMMANDS),
    ({"ASTROMINED_SEED": "seven"}, "ASTROMINED_SEED='seven'", LOCAL_COMMANDS),
    ({"ASTROMINED_SEED": "-1"}, "ASTROMINED_SEED='-1'", LOCAL_COMMANDS),
    ({"ASTROMINED_SEED": str(2**32)}, "ASTROMINED_SEED=", LOCAL_COMMANDS),
    ({"ASTROMINED_DRIFT": "chaos"}, "ASTROMINED_DRIFT='chaos'", LOCAL_COMMANDS),
    (
        {"ASTROMINED_STATE_DIR": "/proc/astromined-state"},
        "ASTROMINED_STATE_DIR=/proc/astromined-state is not a writable directory",
        LOCAL_COMMANDS,
    ),
    ({"ASTROMINED_S3_ENDPOINT_URL": "minio:9000"}, "ASTROMINED_S3_ENDPOINT_URL='minio:9000'", LOCAL_COMMANDS),
    # Production resources resolved outside a run: the unset variable is named, not a traceback.
    (
        {"ASTROMINED_ENV": "prod"},
        "ASTROMINED_LAKE_BUCKET is not set (resource lake)",
        [["model", "list"], ["model", "rollback", "m-0123456789ab"]],
    ),
]


@pytest.mark.fault("bad-config", "bad ASTROMINED_* values, unusable state dir, unset prod variables")
@pytest.mark.parametrize(
    ("environ", "named", "command"),
    [(environ, named, command) for environ, named, commands in BAD_CONFIGURATION for command in commands],
)
def test_bad_configuration_is_one_clear_line(monkeypatch, capsys, tmp_path, environ, named, command):
    from astromined.cli import main

    for variable in [v for v in os.environ if v.startswith("ASTROMINED_") or v == "DAGSTER_HOME"]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("ASTROMINED_STATE_DIR", str(tmp_path / "state"))
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("astromined: configuration error: ") and named in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_a_state_dir_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = load_settings({"ASTROMINED_STATE_DIR": str(blocker / "state")})
    with pytest.raises(ConfigurationError, match="is not a writable directory"):
        settings.require_writable_state()
    good = load_settings({"ASTROMINED_STATE_DIR": str(tmp_path / "state")})
    assert good.require_writable_state().is_dir()


def test_the_s3_endpoint_is_optional_for_plain_aws(tmp_path):
    from resources import build_resources

    aws = load_settings({"ASTROMINED_ENV": "prod", "ASTROMINED_STATE_DIR": str(tmp_path)})
    assert aws.s3_endpoint_url is None
    resources = build_resources(aws)
    assert resources["lake"].endpoint_url is None and resources["landing_zone"].endpoint_url is None
    onprem = load_settings({"ASTROMINED_ENV": "prod", "ASTROMINED_S3_ENDPOINT_URL": "https://s3.onprem:9000"})
    assert build_resources(onprem)["lake"].endpoint_url == "https://s3.onprem:9000"
