"""The one place that decides which environment the code location runs in.

Read lazily, when definitions load or a command starts, never at import time. Everything
environment-dependent (resources, executor, instance) is built from the ``Settings`` returned here.

Variables:
  ASTROMINED_ENV        local (default) | prod
  ASTROMINED_STATE_DIR  where local state lives (default: <repo>/.state)
  ASTROMINED_SCALE      tiny | default | benchmark | benchmark-quarter: the simulated fleet's size, a key of
                        astromined.fleet_presets.SCALES (local only)
  ASTROMINED_SEED       the simulator's seed (default 42)
  ASTROMINED_DRIFT      none (default) | demo: the simulator's drift scenarios, a key of
                        astromined.fleet_presets.DRIFT_PRESETS (local only; see docs/simulator.md)
  ASTROMINED_S3_ENDPOINT_URL  the S3 endpoint of the lake and landing zone (prod; unset: AWS S3 itself,
                        set: an S3-compatible on-prem object store such as MinIO or Ceph RGW)
  ASTROMINED_FLEET_PUBLIC_KEY_PATH  the fleet's Ed25519 public key that uplink packages are verified with
                        (default: beside the local signing key; prod: the mounted ConfigMap)

  ASTROMINED_READINESS_CLUSTERS, ASTROMINED_KUBECONFIG, ASTROMINED_PIPELINE_NAMESPACE,
  ASTROMINED_PROMETHEUS_URL, ASTROMINED_ALERTMANAGER_URL, ASTROMINED_GRAFANA_URL,
  ASTROMINED_GRAFANA_DATASOURCE_UID, ASTROMINED_GRAFANA_TOKEN_FILE
                        where the readiness assets probe (resources/readiness.py); unset: not configured

A bad value raises ``ConfigurationError`` naming the variable; the CLI prints it as one line.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from enum import StrEnum
from pathlib import Path

from astromined.fleet_presets import DRIFT_PRESETS, SCALES, Scale

REPO_ROOT = Path(__file__).resolve().parent.parent


# Handed as they are to ReadinessResource.from_environment (resources/readiness.py documents each).
READINESS_VARIABLES = (
    "ASTROMINED_READINESS_CLUSTERS",
    "ASTROMINED_KUBECONFIG",
    "ASTROMINED_PIPELINE_NAMESPACE",
    "ASTROMINED_PROMETHEUS_URL",
    "ASTROMINED_ALERTMANAGER_URL",
    "ASTROMINED_GRAFANA_URL",
    "ASTROMINED_GRAFANA_DATASOURCE_UID",
    "ASTROMINED_GRAFANA_TOKEN_FILE",
)


class Environment(StrEnum):
    LOCAL = "local"
    PROD = "prod"


@dataclasses.dataclass(frozen=True)
class Settings:
    environment: Environment
    state_dir: Path
    scale: Scale
    seed: int
    drift: str = "none"  # a key of astromined.fleet_presets.DRIFT_PRESETS
    s3_endpoint_url: str | None = None  # None: AWS S3 (boto3's own endpoint resolution)
    fleet_public_key_override: Path | None = None  # None: the environment's default (resources/signing.py)
    readiness_env: tuple[tuple[str, str], ...] = ()  # the READINESS_VARIABLES that are set

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"

    @property
    def lake_root(self) -> Path:
        return self.state_dir / "lake"

    @property
    def landing_zone_root(self) -> Path:
        return self.state_dir / "landing_zone"

    @property
    def signing_key_path(self) -> Path:
        return self.state_dir / "secrets" / "uplink_signing_key.pem"

    def require_writable_state(self) -> Path:
        """Create the state dir if needed and prove it writable; a ConfigurationError names it if not."""
        hint = f"ASTROMINED_STATE_DIR={self.state_dir}"
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigurationError(
                f"{hint} is not a writable directory ({reason}); point ASTROMINED_STATE_DIR at one"
            ) from exc
        return self.state_dir


class ConfigurationError(ValueError):
    pass


def code_version() -> str:
    """What code produced an artifact: $ASTROMINED_CODE_VERSION (set by the image build), else git."""
    if version := os.environ.get("ASTROMINED_CODE_VERSION"):
        return version
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git:{head}{'-dirty' if dirty else ''}"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    raw_env = env.get("ASTROMINED_ENV", Environment.LOCAL.value)
    try:
        environment = Environment(raw_env)
    except ValueError as exc:
        choices = ", ".join(e.value for e in Environment)
        raise ConfigurationError(f"ASTROMINED_ENV={raw_env!r} is not one of: {choices}") from exc
    scale_name = env.get("ASTROMINED_SCALE", "default")
    if scale_name not in SCALES:
        raise ConfigurationError(f"ASTROMINED_SCALE={scale_name!r} is not one of: {', '.join(SCALES)}")
    raw_seed = env.get("ASTROMINED_SEED", "42")
    try:
        seed = int(raw_seed)
    except ValueError as exc:
        raise ConfigurationError(f"ASTROMINED_SEED={raw_seed!r} is not an integer") from exc
    if not 0 <= seed < 2**32:
        raise ConfigurationError(f"ASTROMINED_SEED={raw_seed!r} must be between 0 and 4294967295")
    drift = env.get("ASTROMINED_DRIFT", "none")
    if drift not in DRIFT_PRESETS:
        raise ConfigurationError(f"ASTROMINED_DRIFT={drift!r} is not one of: {', '.join(DRIFT_PRESETS)}")
    raw_state_dir = env.get("ASTROMINED_STATE_DIR") or str(REPO_ROOT / ".state")
    state_dir = Path(raw_state_dir).expanduser().resolve()
    endpoint = env.get("ASTROMINED_S3_ENDPOINT_URL") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"ASTROMINED_S3_ENDPOINT_URL={endpoint!r} is not an http(s) URL (unset it for AWS S3)"
        )
    fleet_key = env.get("ASTROMINED_FLEET_PUBLIC_KEY_PATH") or None
    return Settings(
        environment=environment,
        state_dir=state_dir,
        scale=SCALES[scale_name],
        seed=seed,
        drift=drift,
        s3_endpoint_url=endpoint,
        fleet_public_key_override=Path(fleet_key) if fleet_key else None,
        readiness_env=tuple((name, env[name]) for name in READINESS_VARIABLES if env.get(name)),
    )
