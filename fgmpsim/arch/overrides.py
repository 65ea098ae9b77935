"""``--set a.b.c=value`` overrides: parse, check each dotted path against the schema, apply to a merged document."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fgmpsim.arch.schema import known_keys
from fgmpsim.errors import ConfigError, closest_hint, excerpt
from fgmpsim.io.safe_yaml import parse_yaml

Overrides = Mapping[str, Any] | Sequence[str]
_DOTTED = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_MAX_KEY_CHARS = 200  # the longest real path (energy.actions.aqu_sensitivity_read_bit.source) has 48


def parse_overrides(overrides: Overrides | None) -> list[tuple[tuple[str, ...], Any]]:
    """``["a.b=1", ...]`` or ``{"a.b": "1", ...}`` as ``[(("a", "b"), 1), ...]``; string values are parsed as YAML
    (``16`` -> int, ``1e9`` -> float, ``true`` -> bool, ``null`` -> None, ``[fp8]`` -> list)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        overrides = [overrides]
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = []
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"override {excerpt(item)} is not of the form a.b.c=value", "--set",
                                  "write e.g. --set pe_array.lanes_per_pe=8")
            key, _, text = item.partition("=")
            pairs.append((key.strip(), text))
    parsed = []
    for key, value in pairs:
        if not isinstance(key, str) or not 0 < len(key) <= _MAX_KEY_CHARS or not _DOTTED.fullmatch(key):
            raise ConfigError(f"override key {excerpt(key)} is not a dotted field path", "--set",
                              "write e.g. --set pe_array.lanes_per_pe=8")
        path = tuple(key.split("."))
        _check_path(path, key)
        parsed.append((path, parse_yaml(value, f"--set {key}") if isinstance(value, str) else value))
    return parsed


def _check_path(path: tuple[str, ...], key: str) -> None:
    for depth, part in enumerate(path):
        known = known_keys(path[:depth])
        if known is None:
            raise ConfigError(f"override {excerpt(key)}: {'.'.join(path[:depth])!r} is a value, not a section", key,
                              f"set {'.'.join(path[:depth])} itself")
        if part not in known:
            raise ConfigError(f"override {excerpt(key)}: no such field {excerpt(part)}", key, closest_hint(part, known))
    if known_keys(path) is not None:
        raise ConfigError(f"override {excerpt(key)} names a whole section", key,
                          f"set one of its fields, e.g. {key}.{known_keys(path)[0]}")  # type: ignore[index]


def apply_overrides(data: dict[str, Any], overrides: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A copy of ``data`` with each override set (missing sections are created)."""
    out = _copy(data)
    for path, value in overrides:
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def _copy(data: Any) -> Any:
    return {key: _copy(value) for key, value in data.items()} if isinstance(data, dict) else data
