"""Expand a :class:`~fgmpsim.sweep.spec.SweepSpec` into resolved design points, each with a stable key.

Points are traces x archs x override sets (the grid's cartesian product, then the explicit ``points``), in that
order, so the points of one trace are adjacent (the executors keep that order; a worker then loads a trace once).
With ``baseline``, each (trace, override set) also runs on the baseline arch, with the overrides whose path exists
in the baseline's resolved arch (:func:`fgmpsim.arch.arch_to_dict`); with ``baseline_iso_area`` the baseline is
then grown to the design point's area (:func:`fgmpsim.energy.iso_area`), which adds its overrides to the point.

Every arch is loaded and every recipe built (lazily: no maps) here, in the parent, so any bad value fails before a
point runs. A point's key is a hash of the trace's identity (the manifest's bytes, or the recipe), the fully
resolved arch, the engine and a fingerprint of fgmpsim's own sources (:func:`fgmpsim.provenance.code_version`):
a rerun after a code or config change never reuses a stale point, and the same point reached from two override
sets runs once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgmpsim.arch import Arch, arch_from_dict, arch_to_dict, find_arch
from fgmpsim.arch.documents import read_with_extends
from fgmpsim.arch.overrides import parse_overrides
from fgmpsim.energy import area_mm2, iso_area
from fgmpsim.errors import ConfigError, FgmpsimError, SweepError
from fgmpsim.provenance import code_version
from fgmpsim.sweep.spec import SweepSpec, TraceSpec
from fgmpsim.trace import Trace, gemm_trace, load_trace, synth_trace

KEY_HEX_DIGITS = 24
_MANIFEST = "manifest.yaml"


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class TraceSource:
    """How a worker builds a trace: ``kind`` ``"dir"`` (``args`` = the path) or a recipe (``"synth"``, ``"gemm"``:
    ``args`` = keyword arguments). ``identity`` hashes its content; ``params`` are the recipe's columns."""

    kind: str
    args: tuple[tuple[str, Any], ...]
    identity: str
    label: str

    @property
    def params(self) -> dict[str, Any]:
        return {} if self.kind == "dir" else {f"{self.kind}.{key}": value for key, value in self.args}

    def build(self) -> Trace:
        """The trace (synthetic maps stay lazy until simulated)."""
        kwargs = dict(self.args)
        if self.kind == "dir":
            return load_trace(kwargs["path"])
        return synth_trace(**kwargs) if self.kind == "synth" else gemm_trace(**kwargs)


@dataclass(frozen=True)
class Point:
    """One design point. ``role``: ``"point"`` or ``"baseline"``; ``overrides``: the ``--set`` pairs applied to
    the arch named ``arch_ref``; ``baseline_key``: the key of the baseline point it is compared with."""

    key: str
    role: str
    trace: TraceSource
    arch: Arch
    arch_ref: str
    engine: str
    overrides: tuple[tuple[str, Any], ...]
    baseline_key: str | None

    def describe(self) -> dict[str, Any]:
        """The point as JSON-ready columns (stored next to its results)."""
        return {"key": self.key, "role": self.role, "trace_source": self.trace.label, "arch_ref": self.arch_ref,
                "engine": self.engine, "params": {**self.trace.params, **dict(self.overrides)},
                "baseline_key": self.baseline_key}


def _dir_source(spec: TraceSpec) -> TraceSource:
    path = spec.path
    assert path is not None
    manifest = path / _MANIFEST
    if not manifest.is_file():
        what = "has no manifest.yaml" if path.is_dir() else "does not exist"
        raise SweepError(f"trace directory {str(path)!r} {what}", spec.where,
                         "give a directory made by fgmpsim export / trace synth / trace gemm")
    return TraceSource("dir", (("path", str(path.resolve())),), hashlib.sha256(manifest.read_bytes()).hexdigest(),
                       str(path))


