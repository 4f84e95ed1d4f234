"""The layering contract (docs/architecture.md, "Layers, checked by a test"), run by `make test`.

Read from the source with ``ast`` (no import runs, no extra dependency). Every ``import`` counts: at module
top level, inside functions and under ``if TYPE_CHECKING``. Importing ``a.b.c`` also runs ``a`` and
``a.b``'s ``__init__``, so a module's transitive imports include its packages' ``__init__`` modules.

1. Domain code is pure: nothing a ``DOMAIN`` module imports, directly or transitively, imports Dagster
   (``dagster``, ``dagster_*``), ``assets`` or ``resources``.
2. Domain code (outside the simulator) never loads the simulator, directly or transitively.
3. Product code (``astromined``, ``assets``, ``resources``) imports ``astromined.sim`` only in the
   simulator itself and the few modules of ``SIMULATOR_USERS``.
4. Importing product code never loads the simulator: following top-level imports only (what ``import``
   runs), no module outside ``SIMULATOR_USERS`` reaches ``astromined.sim``. The simulated landing zone is
   imported inside ``build_resources``, for the local environment alone.

A failure lists every violation as ``path:line: [rule] importer imports target`` with the chain of
imports that reaches it.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from support.python_source import parse_python

REPO = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("astromined", "assets", "resources")
SIMULATOR = "astromined.sim"

# Pure domain code (a trailing ".*" covers a package and everything in it). Each must import without
# Dagster so that it is tested in milliseconds and reused outside the code location (on board, notebooks).
DOMAIN = (
    "astromined.telemetry.*",
    "astromined.features.*",
    "astromined.ml.*",
    "astromined.sim.*",
    "astromined.readiness.*",
    "astromined.placement.policy",
    "astromined.placement.quantities",
    "astromined.placement.snapshot",
    "astromined.placement.informer",
    "astromined.placement.placer",
    "astromined.placement.settings",
    "astromined.placement.step_metadata",
    "astromined.calibration",
    "astromined.environment",
    "astromined.fleet",
    "astromined.fleet_presets",
    "astromined.lake_layout",
    "astromined.physics",
    "astromined.process_liveness",
    "astromined.storage",
    "astromined.taxonomy",
)

# The only product modules outside astromined/sim that may import the simulator, each by design.
SIMULATOR_USERS = {
    "resources.simulated_landing_zone": "the local landing zone is the fleet simulator (make run, tests)",
    "astromined.placement.demo": "the placement demo runs two simulated Kubernetes API servers",
}


def _is_dagster(target: str) -> bool:
    top = target.split(".")[0]
    return top == "dagster" or top.startswith("dagster_")


def _is_dagster_layer(target: str) -> bool:
    """The Dagster-facing packages: asset definitions and resources."""
    return target.split(".")[0] in ("assets", "resources")


def _in(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


@dataclasses.dataclass(frozen=True)
class Import:
    importer: str  # the importing module
    target: str  # the module imported (a project module where it is one, else the name as written)
    path: str  # relative to the project root
    line: int
    top_level: bool  # runs when the importer is imported (not inside a function body)


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    imp: Import
    chain: tuple[str, ...]  # the modules from the checked one to the importer

    def __str__(self) -> str:
        text = f"{self.imp.path}:{self.imp.line}: [{self.rule}] {self.imp.importer} imports {self.imp.target}"
        return text if len(self.chain) < 2 else f"{text} (reached: {' -> '.join(self.chain)})"


class ImportGraph:
    """Every import statement of the project's modules, resolved to project modules where possible."""

    def __init__(self, root: Path, packages: Iterable[str]):
        self.root = root
        self.paths: dict[str, Path] = {}
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                self.paths[name] = path
        self.imports: dict[str, list[Import]] = {name: self._parse(name) for name in self.paths}

    def _parse(self, name: str) -> list[Import]:
        path = self.paths[name]
        tree = parse_python(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        where = path.relative_to(self.root).as_posix()
        found: list[Import] = []

        def visit(node: ast.AST, top_level: bool) -> None:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(name, self._resolve(alias.name), where, node.lineno, top_level))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: "." is the package, each further dot one package up
                    parts = package.split(".")
                    anchor = parts[: len(parts) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in self.paths else self._resolve(base)
                    found.append(Import(name, target, where, node.lineno, top_level))
            inner = top_level and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(tree, True)
        return list(dict.fromkeys(found))  # one per (line, target): ``from a import b, c`` names a once

    def _resolve(self, target: str) -> str:
        """The longest project module a dotted name starts with (``a.b.Name`` -> ``a.b``), else the name."""
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.paths:
                return ".".join(parts[:end])
        return target

    def _packages_of(self, module: str) -> list[str]:
        parts = module.split(".")
        return [p for p in (".".join(parts[:end]) for end in range(1, len(parts))) if p in self.paths]

    def matching(self, patterns: Iterable[str]) -> list[str]:
        names = []
        for pattern in patterns:
            if pattern.endswith(".*"):
                names += [n for n in self.paths if _in(n, pattern[:-2])]
            elif pattern in self.paths:
                names.append(pattern)
        return sorted(set(names))

    def reach(
        self, start: str, top_level_only: bool = False, stop: Callable[[str], bool] = lambda _: False
    ) -> dict[str, tuple[str, ...]]:
        """Every project module importing ``start`` runs (or could run, counting function bodies), each
        with the chain of modules that leads to it; modules for which ``stop`` is true are not entered."""
        chains = {start: (start,)}
        queue = deque([start])
        while queue:
            module = queue.popleft()
            targets = [i.target for i in self.imports[module] if i.top_level or not top_level_only]
            nexts = self._packages_of(module)
            for target in targets:
                if target in self.paths:
                    nexts += [*self._packages_of(target), target]
            for nxt in nexts:
                if nxt not in chains and not stop(nxt):
                    chains[nxt] = (*chains[module], nxt)
                    queue.append(nxt)
        return chains

    def transitive_violations(
        self,
        starts: Iterable[str],
        rule: str,
        forbidden: Callable[[str], bool],
        top_level_only: bool = False,
        stop: Callable[[str], bool] = lambda _: False,
    ) -> list[Violation]:
        """Each forbidden import reachable from any of ``starts``, once, with the first chain found. The
        walk stops at a forbidden module (and where ``stop`` says): what it imports in turn is a consequence,
        not another cause."""
        seen: dict[Import, Violation] = {}
        for start in starts:
            for module, chain in self.reach(start, top_level_only, lambda m: forbidden(m) or stop(m)).items():
                for imp in self.imports[module]:
                    if (imp.top_level or not top_level_only) and forbidden(imp.target) and imp not in seen:
                        seen[imp] = Violation(rule, imp, chain)
        return sorted(seen.values(), key=lambda v: (v.imp.path, v.imp.line, v.imp.target))


def check_domain_is_pure(graph: ImportGraph, domain: Iterable[str]) -> list[Violation]:
    return graph.transitive_violations(
        graph.matching(domain),
        "domain code imports no dagster, assets or resources",
        lambda target: _is_dagster(target) or _is_dagster_layer(target),
    )


def check_domain_never_loads_simulator(graph: ImportGraph, domain: Iterable[str]) -> list[Violation]:
    outside_sim = [m for m in graph.matching(domain) if not _in(m, SIMULATOR)]
    # Not followed into assets/resources: importing those is already a violation of the first rule.
    return graph.transitive_violations(
        outside_sim,
        "domain code never loads the simulator",
        lambda target: _in(target, SIMULATOR),
        stop=_is_dagster_layer,
    )


def check_simulator_users(graph: ImportGraph, allowed: Iterable[str]) -> list[Violation]:
    allowed = set(allowed)
    violations = []
    for module, imports in sorted(graph.imports.items()):
        if _in(module, SIMULATOR) or module in allowed:
            continue
        for imp in imports:
            if _in(imp.target, SIMULATOR):
                violations.append(
                    Violation("only the simulator and SIMULATOR_USERS import astromined.sim", imp, (module,))
                )
    return violations


def check_importing_never_loads_simulator(graph: ImportGraph, allowed: Iterable[str]) -> list[Violation]:
    allowed = set(allowed)
    starts = [m for m in graph.paths if not _in(m, SIMULATOR) and m not in allowed]
    # Importing a SIMULATOR_USERS module at top level loads the simulator too: that import is the cause.
    return graph.transitive_violations(
        starts,
        "importing product code never loads the simulator",
        lambda target: _in(target, SIMULATOR) or target in allowed,
        top_level_only=True,
    )


def _report(violations: list[Violation]) -> str:
    return f"{len(violations)} import(s) break the layering contract:\n" + "\n".join(map(str, violations))


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph(REPO, PRODUCT_PACKAGES)


def test_contract_names_existing_modules(graph: ImportGraph) -> None:
    """A renamed or deleted module must not silently drop out of the contract."""
    missing = [p for p in DOMAIN if not graph.matching([p])]
    missing += [m for m in SIMULATOR_USERS if m not in graph.paths]
    assert not missing, f"the contract names modules that do not exist: {missing}"


def test_domain_imports_no_dagster_assets_or_resources(graph: ImportGraph) -> None:
    violations = check_domain_is_pure(graph, DOMAIN)
    assert not violations, _report(violations)


def test_domain_never_loads_the_simulator(graph: ImportGraph) -> None:
    violations = check_domain_never_loads_simulator(graph, DOMAIN)
    assert not violations, _report(violations)


def test_only_the_simulator_and_its_users_import_it(graph: ImportGraph) -> None:
    violations = check_simulator_users(graph, SIMULATOR_USERS)
    assert not violations, _report(violations)


def test_importing_product_code_never_loads_the_simulator(graph: ImportGraph) -> None:
    violations = check_importing_never_loads_simulator(graph, SIMULATOR_USERS)
    assert not violations, _report(violations)


# --- the checker finds what it must (a contract that cannot fail proves nothing) -----------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def toy(tmp_path: Path) -> ImportGraph:
    """A small project with one violation of each kind, at known lines."""
    _write(
        tmp_path,
        {
            "astromined/__init__.py": "",
            "astromined/telemetry/__init__.py": "",
            # Function-level import of a product module that imports dagster.
            "astromined/telemetry/ingest.py": (
                "import numpy\n\n\ndef f():\n    from astromined import helper\n"
            ),
            "astromined/helper.py": "import os\nimport dagster as dg\n",
            # Transitive (relative import, then a package __init__) to the simulator and to resources.
            "astromined/features/__init__.py": "",
            "astromined/features/engineering.py": "from . import util\n",
            "astromined/features/util.py": "from astromined.sim.downlink import make\n",
            "astromined/sim/__init__.py": "",
            "astromined/sim/downlink.py": "from astromined.telemetry import ingest\n",
            "astromined/ml/__init__.py": "import resources.lake\n",
            "astromined/ml/model.py": "X = 1\n",
            "astromined/demo.py": "from astromined.sim import downlink\n",
            "astromined/cli.py": "def main():\n    from astromined.demo import run\n",
            "astromined/definitions.py": "from astromined.demo import run\n",
            "resources/__init__.py": "",
            "resources/lake.py": "import dagster\n",
        },
    )
    return ImportGraph(tmp_path, PRODUCT_PACKAGES)


def _lines(violations: list[Violation]) -> set[str]:
    return {f"{Path(v.imp.path).name}:{v.imp.line}:{v.imp.target}" for v in violations}


def test_checker_finds_function_level_transitive_and_package_init_imports(toy: ImportGraph) -> None:
    domain = ("astromined.telemetry.*", "astromined.features.*", "astromined.ml.model")
    pure = check_domain_is_pure(toy, domain)
    # ingest -> (in a function) helper -> dagster; ml.model -> ml/__init__ -> resources.lake (not followed
    # further: resources.lake importing dagster is a consequence).
    assert _lines(pure) == {"helper.py:2:dagster", "__init__.py:1:resources.lake"}
    assert all("[domain code imports no dagster, assets or resources]" in str(v) for v in pure)
    helper = next(v for v in pure if v.imp.path == "astromined/helper.py")
    assert str(helper).startswith("astromined/helper.py:2: ")
    assert helper.chain == (
        "astromined.features.engineering",
        "astromined.features.util",
        "astromined.sim.downlink",
        "astromined.telemetry.ingest",
        "astromined.helper",
    )
    # The function-level import alone is enough.
    assert _lines(check_domain_is_pure(toy, ["astromined.telemetry.ingest"])) == {"helper.py:2:dagster"}

    no_sim = check_domain_never_loads_simulator(toy, domain)
    assert _lines(no_sim) == {"util.py:1:astromined.sim.downlink"}
    assert no_sim[0].chain == ("astromined.features.engineering", "astromined.features.util")


def test_checker_allows_only_the_named_simulator_users(toy: ImportGraph) -> None:
    direct = check_simulator_users(toy, {"astromined.demo": "runs the simulator"})
    assert _lines(direct) == {"util.py:1:astromined.sim.downlink"}
    assert _lines(check_simulator_users(toy, {})) == {
        "util.py:1:astromined.sim.downlink",
        "demo.py:1:astromined.sim.downlink",
    }
    # definitions imports the demo at top level (loads the simulator); cli only inside a function.
    loading = check_importing_never_loads_simulator(toy, {"astromined.demo": "runs the simulator"})
    assert _lines(loading) == {"util.py:1:astromined.sim.downlink", "definitions.py:1:astromined.demo"}
