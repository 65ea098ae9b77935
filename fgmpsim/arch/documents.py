"""Arch YAML documents: ``extends:`` chains (confined to trusted directories) and deep merging, before validation.

Parsing is :mod:`fgmpsim.io.safe_yaml` (the one YAML reader). ``extends:`` names a file relative to the file that
extends it, or a shipped config by its file name (``extends: fgmp.yaml``). It resolves only *inside* the extending
file's directory (subdirectories included), the shipped ``arch_configs/`` directory, or a directory the caller
passes in ``config_path``; the target is resolved through symlinks first, so ``..``, absolute paths and links that
lead elsewhere are refused before the file is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fgmpsim.errors import ConfigError, excerpt
from fgmpsim.io.safe_yaml import parse_yaml, read_yaml_file

__all__ = ["deep_merge", "parse_yaml", "read_with_extends"]  # parse_yaml: the one reader, kept importable here


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
    data = read_yaml_file(path, path.name)
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping, got {type(data).__name__}", path.name,
                          "write 'key: value' lines (see arch_configs/base.yaml)")
    return data


def _resolve_parent(current: Path, parent: str, roots: tuple[Path, ...]) -> Path:
    """The file ``extends: parent`` of ``current`` names, if it lies inside an allowed root; else ConfigError."""
    shipped_dir = roots[0]
    local = (current.parent / parent).resolve()
    bare_name = Path(parent).name == parent
    target = local if local.exists() or not bare_name else (shipped_dir / parent).resolve()
    allowed = (current.parent, *roots)
    if not any(target.is_relative_to(root) for root in allowed):
        raise ConfigError(f"{current.name}: extends {excerpt(parent)}, which resolves outside the allowed "
                          f"directories ({current.parent} and the shipped arch_configs)", "extends",
                          "copy the parent file next to the one that extends it, or pass its directory in "
                          "load_arch(config_path=...)")
    if not target.is_file():
        raise ConfigError(f"{current.name}: extends {excerpt(parent)}, which is not an existing file", "extends",
                          "give a path relative to the file that extends it, or a shipped file name")
    return target


def read_with_extends(path: Path, config_path: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The document at ``path`` merged over its ``extends:`` chain, with the ``extends`` key removed.

    Each ``extends`` resolves relative to the file that names it and must stay inside that file's directory, the
    shipped ``arch_configs/`` or a directory in ``config_path``. Cycles and escapes raise :class:`ConfigError`."""
    from fgmpsim.arch.loader import ARCH_CONFIG_DIR  # here, not at the top: the loader imports this module

    roots = (ARCH_CONFIG_DIR.resolve(), *(Path(p).resolve() for p in config_path))
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
            raise ConfigError(f"{current.name}: extends must be a file name, got {excerpt(parent)}", "extends",
                              "write e.g. 'extends: base.yaml'")
        current = _resolve_parent(current, parent, roots)
    merged: dict[str, Any] = {}
    for _, data in reversed(chain):
        merged = deep_merge(merged, data)
    return merged
