"""Resources per environment. ``build_resources`` is the only place that maps an environment to them."""

import dagster as dg

from astromined.environment import Environment, Settings
from astromined.fleet_presets import drift_preset_json
from resources.alerting import AlertmanagerResource
from resources.compute import ComputeResource
from resources.lake import LakeResource, LocalLakeResource, S3LakeResource
from resources.landing_zone import LandingZoneResource, S3LandingZoneResource
from resources.readiness import ReadinessResource
from resources.signing import PROD_SIGNING_KEY_PATH, UplinkSigningKeyResource, fleet_public_key_path

__all__ = [
    "AlertmanagerResource",
    "ComputeResource",
    "LakeResource",
    "LandingZoneResource",
    "ReadinessResource",
    "UplinkSigningKeyResource",
    "build_resources",
    "resolved_resource",
]


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    if settings.environment is Environment.LOCAL:
        # Imported here, not at the top: only the local environment loads the fleet simulator; importing
        # the code location, and every production run, never does (tests/unit/test_import_contract.py).
        from resources.simulated_landing_zone import SimulatedLandingZoneResource

        return {
            "lake": LocalLakeResource(root=str(settings.lake_root)),
            "landing_zone": SimulatedLandingZoneResource(
                root=str(settings.landing_zone_root),
                seed=settings.seed,
                observations_per_satellite=settings.scale.observations_per_satellite,
                population_size=settings.scale.population_size,
                scenarios_json=drift_preset_json(settings.drift),
            ),
            "compute": ComputeResource(),
            # Local mode: no cluster or monitoring URL unless set in the environment ("not configured").
            "readiness": ReadinessResource.from_environment(dict(settings.readiness_env)),
            # Alertmanager and the Dagster UI on loopback, at their usual local ports.
            "alertmanager": AlertmanagerResource(),
            "signing_key": UplinkSigningKeyResource(
                private_key_path=str(settings.signing_key_path),
                fleet_public_key_path=str(fleet_public_key_path(settings)),
                create_if_missing=True,
            ),
        }
    # Production: everything comes from the deployment's environment (Helm values / Secrets).
    return {
        "lake": S3LakeResource(
            bucket=dg.EnvVar("ASTROMINED_LAKE_BUCKET"),
            prefix="lake",
            endpoint_url=settings.s3_endpoint_url,
        ),
        "landing_zone": S3LandingZoneResource(
            bucket=dg.EnvVar("ASTROMINED_LANDING_BUCKET"),
            prefix="landing",
            endpoint_url=settings.s3_endpoint_url,
        ),
        "compute": ComputeResource(),
        # Clusters and monitoring URLs from the deployment's environment (resources/readiness.py).
        "readiness": ReadinessResource.from_environment(dict(settings.readiness_env)),
        "alertmanager": AlertmanagerResource(
            url=dg.EnvVar("ASTROMINED_ALERTMANAGER_URL"),
            dagster_ui_url=dg.EnvVar("ASTROMINED_DAGSTER_UI_URL"),
        ),
        # Mounted only into the uplink_package step's pod (its op tags, assets/uplink.py).
        "signing_key": UplinkSigningKeyResource(
            private_key_path=PROD_SIGNING_KEY_PATH, fleet_public_key_path=str(fleet_public_key_path(settings))
        ),
    }


def resolved_resource(settings: Settings, name: str) -> dg.ConfigurableResource:
    """One resource outside a Dagster run (the CLI), resolved exactly as a run resolves it: its
    ``EnvVar``s read and its config validated, so a missing variable is one clear error, not a crash."""
    with dg.build_resources({name: build_resources(settings)[name]}) as resolved:
        return getattr(resolved, name)
