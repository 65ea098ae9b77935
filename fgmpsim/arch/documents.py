"""Arch YAML documents: safe parsing, ``extends:`` chains and deep merging (before any validation)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fgmpsim.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no object construction) that also reads ``1e9`` and ``3.9e-3`` as floats: PyYAML
    follows YAML 1.1, where an exponent needs a dot and a sign, so ``1e9`` would otherwise be the *string* "1e9"."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str, where: str) -> Any:
    """``text`` parsed safely; a syntax error becomes a :class:`ConfigError` with its line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{line}: {getattr(err, 'problem', None) or err}", where,
                          "fix the YAML syntax") from None


def deep_merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: mappings merge key by key, anything else (lists, scalars, null) replaces."""
    merged = dict(parent)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read arch file {str(path)!r}: {err.strerror}", "path",
                          "pass an existing YAML file or a shipped arch name (e.g. fgmp)") from None
    data = parse_yaml(text, path.name)
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping, got {type(data).__name__}", path.name,
                          "write 'key: value' lines (see arch_configs/base.yaml)")
    return data


def read_with_extends(path: Path) -> dict[str, Any]:
    """The document at ``path`` merged over its ``extends:`` chain (each path relative to the file that names it),
    with the ``extends`` key removed. Cycles raise :class:`ConfigError`."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    current = path.resolve()
    while True:
        if any(current == seen for seen, _ in chain):
            names = " -> ".join(p.name for p in (*(seen for seen, _ in chain), current))
            raise ConfigError(f"extends cycle: {names}", "extends", "remove the extends that closes the loop")
        data = _read_mapping(current)
        chain.append((current, data))
        parent = data.pop("extends", None)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent:
            raise ConfigError(f"{current.name}: extends must be a file name, got {parent!r}", "extends",
                              "write e.g. 'extends: base.yaml'")
        target = (current.parent / parent).resolve()
        if not target.is_file():
            raise ConfigError(f"{current.name}: extends {parent!r}, which does not exist ({target})", "extends",
                              "give a path relative to the file that extends it")
        current = target
    merged: dict[str, Any] = {}
    for _, data in reversed(chain):
        merged = deep_merge(merged, data)
    return merged
