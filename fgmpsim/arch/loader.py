"""Load an architecture: YAML (+ ``extends:`` chain) + overrides -> pydantic validation -> :class:`Arch` record.

Public functions: :func:`load_arch`, :func:`arch_from_dict`, :func:`arch_to_dict`, :func:`find_arch`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fgmpsim.arch import schema
from fgmpsim.arch.checks import check_arch
from fgmpsim.arch.documents import read_with_extends
from fgmpsim.arch.overrides import Overrides, apply_overrides, parse_overrides
from fgmpsim.arch.record import Arch
from fgmpsim.errors import ConfigError
from fgmpsim.resources import ARCH_CONFIG_DIR


def shipped_names() -> tuple[str, ...]:
    """Names of the shipped arch files (``fgmp``, ``fp8_baseline``, ...), sorted."""
    return tuple(sorted(p.stem for p in ARCH_CONFIG_DIR.glob("*.yaml")))


def find_arch(name_or_path: str | Path) -> Path:
    """The YAML file for a shipped name (``fgmp`` -> ``arch_configs/fgmp.yaml``) or an existing path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = ARCH_CONFIG_DIR / f"{path.stem if path.suffix == '.yaml' else path.name}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    names = shipped_names()
    raise ConfigError(f"no arch file or shipped arch named {str(name_or_path)!r}", "arch",
                      f"pass a YAML path or one of: {', '.join(names)}" if names else "pass a YAML path")


def arch_from_dict(data: dict[str, Any], source: str = "<dict>", overrides: Overrides | None = None) -> Arch:
    """Validate a merged arch document (no ``extends``) and build the record; errors name the dotted field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{Path(source).name}: an arch must be a mapping, got {type(data).__name__}", "arch",
                          "pass the YAML layout of arch_configs/base.yaml")
    parsed = parse_overrides(overrides)
    data = apply_overrides(data, parsed)
    overridden = {".".join(path) for path, _ in parsed}
    try:
        arch = schema.to_record(schema.validate(data), source)
        check_arch(arch)
    except ValidationError as err:
        problems = [schema.translate(e) for e in err.errors(include_url=False)]
        field, message, fix = problems[0]
        more = "; ".join(f"{f}: {m}" for f, m, _ in problems[1:])
        raise ConfigError(f"{_origin(source, field, overridden)}: {message}", field,
                          f"{fix}; {len(problems) - 1} more: {more}" if more else fix) from None
    except ConfigError as err:
        raise ConfigError(f"{_origin(source, err.field, overridden)}: {err.what}", err.field, err.fix) from None
    return arch


def _origin(source: str, field: str | None, overridden: set[str]) -> str:
    """Where a bad value came from: the file, or the override that set it."""
    by_override = field is not None and any(field == key or field.startswith(key + ".") for key in overridden)
    return f"--set {field}" if by_override else Path(source).name


def load_arch(path: str | Path, overrides: Overrides | None = None,
              config_path: tuple[str | Path, ...] = ()) -> Arch:
    """The validated :class:`Arch` of a YAML file (or shipped name, see :func:`find_arch`) with its ``extends:``
    chain merged and ``overrides`` (``["a.b=v", ...]`` or ``{"a.b": v}``) applied; raises :class:`ConfigError`.
    ``extends:`` stays inside each extending file's directory and the shipped configs unless ``config_path``
    names more trusted directories."""
    file = find_arch(path)
    return arch_from_dict(read_with_extends(file, config_path), str(file), overrides)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def arch_to_dict(arch: Arch) -> dict[str, Any]:
    """The arch as a plain YAML-shaped dict (the layout :func:`arch_from_dict` reads back to an equal record), for
    hashing and recording sweep points. ``source`` (a machine-specific path) is left out."""
    data = _plain(dataclasses.asdict(arch))
    data.pop("source")
    for key in ("rows", "cols"):  # systolic_ws only: absent otherwise, so other archs keep their hashes
        if data["pe_array"][key] is None:
            del data["pe_array"][key]
    formats = dict(arch.pe_array.storage_formats)
    if formats == {"mixed": "map"}:  # the default: left out, so archs without uniform formats keep their hashes
        del data["pe_array"]["storage_formats"]
    else:
        data["pe_array"]["storage_formats"] = formats
    for flag in ("ideal", "prefetch_next_weights"):  # left out when off (hashes stay as they were)
        if not data["memory"][flag]:
            del data["memory"][flag]
    for name, level in data["memory"].items():
        if isinstance(level, dict):
            level.pop("name")
            if name != "glb" or not level["keep_outputs"]:  # GLB only; left out when off (hashes stay as they were)
                level.pop("keep_outputs")
    data["energy"]["actions"] = {name: {"pj": entry.pj, "source": entry.source}
                                 for name, entry in arch.energy.entries}
    del data["energy"]["entries"]
    for derived in ("leakage_pj_per_cycle", "clock_pj_per_cycle"):  # recomputed from area and static on loading
        del data["energy"][derived]
    sources = dict(arch.static.sources)
    data["static"] = {"enabled": arch.static.enabled, **{name: {"value": getattr(arch.static, name), "source": text}
                                                         for name, text in sources.items()}}
    if arch.area is not None:
        data["area"]["entries"] = {name: {"mm2": entry.mm2, "source": entry.source} for name, entry in arch.area.entries}
    else:
        del data["area"]
    return data
