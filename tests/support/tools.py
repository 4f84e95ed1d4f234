"""External command-line tools the tests run (installed by `make system-tools` or the test extras)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The path of ``name`` on PATH. A missing tool fails the test under CI=true (CI must have every tool)
    and skips it, naming the tool, elsewhere."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (run `make system-tools` as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
