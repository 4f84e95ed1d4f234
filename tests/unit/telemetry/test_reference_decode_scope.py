"""The numpy reference implementations (``astromined.telemetry.reference_decode``) are the kernels'
specification for tests and benchmarks: product code runs the compiled kernels and never imports them."""

from __future__ import annotations

import ast
from pathlib import Path

from support.python_source import parse_python

REPO = Path(__file__).resolve().parents[3]
REFERENCE = "astromined.telemetry.reference_decode"


def _imports_reference(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == REFERENCE or name.startswith(REFERENCE + ".") for name in names):
            lines.append(node.lineno)
    return lines


def test_product_code_does_not_import_the_reference_decoder():
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for package in ("astromined", "assets", "resources")
        for path in sorted((REPO / package).rglob("*.py"))
        for line in _imports_reference(parse_python(path.read_text(), str(path)))
    ]
    assert offenders == []


def test_the_scan_sees_a_reference_import():
    assert _imports_reference(parse_python("from astromined.telemetry import reference_decode")) == [1]
    assert _imports_reference(
        parse_python("from astromined.telemetry.reference_decode import validate_packets")
    )
    assert not _imports_reference(parse_python("from astromined.telemetry.decode import decode_file"))
