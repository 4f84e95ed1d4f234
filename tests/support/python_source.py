"""Parsing Python source in tests that scan the project's code.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, and a parse that
overlaps another one (a thread switch or a finalizer during the conversion) can fail with
``SystemError: AST constructor recursion depth mismatch`` although the source is fine
(https://github.com/python/cpython/issues/106905). The counter is reset at the start of every parse, so
parsing again is the remedy; any other error is raised as it is.
"""

from __future__ import annotations

import ast

_ATTEMPTS = 3


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    for attempt in range(_ATTEMPTS):
        try:
            return ast.parse(source, filename=filename)
        except SystemError as error:
            if "recursion depth mismatch" not in str(error) or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
