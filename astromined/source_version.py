"""A function's version: a hash of its source and of the project code it can reach.

What Dagster's asset code versions are made of (``assets/code_versions.py``): change the model code and
only the assets whose computation reaches it become stale; the feature tables and the training set are
reused. Computed from the code itself, so no hand-kept version string can be forgotten.

What is hashed, for a function ``fn``:
- its own source, and the source of every function or class it names that is defined in one of the
  ``local_packages`` (the asset modules: helpers such as ``_load_candidate``, config classes with their
  defaults in the signature), recursively;
- the source of every module of ``follow_packages`` (the domain library) that it names, directly or
  through such helpers, together with every module of those packages they import, transitively (static
  imports, module-level or inside functions).
Modules outside ``follow_packages`` (dagster, numpy, torch, ...) are not hashed: their versions are
pinned by the image. Where no source is available (an install of bytecode only) the compiled code stands
in for it, so the version still changes with the code.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path


def _names_used(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # no source shipped: hash the compiled code instead
        code = getattr(obj, "__code__", None)
        return code.co_code.hex() + repr(code.co_consts) if code is not None else repr(obj)


def _module_text(path: Path) -> str:
    return path.read_text() if path.suffix == ".py" else path.read_bytes().hex()


def _parse(source: str) -> ast.Module:
    """``ast.parse``, again when CPython 3.11's shared AST recursion counter was disturbed by an overlapping
    parse (``SystemError: AST constructor recursion depth mismatch``, python/cpython#106905): the counter is
    reset at every parse, so the source is fine and a second parse succeeds."""
    for attempt in range(3):
        try:
            return ast.parse(source)
        except SystemError as error:
            if "recursion depth mismatch" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _in(module_name: str, packages: Iterable[str]) -> bool:
    return any(module_name == p or module_name.startswith(p + ".") for p in packages)


# The first line of an import statement (module level or indented in a function).
_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]*(?:import\b|\\[ \t]*$)|import[ \t]+[\w.])", re.MULTILINE
)


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _import_statements(text: str):
    """The import statements of a module's source, parsed one by one: parsing whole modules costs ~10 ms
    each, and a code location's versions are computed on every definitions load. A docstring line that
    merely looks like an import does not parse and is skipped."""
    consumed = 0
    for match in _IMPORT_LINE.finditer(text):
        if match.start() < consumed:  # a continuation line of the previous statement
            continue
        end = _line_end(text, match.start())
        statement = text[match.start() : end].strip()
        while statement.endswith("\\") and end < len(text):  # backslash continuation
            following = _line_end(text, end + 1)
            statement = statement[:-1] + " " + text[end + 1 : following].strip()
            end = following
        if "(" in statement and ")" not in statement:  # from a import (\n b,\n c,\n)
            close = text.find(")", end)
            if close >= 0:
                statement = statement + " " + text[end : close + 1].replace("\n", " ")
                end = close + 1
        consumed = end
        try:
            parsed = _parse(statement).body
        except SyntaxError:
            continue
        if parsed and isinstance(parsed[0], ast.Import | ast.ImportFrom):
            yield parsed[0]


class SourceIndex:
    """Where each module's file is and what it imports, cached for one pass over a code location."""

    def __init__(self) -> None:
        self.module_file = functools.cache(self._module_file)
        self.imported_modules = functools.cache(self._imported_modules)

    @staticmethod
    def _module_file(module_name: str) -> Path | None:
        loaded = sys.modules.get(module_name)
        if loaded is not None:  # the usual case: the code location imported it already
            origin = getattr(loaded, "__file__", None)
            return Path(origin) if origin else None
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):  # `from module import name`: module.name is not a module
            return None
        if spec is None or spec.origin in (None, "built-in", "frozen"):
            return None
        return Path(spec.origin)

    def _imported_modules(self, module_name: str) -> tuple[str, ...]:
        """Every module the file of ``module_name`` imports (``from a import b`` gives a and a.b)."""
        path = self.module_file(module_name)
        if path is None or path.suffix != ".py":  # no source to scan (bytecode only, extension module)
            return ()
        is_package = path.name == "__init__.py"
        found: list[str] = []
        for node in _import_statements(path.read_text()):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module_name.split(".")
                    anchor = parts if is_package else parts[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append(base)
                found += [f"{base}.{alias.name}" for alias in node.names]
        return tuple(dict.fromkeys(found))

    def closure(self, modules: Iterable[str], follow: tuple[str, ...]) -> list[str]:
        """``modules`` and every module of ``follow`` they import, transitively (with package __init__s)."""
        seen: set[str] = set()
        stack = [m for m in modules if _in(m, follow)]
        while stack:
            name = stack.pop()
            if name in seen or self.module_file(name) is None:
                continue  # `from pkg import function` names a non-module too
            seen.add(name)
            stack += [m for m in self.imported_modules(name) if _in(m, follow) and m not in seen]
            parent = name.rpartition(".")[0]
            if parent and _in(parent, follow) and parent not in seen:
                stack.append(parent)  # importing a.b runs a/__init__.py
        return sorted(seen)


def _collect(
    fn: Callable, follow_packages: tuple[str, ...], local_packages: tuple[str, ...], index: SourceIndex
) -> tuple[dict[str, str], list[str]]:
    """(label → source of each local function/class reached, the followed modules reached)."""
    sources: dict[str, str] = {}
    modules: set[str] = set()
    pending: list[object] = [fn]
    while pending:
        obj = pending.pop()
        if inspect.ismodule(obj):
            if _in(obj.__name__, follow_packages):
                modules.add(obj.__name__)
            continue
        owner = getattr(obj, "__module__", None)
        if not isinstance(owner, str) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if _in(owner, follow_packages):
            modules.add(owner)
        elif _in(owner, local_packages):
            label = f"{owner}.{obj.__qualname__}"
            if label in sources:
                continue
            sources[label] = _source(obj)
            if inspect.isfunction(obj):
                namespace = obj.__globals__
                names = _names_used(obj.__code__)
                for annotation in obj.__annotations__.values():
                    names.add(
                        annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
                    )
            else:  # a class (a Config with its defaults): the names its body uses
                namespace = vars(inspect.getmodule(obj))
                names = {n.id for n in ast.walk(_parse(sources[label])) if isinstance(n, ast.Name)}
            pending += [namespace[name] for name in names if name in namespace]
            # A function-level `import a.b` / `from a.b import c` leaves "a.b" among the code's names.
            modules.update(name for name in names if name not in namespace and _in(name, follow_packages))
    return sources, index.closure(modules, follow_packages)


def source_version(
    fn: Callable,
    follow_packages: tuple[str, ...],
    local_packages: tuple[str, ...],
    index: SourceIndex | None = None,
) -> str:
    """A 16-hex-digit hash of ``fn``'s source and the project code it reaches (see the module docstring).

    Pass one ``index`` to version many functions of the same code location (each file parsed once)."""
    index = index or SourceIndex()
    sources, modules = _collect(fn, follow_packages, local_packages, index)
    for name in modules:
        path = index.module_file(name)
        sources[name] = _module_text(path) if path is not None else ""
    digest = hashlib.sha256()
    for label in sorted(sources):
        digest.update(label.encode() + b"\0" + sources[label].encode() + b"\0")
    return digest.hexdigest()[:16]


def reachable_modules(
    fn: Callable, follow_packages: tuple[str, ...], local_packages: tuple[str, ...]
) -> list[str]:
    """The modules of ``follow_packages`` whose source is part of ``source_version(fn, ...)``."""
    return _collect(fn, follow_packages, local_packages, SourceIndex())[1]
