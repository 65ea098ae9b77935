"""Pydantic models of the arch YAML: the edge where untyped data becomes the typed :class:`Arch` record.

Field names equal the record's. Validation here is per field (types, signs, enums, powers of two); checks that span
fields (buffer fits, required energy entries, AQU and metadata consistency) run on the record in
:mod:`fgmpsim.arch.checks`. Pydantic's own messages never reach the user: :func:`translate` turns each error into
one line naming the dotted field.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from fgmpsim.arch.record import (AQU, DATAFLOWS, LAYOUTS, STORAGE_ROUTES, Arch, AreaEntry, AreaTable, BlockStorage, EnergyEntry,
                                 EnergyTable, FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray, StaticPower,
                                 StorageLayout)
from fgmpsim.energy.actions import ENTRIES
from fgmpsim.energy.area import AREA_ENTRIES
from fgmpsim.energy.static import STATIC_DENSITIES, with_static_energy
from fgmpsim.errors import ConfigError, closest_hint, excerpt
from fgmpsim.precision import DATAPATH_PRECISIONS

# Ranges with physical meaning. The maxima keep every count the simulator derives inside int64: a cycle count is
# at most (block pairs) x (cycles per block pair) + (bits moved) / (bits per cycle), and a trace's block pairs and
# bits are far below 2**40 (fgmpsim.sim.limits checks the product for each trace before simulating).
MAX_CYCLES_PER_BLOCK_PAIR = 2**20
MAX_SIZE_BYTES = 2**50                  # 1 PiB
MAX_BITS_PER_CYCLE = 2**40
MAX_COUNT = 2**20                       # PEs, lanes, blocks per cycle, latency cycles
MAX_FIELD_BITS = 64                     # widths of one stored value, scale, flag or partial sum
MAX_VECTOR_WIDTH = 1024
MAX_PIPELINE_DEPTH = 1024               # VMAC stages: far above any real lane pipeline (a handful of stages)
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1e3, 1e12
MAX_PJ = 1e9                            # 1 mJ per action: above any real circuit by orders of magnitude
MAX_NODE_NM = 1000
MAX_TEXT_CHARS = 1000

PositiveInt = Annotated[int, Field(gt=0, le=MAX_COUNT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_COUNT)]
CyclesPerBlockPair = Annotated[int, Field(gt=0, le=MAX_CYCLES_PER_BLOCK_PAIR)]
SizeBytes = Annotated[int, Field(gt=0, le=MAX_SIZE_BYTES)]
BitsPerCycle = Annotated[int, Field(gt=0, le=MAX_BITS_PER_CYCLE)]
PositiveBits = Annotated[int, Field(gt=0, le=MAX_FIELD_BITS)]
NonNegativeBits = Annotated[int, Field(ge=0, le=MAX_FIELD_BITS)]
ClockHz = Annotated[float, Field(ge=MIN_CLOCK_HZ, le=MAX_CLOCK_HZ, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModeCyclesModel(_Strict):
    """Every mode optional here: the datapath's own modes are required by :mod:`fgmpsim.arch.checks`."""
    fp4xfp4: CyclesPerBlockPair | None = None
    fp4xfp8: CyclesPerBlockPair | None = None
    fp8xfp4: CyclesPerBlockPair | None = None
    fp8xfp8: CyclesPerBlockPair | None = None
    int8xint8: CyclesPerBlockPair | None = None


