"""Atomic file writes for the validation outputs: write a temporary file beside the target, then rename it, so a
reader never sees half a report or half a stored reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fgmpsim.io.atomic import atomic_path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` then rename the result to ``path`` (folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def write_csv(frame: pd.DataFrame, path: Path, header: str) -> Path:
    """``frame`` as CSV under ``header`` (``#`` comment lines naming the command that made it), atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(header + frame.to_csv(index=False)))
