"""Where the shipped architectures (``arch_configs/``) and traces (``traces/``) are, in any kind of install.

A wheel carries copies of both folders inside the package (``fgmpsim/_shipped/``, put there by ``setup.py``'s
build step); an editable install or a source checkout uses the repository's own folders next to the package.
Shipped traces may be named without a path: ``load_trace("smollm2-135m-fgmp70")`` works from any directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _folder(name: str) -> Path:
    inside = _PACKAGE / "_shipped" / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


ARCH_CONFIG_DIR = _folder("arch_configs")
"""The shipped architecture YAML files."""

TRACE_DIR = _folder("traces")
"""The shipped trace directories (real SmolLM2-135M exports)."""


def shipped_traces() -> tuple[str, ...]:
    """Names of the shipped trace directories, sorted."""
    return tuple(sorted(p.name for p in TRACE_DIR.iterdir() if (p / "manifest.yaml").is_file())) \
        if TRACE_DIR.is_dir() else ()


def resolve_trace_dir(name_or_path: str | Path) -> Path:
    """``name_or_path`` if it is an existing directory, else the shipped trace of that name, else the path as
    given (so the caller's error names what the user typed)."""
    path = Path(name_or_path)
    if path.is_dir() or path.parent != Path("."):
        return path
    shipped = TRACE_DIR / path.name
    return shipped if shipped.is_dir() else path