class PEArrayModel(_Strict):
    pes: PositiveInt
    lanes_per_pe: PositiveInt
    vector_width: Annotated[int, Field(gt=0, le=MAX_VECTOR_WIDTH)]
    dataflow: Literal[DATAFLOWS]  # type: ignore[valid-type]
    datapath_precisions: Annotated[list[Literal[DATAPATH_PRECISIONS]], Field(min_length=1)]  # type: ignore[valid-type]
    cycles_per_block_pair: ModeCyclesModel
    weight_collector_blocks: NonNegativeInt = 0
    psum_collector_entries: PositiveInt = 1
    pipeline_depth: Annotated[int, Field(gt=0, le=MAX_PIPELINE_DEPTH)] = 1
    lane_fifo_depth: PositiveInt | None = None   # block pairs per lane FIFO; null = unbounded (lanes skew freely)
    rows: PositiveInt | None = None   # systolic_ws only: array rows (K elements per fold)
    cols: PositiveInt | None = None   # systolic_ws only: array columns (N channels per fold)
    storage_formats: dict[str, Literal[STORAGE_ROUTES]] = {"mixed": "map"}  # type: ignore[valid-type]

    @field_validator("vector_width")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two, got {value}")
        return value

    @field_validator("datapath_precisions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"lists a precision twice: {value}")
        return value


class AQUModel(_Strict):
    enabled: bool
    blocks_per_cycle: NonNegativeInt = 0
    latency_cycles: NonNegativeInt = 0
    sensitivity_bits_per_channel: NonNegativeBits = 0
    sensitivity_channels: NonNegativeInt = 0


class DramModel(_Strict):
    size_bytes: SizeBytes | None = None
    read_bits_per_cycle: BitsPerCycle
    write_bits_per_cycle: BitsPerCycle
    double_buffered: bool = False


class OnChipLevelModel(DramModel):
    size_bytes: SizeBytes


class GlbModel(OnChipLevelModel):
    keep_outputs: bool = False


class MemoryModel(_Strict):
    dram: DramModel
    glb: GlbModel
    weight_buffer: OnChipLevelModel
    input_buffer: OnChipLevelModel
    accum_buffer: OnChipLevelModel
    ideal: bool = False  # systolic_ws only: no memory stalls (SCALE-Sim's InterfaceBandwidth: CALC)
    prefetch_next_weights: bool = False  # fgmpsim.sim.hw.prefetch


Layout = Literal[LAYOUTS]  # type: ignore[valid-type]


class LayoutModel(_Strict):
    dram: Layout = "packed"
    glb: Layout = "packed"
    pe_buffers: Layout = "packed"


class StorageModel(_Strict):
    fp4_value_bits: PositiveBits
    fp8_value_bits: PositiveBits
    fp4_scale_bits: NonNegativeBits
    fp8_scale_bits: NonNegativeBits
    metadata_bits_per_block: NonNegativeBits
    tensor_scale_bits: NonNegativeBits
    psum_bits: PositiveBits
    unquantized_output_bits: PositiveBits
    layout: LayoutModel = LayoutModel()


class MappingModel(_Strict):
    tile_m: PositiveInt | None = None
    tile_n: PositiveInt | None = None
    tile_k_blocks: PositiveInt | None = None


class EnergyEntryModel(_Strict):
    pj: Annotated[float, Field(ge=0, le=MAX_PJ, allow_inf_nan=False)]
    source: Text


EnergyActionsModel = create_model(  # one optional field per entry, so unknown names are caught with a suggestion
    "EnergyActionsModel", __base__=_Strict, **{entry: (EnergyEntryModel | None, None) for entry in ENTRIES})


class EnergyModel(_Strict):
    technology_node_nm: Annotated[int, Field(gt=0, le=MAX_NODE_NM)]
    actions: EnergyActionsModel  # type: ignore[valid-type]


class AreaEntryModel(_Strict):
    mm2: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source: Annotated[str, Field(min_length=1)]


AreaEntriesModel = create_model(  # one optional field per entry, as for the energy actions
    "AreaEntriesModel", __base__=_Strict, **{entry: (AreaEntryModel | None, None) for entry in AREA_ENTRIES})


class AreaModel(_Strict):
    technology_node_nm: PositiveInt
    entries: AreaEntriesModel  # type: ignore[valid-type]


class StaticEntryModel(_Strict):
    value: Annotated[float, Field(ge=0, le=MAX_PJ, allow_inf_nan=False)]
    source: Text


class StaticModel(_Strict):
    enabled: bool
    logic_leakage_mw_per_mm2: StaticEntryModel | None = None
    sram_leakage_mw_per_mm2: StaticEntryModel | None = None
    logic_clock_pj_per_cycle_per_mm2: StaticEntryModel | None = None


class ArchModel(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    clock_hz: ClockHz
    pe_array: PEArrayModel
    aqu: AQUModel
    memory: MemoryModel
    storage: StorageModel
    mapping: MappingModel = MappingModel()
    energy: EnergyModel
    area: AreaModel | None = None
    static: StaticModel = StaticModel(enabled=False)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``Model``, ``Model | None``), else ``None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _field_at(path: tuple[str, ...]) -> Any:
    """The pydantic field at a dotted path of the schema, or ``None`` where the path leaves the schema."""
    model: type[BaseModel] | None = ArchModel
    field = None
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _submodel(field.annotation)
    return field


def known_keys(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The keys allowed in the mapping at ``path`` (``()`` = top level); ``None`` if ``path`` is not a mapping."""
    if not path:
        return tuple(ArchModel.model_fields)
    field = _field_at(path)
    model = _submodel(field.annotation) if field is not None else None
    return tuple(model.model_fields) if model is not None else None


def _shown(value: Any) -> str:
    """A user's value quoted briefly (strings with quotes, at most a short excerpt of anything)."""
    return excerpt(value) if isinstance(value, str) else excerpt(value).strip("'")


def _number(limit: Any) -> str:
    """A range limit as written in the docs: ``1,048,576`` for integers, ``1e+12`` for floats."""
    return f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"


_RANGE_WHY = "the physical range fgmpsim accepts, so every count fits in int64"
_VALUE_FIXES = {
    "pe_array.vector_width": "use a power of two equal to the quantization block size (16 for NVFP4)",
    "pe_array.datapath_precisions": "list each of fp4, fp8 at most once, or [int8] alone",
}
_TYPE_WORDS = {  # pydantic error type -> (what the value must be, how to fix it)
    "int_type": ("an integer", "write a whole number without quotes"),
    "float_type": ("a number", "write a number without quotes, e.g. 1.0e9"),
    "bool_type": ("true or false", "write true or false"),
    "string_type": ("a string", "quote the text"),
    "list_type": ("a list", "write the values as a list in brackets, e.g. [first, second]"),
    "model_type": ("a mapping", "write 'key: value' entries under it"),
    "dict_type": ("a mapping", "write 'key: value' entries under it"),
    "finite_number": ("a finite number", "replace inf/nan with a number"),
    "string_too_short": ("a non-empty string", "write the text (e.g. the source of the number)"),
}


def translate(error: dict[str, Any]) -> tuple[str, str, str]:
    """One pydantic error as (dotted field, message, fix), in fgmpsim's words."""
    loc = tuple(str(part) for part in error["loc"])
    field = ".".join(loc)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        return field, f"unknown key {loc[-1]!r}", closest_hint(loc[-1], known_keys(loc[:-1]) or ())
    if kind == "missing":
        return field, "missing required key", f"add {loc[-1]!r} (arch_configs/fgmp.yaml is a complete example)"
    if kind == "greater_than" and ctx.get("gt") == 0:
        spec = _field_at(loc)
        noun = "number" if spec is not None and "float" in str(spec.annotation) else "integer"
        return field, f"must be a positive {noun}, got {_shown(value)}", "use a value > 0"
    if kind == "greater_than_equal":
        limit = _number(ctx.get("ge"))
        return field, f"must be >= {limit}, got {_shown(value)}", f"use a value >= {limit}"
    if kind in ("less_than_equal", "greater_than_equal_max"):
        limit = _number(ctx.get("le"))
        return field, f"must be <= {limit}, got {_shown(value)}", f"use a value <= {limit} ({_RANGE_WHY})"
    if kind == "string_too_long":
        return field, f"must be at most {ctx.get('max_length')} characters, got {len(value)}", "shorten the text"
    if kind == "literal_error":
        return field, f"must be one of {ctx.get('expected')}, got {_shown(value)}", "use one of the listed values"
    if kind == "too_short":
        return field, "must not be empty", "list at least one value"
    if kind == "value_error":
        return field, str(ctx.get("error", error["msg"])), _VALUE_FIXES.get(field, "fix the value")
    expected, fix = _TYPE_WORDS.get(kind, ("valid", "fix the value"))
    return field, f"must be {expected}, got {_shown(value)} ({type(value).__name__})", fix


def validate(data: dict[str, Any]) -> ArchModel:
    """``data`` as an :class:`ArchModel`; raises pydantic's ``ValidationError`` (translated by the loader)."""
    return ArchModel.model_validate(data)


def _level(name: str, model: DramModel) -> MemoryLevel:
    return MemoryLevel(name=name, size_bytes=model.size_bytes, read_bits_per_cycle=model.read_bits_per_cycle,
                       write_bits_per_cycle=model.write_bits_per_cycle, double_buffered=model.double_buffered,
                       keep_outputs=getattr(model, "keep_outputs", False))


def _static(model: StaticModel) -> StaticPower:
    """The static-power record; an enabled section needs every density (raises :class:`ConfigError` naming it)."""
    if not model.enabled:
        return StaticPower(enabled=False)
    values, sources = {}, []
    for name in STATIC_DENSITIES:
        entry = getattr(model, name)
        if entry is None:
            raise ConfigError(f"static energy is enabled but {name} is missing", f"static.{name}",
                              "add '{value: <number>, source: <where it comes from>}' or set static.enabled=false")
        values[name] = float(entry.value)
        sources.append((name, entry.source))
    return StaticPower(enabled=True, **values, sources=tuple(sources))


def to_record(model: ArchModel, source: str) -> Arch:
    """The frozen :class:`Arch` record of a validated model (static energy per cycle derived from the area model
    when ``static.enabled``)."""
    pe = model.pe_array
    actions = model.energy.actions
    storage = model.storage.model_dump()
    storage["layout"] = StorageLayout(**storage["layout"])
    return with_static_energy(Arch(
        name=model.name,
        clock_hz=float(model.clock_hz),
        pe_array=PEArray(pes=pe.pes, lanes_per_pe=pe.lanes_per_pe, vector_width=pe.vector_width,
                         cycles_per_block_pair=ModeCycles(**pe.cycles_per_block_pair.model_dump()),
                         dataflow=pe.dataflow, datapath_precisions=tuple(pe.datapath_precisions), rows=pe.rows,
                         cols=pe.cols, weight_collector_blocks=pe.weight_collector_blocks,
                         psum_collector_entries=pe.psum_collector_entries, pipeline_depth=pe.pipeline_depth,
                         lane_fifo_depth=pe.lane_fifo_depth,
                         storage_formats=tuple(sorted(pe.storage_formats.items()))),
        aqu=AQU(**model.aqu.model_dump()),
        memory=Memory(**{name: _level(name, getattr(model.memory, name)) for name in MemoryModel.model_fields
                         if name not in ("ideal", "prefetch_next_weights")}, ideal=model.memory.ideal,
                      prefetch_next_weights=model.memory.prefetch_next_weights),
        storage=BlockStorage(**storage),
        energy=EnergyTable(technology_node_nm=model.energy.technology_node_nm,
                           entries=tuple((name, EnergyEntry(pj=float(e.pj), source=e.source))
                                         for name in ENTRIES if (e := getattr(actions, name)) is not None)),
        mapping=FixedMapping(**model.mapping.model_dump()),
        source=source,
        area=None if model.area is None else AreaTable(
            technology_node_nm=model.area.technology_node_nm,
            entries=tuple((name, AreaEntry(mm2=float(e.mm2), source=e.source))
                          for name in AREA_ENTRIES if (e := getattr(model.area.entries, name)) is not None)),
        static=_static(model.static),
    ))

