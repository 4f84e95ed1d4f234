"""docs/reliability.md lists exactly the fault cases the suite has, and none of them failed when it was made.

The page is generated (`make reliability`); this test reads the `@pytest.mark.fault(kind, case)` markers
from the test sources (no collection, so it is fast) and compares.
"""

import ast
import re
from pathlib import Path

from support.python_source import parse_python

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
ROW = re.compile(
    r"^\| (?P<case>.+?) \| `(?P<file>[^`]+)::(?P<function>\w+)` \| (?P<runs>\d+) \| (?P<outcome>.+) \|$"
)


def _fault_markers() -> set[tuple[str, str, str]]:
    found = set()
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        tree = parse_python(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.fault"
                    and len(decorator.args) == 2
                ):
                    case = ast.literal_eval(decorator.args[1])
                    found.add((case, path.relative_to(REPO / "tests").as_posix(), node.name))
    return found


def _documented() -> dict[tuple[str, str, str], str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            case = match["case"].replace("\\|", "|")
            rows[(case, match["file"], match["function"])] = match["outcome"]
    return rows


def test_the_page_lists_every_fault_case_of_the_suite():
    markers, documented = _fault_markers(), _documented()
    assert len(markers) >= 40, "the fault suite is larger than this: is the marker scan broken?"
    missing, stale = markers - documented.keys(), documented.keys() - markers
    assert not missing and not stale, (
        f"docs/reliability.md is out of date; run `make reliability`.\nnot listed: {sorted(missing)}\n"
        f"no longer in the suite: {sorted(stale)}"
    )


def test_no_listed_case_failed():
    failed = {key: outcome for key, outcome in _documented().items() if "FAILED" in outcome}
    assert not failed, f"docs/reliability.md records failures: {failed}"
