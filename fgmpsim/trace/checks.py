"""Checks of user-given trace settings, shared by the trace builders; each raises a typed error naming the field."""

from __future__ import annotations

import numpy as np

from fgmpsim.errors import TraceError


def positive_int(value: object, field: str, fix: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1, else :class:`TraceError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TraceError(f"{field} must be a positive integer, got {value!r}", field, fix)
    return int(value)


def seed_value(value: object) -> int:
    """A non-negative integer seed, else :class:`TraceError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise TraceError(f"seed must be a non-negative integer, got {value!r}", "seed", "e.g. --seed 0")
    return int(value)
