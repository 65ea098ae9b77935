"""Typed errors for bad user input.

Every error raised at an edge (a YAML file, a trace directory, a CLI argument, a model path) names *what* is wrong,
the *field* (dotted path, op name, argument) and *how to fix* it. The CLI prints ``str(err)`` as one line
``error: <what> (<field>): <fix>`` and exits with status 2.
"""

from __future__ import annotations


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
        return text


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
