"""Generated, committed files (dashboards, rule files, Kubernetes manifests): write them, list the stale
ones, and the `--check` command line the generators share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def stale_files(rendered: dict[str, str], out_dir: Path) -> list[str]:
    """``<name>: missing`` or ``<name>: differs from the generator`` for each rendered file not on disk."""
    return [
        f"{name}: {'missing' if not (out_dir / name).exists() else 'differs from the generator'}"
        for name, text in rendered.items()
        if not (out_dir / name).exists() or (out_dir / name).read_text(encoding="utf-8") != text
    ]


def write_files(rendered: dict[str, str], out_dir: Path) -> list[Path]:
    """Write each file atomically (a temp file beside it, then a rename); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered.items():
        path = out_dir / name
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def differences(rendered: dict[str, str], out_dir: Path, pattern: str) -> list[str]:
    """Files in ``out_dir`` that are missing, stale, or (matching ``pattern``) not generated."""
    problems = stale_files(rendered, out_dir)
    problems += [
        f"{path.name}: not produced by the generator"
        for path in sorted(out_dir.glob(pattern))
        if path.name not in rendered
    ]
    return problems


def generator_main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    default_out: Path,
    render_all: Callable[[], dict[str, str]],
    pattern: str,
) -> int:
    """``python -m <prog> [--out DIR] [--check]``: write the files, or exit 1 naming those that differ."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=default_out, help="output directory")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    if not args.out.parent.is_dir():
        parser.error(
            f"{args.out.parent} does not exist: run from a checkout (pip install -e .) or pass --out"
        )
    if args.check:
        problems = differences(render_all(), args.out, pattern)
        for problem in problems:
            sys.stderr.write(f"{args.out / problem}\n")
        if problems:
            sys.stderr.write("regenerate with: make dashboards\n")
        return 1 if problems else 0
    for path in write_files(render_all(), args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0
