"""Freshness policies (Dagster 1.13 ``FreshnessPolicy``, evaluated by the daemon), applied in one place.

``with_freshness_policies`` maps the asset specs of the assembled Definitions, so no asset module carries
its own policy. What each policy means for the mission:

- ``raw_telemetry``: downlinks land hourly, but the daily partition of day D is complete only after the
  last pass (~00:30 UTC on D+1); it must be ingested by 02:00 UTC every day (cron deadline, a window
  opening at 00:00). Late files re-materialize it later, which keeps it fresh.
- ``asteroid_features``: built right after raw telemetry: by 02:30 UTC.
- ``champion_model``: decided at least daily (the 01:00 retrain, plus drift retraining as soon as the
  drift sensor sees drift): WARN after 25 h without a champion decision, FAIL after 26 h.

The freshness daemon records state changes as events; docs/automation.md says how to read them.
"""

import datetime as dt
import warnings

import dagster as dg

FRESHNESS_POLICIES: dict[str, dg.FreshnessPolicy] = {
    "raw_telemetry": dg.FreshnessPolicy.cron(
        deadline_cron="0 2 * * *", lower_bound_delta=dt.timedelta(hours=2), timezone="UTC"
    ),
    "asteroid_features": dg.FreshnessPolicy.cron(
        deadline_cron="30 2 * * *", lower_bound_delta=dt.timedelta(hours=2, minutes=30), timezone="UTC"
    ),
    "champion_model": dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
    ),
}


def _with_policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = FRESHNESS_POLICIES.get(spec.key.to_user_string())
    return spec if policy is None else spec.replace_attributes(freshness_policy=policy)


def with_freshness_policies(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with FRESHNESS_POLICIES attached; fails if an asset named there does not exist."""
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    missing = sorted(set(FRESHNESS_POLICIES) - keys)
    if missing:
        raise ValueError(f"freshness policies name assets that are not defined: {missing}")
    # The public way to rewrite every spec of assembled Definitions; it is marked "preview" in 1.13 (stable
    # in use since 1.9). Silence only that notice, here, so each definitions load doesn't print it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_resolved_asset_specs(func=_with_policy)
