"""Pydantic models of the arch YAML: the edge where untyped data becomes the typed :class:`Arch` record.

Field names equal the record's. Validation here is per field (types, signs, enums, powers of two); checks that span
fields (buffer fits, required energy entries, AQU and metadata consistency) run on the record in
:mod:`fgmpsim.arch.checks`. Pydantic's own messages never reach the user: :func:`translate` turns each error into
one line naming the dotted field.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from fgmpsim.arch.record import (AQU, DATAFLOWS, Arch, AreaEntry, AreaTable, BlockStorage, EnergyEntry, EnergyTable,
                                 FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray)
from fgmpsim.energy.actions import ENTRIES
from fgmpsim.energy.area import AREA_ENTRIES

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModeCyclesModel(_Strict):
    fp4xfp4: PositiveInt
    fp4xfp8: PositiveInt
    fp8xfp4: PositiveInt
    fp8xfp8: PositiveInt


class PEArrayModel(_Strict):
    pes: PositiveInt
    lanes_per_pe: PositiveInt
    vector_width: PositiveInt
    dataflow: Literal[DATAFLOWS]  # type: ignore[valid-type]
    datapath_precisions: Annotated[list[Literal["fp4", "fp8"]], Field(min_length=1)]
    cycles_per_block_pair: ModeCyclesModel

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
    sensitivity_bits_per_channel: NonNegativeInt = 0
    sensitivity_channels: NonNegativeInt = 0


class DramModel(_Strict):
    size_bytes: PositiveInt | None = None
    read_bits_per_cycle: PositiveInt
    write_bits_per_cycle: PositiveInt
    double_buffered: bool = False


class OnChipLevelModel(DramModel):
    size_bytes: PositiveInt


class MemoryModel(_Strict):
    dram: DramModel
    glb: OnChipLevelModel
    weight_buffer: OnChipLevelModel
    input_buffer: OnChipLevelModel
    accum_buffer: OnChipLevelModel


class StorageModel(_Strict):
    fp4_value_bits: PositiveInt
    fp8_value_bits: PositiveInt
    fp4_scale_bits: NonNegativeInt
    fp8_scale_bits: NonNegativeInt
    metadata_bits_per_block: NonNegativeInt
    tensor_scale_bits: NonNegativeInt
    psum_bits: PositiveInt
    unquantized_output_bits: PositiveInt


class MappingModel(_Strict):
    tile_m: PositiveInt | None = None
    tile_n: PositiveInt | None = None
    tile_k_blocks: PositiveInt | None = None


class EnergyEntryModel(_Strict):
    pj: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source: Annotated[str, Field(min_length=1)]


EnergyActionsModel = create_model(  # one optional field per entry, so unknown names are caught with a suggestion
    "EnergyActionsModel", __base__=_Strict, **{entry: (EnergyEntryModel | None, None) for entry in ENTRIES})


class EnergyModel(_Strict):
    technology_node_nm: PositiveInt
    actions: EnergyActionsModel  # type: ignore[valid-type]


class AreaEntryModel(_Strict):
    mm2: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source: Annotated[str, Field(min_length=1)]


AreaEntriesModel = create_model(  # one optional field per entry, as for the energy actions
    "AreaEntriesModel", __base__=_Strict, **{entry: (AreaEntryModel | None, None) for entry in AREA_ENTRIES})


class AreaModel(_Strict):
    technology_node_nm: PositiveInt
    entries: AreaEntriesModel  # type: ignore[valid-type]


class ArchModel(_Strict):
    name: Annotated[str, Field(min_length=1)]
    clock_hz: PositiveFloat
    pe_array: PEArrayModel
    aqu: AQUModel
    memory: MemoryModel
    storage: StorageModel
    mapping: MappingModel = MappingModel()
    energy: EnergyModel
    area: AreaModel | None = None


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


def closest_hint(key: str, known: tuple[str, ...]) -> str:
    """``did you mean 'x'?`` for the closest known key, else the list of known keys."""
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}?" if near else f"use one of: {', '.join(known)}"


def _shown(value: Any) -> str:
    return f"{value!r}" if isinstance(value, str) else f"{value}"


_VALUE_FIXES = {
    "pe_array.vector_width": "use a power of two equal to the quantization block size (16 for NVFP4)",
    "pe_array.datapath_precisions": "list each of fp4, fp8 at most once",
}
_TYPE_WORDS = {  # pydantic error type -> (what the value must be, how to fix it)
    "int_type": ("an integer", "write a whole number without quotes"),
    "float_type": ("a number", "write a number without quotes, e.g. 1.0e9"),
    "bool_type": ("true or false", "write true or false"),
    "string_type": ("a string", "quote the text"),
    "list_type": ("a list", "write a list, e.g. [fp4, fp8]"),
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
        return field, f"must be >= {ctx.get('ge'):g}, got {_shown(value)}", f"use a value >= {ctx.get('ge'):g}"
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
                       write_bits_per_cycle=model.write_bits_per_cycle, double_buffered=model.double_buffered)


def to_record(model: ArchModel, source: str) -> Arch:
    """The frozen :class:`Arch` record of a validated model."""
    pe = model.pe_array
    actions = model.energy.actions
    return Arch(
        name=model.name,
        clock_hz=float(model.clock_hz),
        pe_array=PEArray(pes=pe.pes, lanes_per_pe=pe.lanes_per_pe, vector_width=pe.vector_width,
                         cycles_per_block_pair=ModeCycles(**pe.cycles_per_block_pair.model_dump()),
                         dataflow=pe.dataflow, datapath_precisions=tuple(pe.datapath_precisions)),
        aqu=AQU(**model.aqu.model_dump()),
        memory=Memory(**{name: _level(name, getattr(model.memory, name)) for name in MemoryModel.model_fields}),
        storage=BlockStorage(**model.storage.model_dump()),
        energy=EnergyTable(technology_node_nm=model.energy.technology_node_nm,
                           entries=tuple((name, EnergyEntry(pj=float(e.pj), source=e.source))
                                         for name in ENTRIES if (e := getattr(actions, name)) is not None)),
        mapping=FixedMapping(**model.mapping.model_dump()),
        source=source,
        area=None if model.area is None else AreaTable(
            technology_node_nm=model.area.technology_node_nm,
            entries=tuple((name, AreaEntry(mm2=float(e.mm2), source=e.source))
                          for name in AREA_ENTRIES if (e := getattr(model.area.entries, name)) is not None)),
    )

