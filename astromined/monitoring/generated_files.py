"""Generated, committed files (dashboards, Kubernetes manifests): write them, or list the stale ones."""

from __future__ import annotations

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
