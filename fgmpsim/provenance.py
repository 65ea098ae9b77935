"""What produced a result: the package version and a fingerprint of its source code.

Results record :func:`code_version` so a number can be traced to the code that computed it; the fingerprint
changes with any edit of a ``fgmpsim/**/*.py`` or ``*.yaml`` file (code, fitted synthetic-map parameters, the
silicon table), released or not. Sweeps key their points with it, so a rerun after a code change recomputes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.cache
def code_version() -> str:
    """``<version>+src.<12 hex digits>``: the package version and the sha256 of its sources (relative path and
    bytes of every ``fgmpsim/**/*.py`` and ``*.yaml``, sorted)."""
    from fgmpsim import __version__

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for suffix in ("*.py", "*.yaml") for p in root.rglob(suffix)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+src.{digest.hexdigest()[:12]}"
