"""Benchmark modules for the tests that check them: ``benchmarks/`` is a folder of scripts, not a package
on the import path, so a module is loaded from its file (only modules that import nothing from beside
them can be loaded this way)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark_module(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (loaded once per process)."""
    key = f"astromined_benchmarks_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BENCHMARKS / f"{name}.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"no benchmark module {name!r} in {BENCHMARKS}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up while the class is created
        spec.loader.exec_module(module)
    return sys.modules[key]