def _recipe_sources(spec: TraceSpec, base_dir: Path) -> list[TraceSource]:
    keys = [key for key, _ in spec.values]
    sources = []
    for combination in itertools.product(*(values for _, values in spec.values)):
        kwargs = dict(zip(keys, combination))
        identity: dict[str, Any] = {"kind": spec.kind, **kwargs}
        model = kwargs.get("model")
        if isinstance(model, str) and model.endswith(".json"):  # a config.json: its content is the identity
            path = Path(model) if Path(model).is_absolute() else base_dir / model
            kwargs["model"] = str(path)
            identity["model"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else str(path)
        try:
            trace = synth_trace(**kwargs) if spec.kind == "synth" else gemm_trace(**kwargs)
        except FgmpsimError as err:
            field = f"{spec.where}.{spec.kind}.{err.field}" if err.field else f"{spec.where}.{spec.kind}"
            raise SweepError(f"{spec.where}: {err.what}", field, err.fix) from None
        sources.append(TraceSource(spec.kind, tuple(kwargs.items()), _sha256_json(identity), trace.name))
    return sources


def trace_sources(spec: SweepSpec) -> list[TraceSource]:
    """Every trace of the spec, recipes expanded (each list value is one trace)."""
    return [source for entry in spec.traces
            for source in ([_dir_source(entry)] if entry.kind == "dir" else _recipe_sources(entry, spec.base_dir))]


def override_sets(spec: SweepSpec) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    """(where in the spec, overrides) per override set: the grid product, then each explicit point."""
    sets: list[tuple[str, tuple[tuple[str, Any], ...]]] = []
    if spec.grid:
        keys = [key for key, _ in spec.grid]
        sets += [("grid", tuple(zip(keys, values))) for values in itertools.product(*(v for _, v in spec.grid))]
    sets += [(f"points.{i}", point) for i, point in enumerate(spec.points)]
    return sets or [("", ())]


class _Archs:
    """Arch documents read once per name (``extends`` merged), then validated per override set."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.documents: dict[str, tuple[dict[str, Any], str]] = {}

    def document(self, ref: str, field: str) -> tuple[dict[str, Any], str]:
        if ref not in self.documents:
            local = self.base_dir / ref
            try:
                file = local if local.is_file() else find_arch(ref)
                self.documents[ref] = read_with_extends(file), str(file)
            except ConfigError as err:
                raise SweepError(f"{field}: {err.what}", field, err.fix) from None
        return self.documents[ref]

    def load(self, ref: str, field: str, where: str, overrides: tuple[tuple[str, Any], ...]) -> Arch:
        document, source = self.document(ref, field)
        try:
            return arch_from_dict(document, source, dict(overrides))
        except ConfigError as err:
            overridden = err.field is not None and any(err.field == key or err.field.startswith(key + ".")
                                                       for key, _ in overrides)
            shown = ", ".join(f"{key}={value!r:.40}" for key, value in overrides)
            spot = f"{where}.{err.field}" if overridden and where else field
            raise SweepError(f"{ref} with {shown or 'no overrides'}: {err.what}", spot, err.fix) from None


def _has_path(data: dict[str, Any], path: str) -> bool:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _iso_area(baseline: Arch, design: Arch, knob: str) -> tuple[tuple[str, Any], ...]:
    """The overrides that grow ``baseline`` to ``design``'s area with ``knob`` (:func:`fgmpsim.energy.iso_area`),
    as ``(path, value)`` pairs."""
    try:
        grown = iso_area(baseline, area_mm2(design), knob)
    except ConfigError as err:
        raise SweepError(f"baseline_iso_area: {err.what} (design {design.name}, baseline {baseline.name})",
                         "baseline_iso_area", err.fix) from None
    return tuple((".".join(path), value) for path, value in parse_overrides(list(grown.overrides)))


def point_key(source: TraceSource, arch: Arch, engine: str) -> str:
    """The stable key of (trace identity, resolved arch, engine, code fingerprint)."""
    return _sha256_json({"trace": source.identity, "arch": arch_to_dict(arch), "engine": engine,
                         "code": code_version()})[:KEY_HEX_DIGITS]


def expand(spec: SweepSpec) -> list[Point]:
    """Every distinct point of ``spec``, grouped by trace; raises :class:`SweepError` naming the spec field."""
    archs = _Archs(spec.base_dir)
    sets = override_sets(spec)
    points: dict[str, Point] = {}
    baseline_paths = None
    if spec.baseline is not None:
        baseline_paths = arch_to_dict(archs.load(spec.baseline, "baseline", "", ()))
    for source in trace_sources(spec):
        for index, ref in enumerate(spec.archs):
            for where, overrides in sets:
                arch = archs.load(ref, f"archs.{index}", where, overrides)
                base_key = None
                if spec.baseline is not None:
                    applicable = tuple((k, v) for k, v in overrides if _has_path(baseline_paths, k))
                    base_arch = archs.load(spec.baseline, "baseline", where, applicable)
                    if spec.baseline_iso_area is not None:  # the grown value replaces a swept one
                        grown = dict(_iso_area(base_arch, arch, spec.baseline_iso_area))
                        applicable = tuple((k, v) for k, v in applicable if k not in grown) + tuple(grown.items())
                        base_arch = archs.load(spec.baseline, "baseline", where, applicable)
                    base_key = point_key(source, base_arch, spec.engine)
                key = point_key(source, arch, spec.engine)
                if key not in points or points[key].role == "baseline":  # a point that is also a baseline
                    points[key] = Point(key, "point", source, arch, ref, spec.engine, overrides, base_key)
                if base_key is not None and base_key not in points:
                    points[base_key] = Point(base_key, "baseline", source, base_arch, spec.baseline, spec.engine,
                                             applicable, None)
    return list(points.values())
