"""Sweep specs: the YAML (or dict) a user writes, validated once into a typed :class:`SweepSpec`.

Layout (every key but ``traces`` and ``archs`` optional)::

    name: lanes-x-glb                 # a label for the store
    engine: tile                      # fgmpsim.simulate engine
    traces:                           # trace directories and synthetic recipes
      - traces/smollm2-135m-fgmp70    # relative paths are relative to the spec file
      - synth: {model: llama-2-7b, tokens: [512, 2048], fp4_fraction: [0.5, 0.7]}   # a list = one trace per value
      - gemm: {m: 256, k: 1024, n: 1024, fp4_fraction: 0.7}
    archs: [fgmp, my_arch.yaml]       # shipped names or paths
    grid:                             # --set paths, each with a list of values: the cartesian product
      pe_array.lanes_per_pe: [8, 16]
    points:                           # explicit override sets, run in addition to the grid
      - {pe_array.pes: 32, memory.glb.size_bytes: 4194304}
    baseline: fp8_baseline            # also run every trace (and override set) on this arch
    baseline_iso_area: lanes_per_pe   # ... grown to each design point's area (lanes_per_pe or glb)

Without ``grid`` and ``points`` each (trace, arch) runs once as it is. Unknown keys, unknown ``--set`` paths (with
a did-you-mean), empty lists and values of the wrong type raise :class:`~fgmpsim.errors.SweepError` naming the
field (``grid.pe_array.lanes_pe``); the values themselves are checked where they are used, by the trace builders and
the arch loader, when the points are expanded (:mod:`fgmpsim.sweep.points`), still before any point runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fgmpsim.arch.overrides import parse_overrides
from fgmpsim.arch.schema import closest_hint, translate
from fgmpsim.errors import ConfigError, SweepError
from fgmpsim.io.safe_yaml import read_yaml_file
from fgmpsim.sim import ENGINES

Values = Any  # one value or a non-empty list of values (checked by :func:`_values`)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SynthRecipe(_Strict):
    """Arguments of :func:`fgmpsim.synth_trace`; each may be a list."""

    model: Values
    tokens: Values = None
    batch: Values = 1
    phase: Values = "prefill"
    kv_len: Values = None
    fp4_fraction: Values = 0.7
    act_fp4_fraction: Values = None
    seed: Values = 0


class GemmRecipe(_Strict):
    """Arguments of :func:`fgmpsim.gemm_trace`; each may be a list."""

    m: Values
    k: Values
    n: Values
    fp4_fraction: Values = 1.0
    seed: Values = 0
    repeat: Values = 1


RECIPES: dict[str, type[_Strict]] = {"synth": SynthRecipe, "gemm": GemmRecipe}


class _SpecModel(_Strict):
    name: Annotated[str, Field(min_length=1)] = "sweep"
    engine: Literal[ENGINES] = "tile"  # type: ignore[valid-type]
    traces: Annotated[list[Any], Field(min_length=1)]
    archs: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    grid: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = []
    baseline: Annotated[str, Field(min_length=1)] | None = None
    baseline_iso_area: Literal["lanes_per_pe", "glb"] | None = None


@dataclass(frozen=True)
class TraceSpec:
    """One ``traces`` entry: ``kind`` is ``"dir"`` (``path``) or a recipe (``"synth"``, ``"gemm"``) whose
    ``values`` map each argument to its list of values."""

    kind: str
    where: str
    path: Path | None = None
    values: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``grid``: (path, values) pairs and ``points``: override sets, every path checked
    and every string value read as ``--set`` reads it; ``base_dir``: where relative paths resolve (the spec file's
    folder, or the working directory for a dict)."""

    name: str
    engine: str
    traces: tuple[TraceSpec, ...]
    archs: tuple[str, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    points: tuple[tuple[tuple[str, Any], ...], ...]
    baseline: str | None
    base_dir: Path
    document: dict[str, Any]
    """The spec as written (after YAML parsing): it identifies the sweep in its store."""
    baseline_iso_area: str | None = None
    """``lanes_per_pe`` or ``glb``: every baseline point grown by :func:`fgmpsim.energy.iso_area` to the area of
    the design point it is compared with (``None``: the baseline as given)."""


def _key(key: Any) -> str:
    """A user's key as it may appear in a one-line field path: printable and short, else its clipped repr."""
    text = str(key)
    return text if text.isprintable() and len(text) <= 60 else repr(text)[:60]


def _spec_error(err: ValidationError, prefix: str, model: type[BaseModel]) -> SweepError:
    """The first pydantic error (unknown keys first: a misspelt key also shows as a missing one) as a
    :class:`SweepError` naming the dotted field under ``prefix``."""
    errors = err.errors(include_url=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(_key(part) for part in first["loc"])
    field = ".".join((prefix, *loc) if prefix else loc)
    if first["type"] == "extra_forbidden":
        known = tuple(model.model_fields) if len(loc) == 1 else ()
        return SweepError(f"sweep spec: unknown key {loc[-1]!r}", field, closest_hint(loc[-1], known))
    if first["type"] == "missing":
        return SweepError("sweep spec: missing required key", field, f"add {loc[-1]!r} (see docs/examples/"
                                                                     "sweep_smollm2.yaml)")
    _, message, fix = translate(first)
    if loc[0] == "grid" and first["type"] == "list_type":
        fix = "write the values as a list, e.g. [8, 16]"
    return SweepError(f"sweep spec: {message}", field, fix)


def _values(value: Any, field: str) -> tuple[Any, ...]:
    if isinstance(value, list):
        if not value:
            raise SweepError("sweep spec: empty list of values", field, "give at least one value")
        return tuple(value)
    return (value,)


def _trace(entry: Any, index: int, base_dir: Path) -> TraceSpec:
    where = f"traces.{index}"
    if isinstance(entry, str) and entry:
        path = Path(entry)
        return TraceSpec("dir", where, path=path if path.is_absolute() else base_dir / path)
    if isinstance(entry, Mapping) and len(entry) == 1:
        (kind, recipe), = entry.items()
        if kind not in RECIPES:
            raise SweepError(f"sweep spec: unknown trace kind {_key(kind)!r}", f"{where}.{_key(kind)}",
                             closest_hint(str(kind), tuple(RECIPES)))
        model = RECIPES[kind]
        if not isinstance(recipe, Mapping):
            raise SweepError(f"sweep spec: a {kind} recipe must be a mapping, got {type(recipe).__name__}",
                             f"{where}.{kind}", f"write e.g. {kind}: {{{next(iter(model.model_fields))}: ...}}")
        try:
            model.model_validate(dict(recipe))
        except ValidationError as err:
            raise _spec_error(err, f"{where}.{kind}", model) from None
        values = tuple((key, _values(recipe[key], f"{where}.{kind}.{key}")) for key in model.model_fields
                       if key in recipe)
        return TraceSpec(kind, where, values=values)
    raise SweepError(f"sweep spec: a trace must be a directory or one recipe ({' or '.join(RECIPES)}), got "
                     f"{entry!r:.60}", where, "write a path, or e.g. 'synth: {model: llama-2-7b}'")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _override(key: Any, value: Any, field: str) -> tuple[str, Any]:
    """One ``--set`` pair: the path checked against the arch schema (did-you-mean), a string value read as YAML
    the way ``--set`` reads it (``"2e9"`` is the number 2e9); the value itself is validated per point."""
    try:
        (path, parsed), = parse_overrides({str(key): value})
    except ConfigError as err:
        raise SweepError(f"sweep spec: {_one_line(err.what)}", f"{field}.{_key(key)}", err.fix) from None
    return ".".join(path), parsed


def _overrides(pairs: Mapping[str, Any], field: str) -> tuple[tuple[str, Any], ...]:
    return tuple(_override(key, value, field) for key, value in pairs.items())


def spec_from_dict(document: Mapping[str, Any], base_dir: str | Path = ".") -> SweepSpec:
    """Validate a spec document (the YAML layout of the module docstring); relative paths resolve in ``base_dir``."""
    if not isinstance(document, Mapping):
        raise SweepError(f"a sweep spec must be a mapping, got {type(document).__name__}", "spec",
                         "write 'key: value' lines (see docs/examples/sweep_smollm2.yaml)")
    try:
        model = _SpecModel.model_validate(dict(document))
    except ValidationError as err:
        raise _spec_error(err, "", _SpecModel) from None
    base = Path(base_dir)
    if "grid" in document and not model.grid:
        raise SweepError("sweep spec: the grid names no parameter", "grid",
                         "add e.g. 'pe_array.lanes_per_pe: [8, 16]' under grid, or remove it")
    grid = tuple((key, tuple(_override(key, value, "grid")[1] for value in _values(values, f"grid.{_key(key)}")))
                 for key, values in model.grid.items())
    if model.baseline_iso_area is not None and model.baseline is None:
        raise SweepError("sweep spec: baseline_iso_area grows the baseline, but no baseline is given",
                         "baseline_iso_area", "add 'baseline: fp8_baseline' (or another arch), or remove it")
    return SweepSpec(name=model.name, engine=model.engine,
                     traces=tuple(_trace(entry, i, base) for i, entry in enumerate(model.traces)),
                     archs=tuple(model.archs), grid=grid,
                     points=tuple(_overrides(point, f"points.{i}") for i, point in enumerate(model.points)),
                     baseline=model.baseline, base_dir=base, document=dict(document),
                     baseline_iso_area=model.baseline_iso_area)


def load_spec(spec: str | Path | Mapping[str, Any] | SweepSpec) -> SweepSpec:
    """A :class:`SweepSpec` from a YAML file, a dict (paths relative to the working directory) or itself."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return spec_from_dict(spec)
    path = Path(spec)
    return spec_from_dict(read_yaml_file(path, path.name, SweepError), path.resolve().parent)
