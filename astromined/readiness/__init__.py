"""Infrastructure readiness probes (pure: no Dagster). See docs/operations.md, "Infrastructure readiness"."""
