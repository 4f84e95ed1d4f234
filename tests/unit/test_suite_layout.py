"""The test suite's own layout rules (tests/support is the one place for shared helpers):

- no test imports a conftest, another test module or a helper file beside it (shared code is in
  ``support``, importable because pyproject puts tests/ on pytest's pythonpath), and nothing edits sys.path;
- free ports, tool lookups and condition waits are defined once, in tests/support;
- no fixed sleep stands in for waiting on a condition: outside tests/support a ``time.sleep`` is allowed
  only where real time must pass, said by a comment starting "Real time passing" just above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support.python_source import parse_python

TESTS = Path(__file__).resolve().parents[1]
SHARED_HELPERS = {"free_port", "require_tool", "wait_until", "poll_until", "http_ok", "loopback_service"}
REAL_TIME_COMMENT = "# Real time passing"


def _modules(root: Path) -> list[Path]:
    """The modules under ``root`` outside its support package."""
    return sorted(p for p in root.rglob("*.py") if root / "support" not in p.parents)


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else ""


def _imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def forbidden_imports(root: Path) -> list[str]:
    """``path: module`` for every import of a conftest, a test module or a helper file under ``root``
    (outside its support package), and every use of sys.path."""
    local_stems = {p.stem for p in _modules(root)}
    found = []
    for path in _modules(root):
        tree = parse_python(path.read_text(), str(path))
        for name in _imported_names(tree):
            # Relative, through the tests package, or a module found beside the tests (a conftest, a test
            # module, a helper file: importable only through rootdir or sys.path tricks).
            top = name.lstrip(".").split(".")[0]
            if name.startswith(".") or top == root.name or top in local_stems:
                found.append(f"{path.relative_to(root)}: {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and _name(node.value) == "sys":
                found.append(f"{path.relative_to(root)}: sys.path")
    return found


def helpers_defined_outside_support(root: Path) -> list[str]:
    found = []
    for path in _modules(root):
        for node in ast.walk(parse_python(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in SHARED_HELPERS:
                found.append(f"{path.relative_to(root)}:{node.lineno} def {node.name}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                call = (_name(node.func.value), node.func.attr)
                if call in {("shutil", "which"), ("socket", "socket")}:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {'.'.join(call)}")
    return found


def unexplained_sleeps(root: Path) -> list[str]:
    """``path:line`` of every ``time.sleep``/``sleep`` call (code, not text handed to a subprocess) outside
    support without a "Real time passing" comment in the three lines above it."""
    found = []
    for path in _modules(root):
        lines = path.read_text().splitlines()
        for node in ast.walk(parse_python("\n".join(lines), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            is_sleep = (isinstance(func, ast.Attribute) and func.attr == "sleep") or (
                isinstance(func, ast.Name) and func.id == "sleep"
            )
            above = lines[max(node.lineno - 4, 0) : node.lineno - 1]
            if is_sleep and not any(line.strip().startswith(REAL_TIME_COMMENT) for line in above):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_test_imports_a_conftest_another_test_or_a_helper_beside_it():
    assert forbidden_imports(TESTS) == []


def test_ports_tools_and_waits_come_from_support():
    assert helpers_defined_outside_support(TESTS) == []


def test_no_fixed_sleep_stands_in_for_a_condition_wait():
    assert unexplained_sleeps(TESTS) == []


def test_the_checks_catch_what_they_forbid(tmp_path):
    root = tmp_path / "tests"
    (root / "support").mkdir(parents=True)
    (root / "support" / "waiting.py").write_text("import time\ndef wait_until():\n    time.sleep(1)\n")
    area = root / "integration" / "area"
    area.mkdir(parents=True)
    (area / "conftest.py").write_text("SPEC = {}\n")
    (area / "helpers.py").write_text("X = 1\n")
    (area / "test_a.py").write_text(
        "import shutil, socket, sys, time\n"
        "from tests.integration.area.conftest import SPEC\n"
        "from conftest import SPEC\n"
        "from helpers import X\n"
        "from test_b import y\n"
        "sys.path.insert(0, '.')\n"
        "def free_port():\n"
        "    return socket.socket()\n"
        "def test_a():\n"
        "    shutil.which('promtool')\n"
        "    time.sleep(0.3)\n"
        "    # Real time passing: the step must last a while.\n"
        "    time.sleep(0.05)\n"
        "    run(['python', '-c', 'import time; time.sleep(600)'])\n"
    )
    (area / "test_b.py").write_text("y = 1\n")

    assert forbidden_imports(root) == [
        "integration/area/test_a.py: tests.integration.area.conftest",
        "integration/area/test_a.py: conftest",
        "integration/area/test_a.py: helpers",
        "integration/area/test_a.py: test_b",
        "integration/area/test_a.py: sys.path",
    ]
    assert sorted(helpers_defined_outside_support(root)) == [
        "integration/area/test_a.py:10 shutil.which",
        "integration/area/test_a.py:7 def free_port",
        "integration/area/test_a.py:8 socket.socket",
    ]
    assert unexplained_sleeps(root) == ["integration/area/test_a.py:11"]
