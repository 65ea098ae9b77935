"""Typed errors for bad user input.

Every error raised at an edge (a YAML file, a trace directory, a CLI argument, a model path) names *what* is wrong,
the *field* (dotted path, op name, argument) and *how to fix* it. The CLI prints ``str(err)`` as one line
``error: <what> (<field>): <fix>`` and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

EXCERPT_CHARS = 60
"""The most characters of a user's value an error message quotes (a value may be a whole file or a YAML bomb)."""


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f)}


class FgmpsimError(ValueError):
    """Base class for every user-facing error of fgmpsim."""

    def __init__(self, what: str, field: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.field = field
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.what
        if self.field:
            text += f" ({self.field})"
        if self.fix:
            text += f": {self.fix}"
        # one line, always: a field or value taken from untrusted input may hold line breaks or escape codes
        return text.translate(_CONTROL_ESCAPES)


class FormatError(FgmpsimError):
    """Unknown number format, bad block size, or non-finite input to a quantizer."""


class PolicyError(FgmpsimError):
    """Unknown quantization policy or an out-of-range policy setting (e.g. an FP4 fraction outside [0, 1])."""


class ModelError(FgmpsimError):
    """A model or text source that cannot be found or used."""


class TraceError(FgmpsimError):
    """A trace (in memory or on disk) with missing or inconsistent fields."""


class ConfigError(FgmpsimError):
    """An architecture YAML or override that fails validation."""


class MappingError(FgmpsimError):
    """A mapping that is impossible on the architecture (e.g. a tile that does not fit its buffer)."""


class SweepError(FgmpsimError):
    """A sweep spec that cannot be run."""


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (``...`` and the full length appended when cut), for quoting
    untrusted values in error messages. Containers are never fully rendered: a shared (alias-expanded) value could
    be gigabytes."""
    if isinstance(value, (dict, list, tuple, set)):
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def closest_hint(key: str, known: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest known name, else the list of known names."""
    known = tuple(known)
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}?" if near else f"use one of: {', '.join(known)}"
