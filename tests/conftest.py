"""Shared fixtures. Tests are marked by directory: tests/unit → unit, tests/integration → integration,
tests/e2e → e2e (`make test` runs all three)."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_ROOT = Path(__file__).parent
MARKERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(item.fspath).resolve().relative_to(TESTS_ROOT)
        marker = MARKERS.get(relative.parts[0])
        if marker is not None:
            item.add_marker(marker)


@pytest.fixture
def tiny_settings(tmp_path: Path):
    """Local settings with the tiny simulated fleet and all state under a temp dir."""
    from astromined.environment import load_settings

    return load_settings({"ASTROMINED_STATE_DIR": str(tmp_path / "state"), "ASTROMINED_SCALE": "tiny"})


@pytest.fixture
def tiny_resources(tiny_settings):
    from resources import build_resources

    return build_resources(tiny_settings)
