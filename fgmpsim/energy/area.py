"""Silicon area of an architecture, mm² per component, from the arch's area table (``area:`` in the YAML).

Like the energy model, this module holds names and formulas only; every mm² lives in ``arch_configs/base.yaml``
with its source (derivations: ``docs/energy_model.md``, "Area"). Per component:

* SRAM macros: ``glb`` = GLB KiB x ``glb_per_kib``; ``weight_buffers``, ``input_buffers``, ``accum_buffers`` =
  pes x the per-PE buffer's KiB x its ``<level>_per_kib``; ``aqu_sensitivity_table`` = the AQU's table KiB x
  ``aqu_sensitivity_per_kib`` (AQU enabled only). Capacity is the configured ``size_bytes`` (double buffering is
  a use of that capacity, not extra SRAM).
* ``mac_lanes`` = lanes x vector_width x the scalar-MAC area of the lane's base datapath: ``mac_fp8`` when the
  datapath executes FP8 (FP8-only and FGMP lanes), ``mac_fp4`` for an FP4-only lane, ``mac_int8`` for an INT8
  lane (INT4 weights reach it sign-extended: wires, no area).
* ``fgmp_mode_logic`` = lanes x vector_width x ``mac_fgmp_extra``, charged only for a mixed FP4+FP8 datapath: the
  dual-format operand decode, the narrow FP4 x FP4 path and the mode muxes the FGMP lane adds to an FP8 lane.
* ``block_scale`` = lanes x ``block_scale``, only where some executable block precision carries a block scale
  (NVFP4's E4M3 scale); ``accumulators`` = lanes x ``accumulator`` (normalize + FP32 add), on every array.
* ``int_rescale`` = lanes x ``int_rescale``, INT8 lanes only: the INT32 -> FP32 convert and FP32 multiply that
  rescale each group's integer sum (one per lane, so any group size down to one block keeps up).
* ``aqu`` = AQU blocks per cycle x ``aqu_block_per_cycle`` (AQU enabled only).
* ``cast_units`` = lanes x ``cast_unit``, only on an array that accepts a format through a cast unit (one FP4 ->
  FP8 cast of a whole block per lane, in front of its weight operand).
* ``lane_registers`` = lanes x :func:`lane_register_bits` x ``register_bit``: each lane's weight collector and
  lane-skew FIFO (one slot-wide block + its precision flag per entry) and its partial-sum collector entries beyond
  the accumulator register (``psum_bits`` each), as flip-flops; an unbounded FIFO (``lane_fifo_depth: null``, an
  idealization) has no area.
* ``alignment_networks`` = :func:`alignment_networks` x ``align_network``: the funnel shifters of packed levels
  (:mod:`fgmpsim.sim.hw.layout`), one per port that moves mixed-size blocks across a packed / fixed-width
  boundary, only on a datapath with two block sizes.

:data:`FGMP_OVERHEAD_COMPONENTS` are the components an FP8-only array does not have: with the same array and
memories, ``fgmp`` minus ``fp8_baseline`` is exactly their sum, plus, with collectors or a bounded lane FIFO, the
precision flag of each register entry (``metadata_bits_per_block``: 1 on ``fgmp``, 0 on the one-precision
``fp8_baseline``) in ``lane_registers``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.energy.footprint import mixed_sizes, slot_bits
from fgmpsim.errors import ConfigError

SRAM_ENTRIES: dict[str, str] = {"glb": "glb_per_kib", "weight_buffers": "weight_buffer_per_kib",
                                "input_buffers": "input_buffer_per_kib", "accum_buffers": "accum_buffer_per_kib",
                                "aqu_sensitivity_table": "aqu_sensitivity_per_kib"}
"""SRAM component -> its mm²-per-KiB entry."""

AREA_ENTRIES: tuple[str, ...] = (*SRAM_ENTRIES.values(), "mac_fp8", "mac_fp4", "mac_int8", "mac_fgmp_extra",
                                 "block_scale", "accumulator", "int_rescale", "aqu_block_per_cycle", "cast_unit",
                                 "register_bit", "align_network")
"""Every area-table entry: mm² per KiB (``*_per_kib``), per scalar MAC (``mac_*``), per lane (``block_scale``,
``accumulator``, ``int_rescale``, ``cast_unit``), per block per cycle of AQU throughput (``aqu_block_per_cycle``),
per register bit (``register_bit``) or per alignment network (``align_network``)."""

FGMP_OVERHEAD_COMPONENTS: tuple[str, ...] = ("fgmp_mode_logic", "block_scale", "aqu", "aqu_sensitivity_table",
                                             "alignment_networks")
"""Components an FP8-only array lacks: FGMP's mixed-precision lane logic, NVFP4 block scaling, the AQU and the
alignment networks of its packed mixed-size blocks."""

_KIB = 1024


@dataclass(frozen=True)
class AreaBreakdown:
    """Area per component in mm² (see the module docstring for what each one counts)."""

    glb: float
    weight_buffers: float
    input_buffers: float
    accum_buffers: float
    mac_lanes: float
    fgmp_mode_logic: float
    block_scale: float
    accumulators: float
    int_rescale: float
    aqu: float
    aqu_sensitivity_table: float
    cast_units: float
    lane_registers: float
    alignment_networks: float

    @property
    def total_mm2(self) -> float:
        """Sum of all components, mm²."""
        return float(sum(asdict(self).values()))

    @property
    def fgmp_overhead_mm2(self) -> float:
        """Sum of :data:`FGMP_OVERHEAD_COMPONENTS`, mm²."""
        return float(sum(getattr(self, name) for name in FGMP_OVERHEAD_COMPONENTS))

    def as_dict(self) -> dict[str, float]:
        """``{"area_<component>_mm2": mm², ..., "area_mm2": total}`` (the keys of ``RunResult.summary()``)."""
        out = {f"area_{name}_mm2": value for name, value in asdict(self).items()}
        out["area_mm2"] = self.total_mm2
        return out


def _lane_entry(arch: Arch) -> str:
    """The scalar-MAC area entry of the array's lanes."""
    dp = arch.pe_array.datapath_precisions
    return "mac_int8" if arch.pe_array.integer else "mac_fp8" if "fp8" in dp else "mac_fp4"


def _has_block_scale(arch: Arch) -> bool:
    dp, storage = arch.pe_array.datapath_precisions, arch.storage
    return ("fp4" in dp and storage.fp4_scale_bits > 0) or ("fp8" in dp and storage.fp8_scale_bits > 0)


def lane_register_bits(arch: Arch) -> int:
    """Register bits per lane beyond its accumulator register: ``(weight_collector_blocks + lane_fifo_depth)``
    entries of one slot-wide block (:func:`~fgmpsim.energy.slot_bits`) plus its precision flag, and
    ``psum_collector_entries - 1`` partial sums of ``psum_bits`` (an unbounded FIFO counts 0)."""
    pe, st = arch.pe_array, arch.storage
    block = slot_bits(st, pe.vector_width, pe.datapath_precisions) + st.metadata_bits_per_block
    return ((pe.weight_collector_blocks + (pe.lane_fifo_depth or 0)) * block
            + (pe.psum_collector_entries - 1) * st.psum_bits)


def alignment_networks(arch: Arch) -> int:
    """Alignment networks of ``arch`` (:mod:`fgmpsim.sim.hw.layout` says where blocks are aligned), 0 unless its
    datapath stores two block sizes: with packed PE buffers one per lane (its weight reads) and one per PE (its
    input reads); with a packed GLB one per block per cycle of the AQU (its output writes); where the GLB's and the
    PE buffers' layouts differ one per slot of the GLB read port (PE fills), and where DRAM's and the GLB's differ
    one per slot of the DRAM read and of the write port (fills, write-back)."""
    if not mixed_sizes(arch):
        return 0
    pe, mem, layout = arch.pe_array, arch.memory, arch.storage.layout
    slot = slot_bits(arch.storage, pe.vector_width, pe.datapath_precisions)
    networks = pe.lanes + pe.pes if layout.pe_buffers == "packed" else 0
    if layout.glb == "packed":
        networks += arch.aqu.blocks_per_cycle
    if layout.glb != layout.pe_buffers:
        networks += math.ceil(mem.glb.read_bits_per_cycle / slot)
    if layout.dram != layout.glb:
        networks += math.ceil(mem.dram.read_bits_per_cycle / slot) + math.ceil(mem.dram.write_bits_per_cycle / slot)
    return networks


def required_area_entries(arch: Arch) -> tuple[str, ...]:
    """The area entries ``arch`` is priced with (its lane type, block scaling and AQU decide which)."""
    dp = arch.pe_array.datapath_precisions
    names = [*(SRAM_ENTRIES[c] for c in ("glb", "weight_buffers", "input_buffers", "accum_buffers")),
             _lane_entry(arch), "accumulator"]
    if arch.pe_array.integer:
        names.append("int_rescale")
    if set(dp) == {"fp4", "fp8"}:
        names.append("mac_fgmp_extra")
    if _has_block_scale(arch):
        names.append("block_scale")
    if arch.aqu.enabled:
        names += ["aqu_block_per_cycle", SRAM_ENTRIES["aqu_sensitivity_table"]]
    if arch.pe_array.casts:
        names.append("cast_unit")
    if lane_register_bits(arch):
        names.append("register_bit")
    if alignment_networks(arch):
        names.append("align_network")
    return tuple(names)


def check_area(arch: Arch) -> None:
    """Raise :class:`ConfigError` if ``arch`` has an area table that lacks an entry it needs, or an enabled AQU
    without a sized sensitivity table. Archs without an ``area:`` section pass (they have no area)."""
    if arch.area is None:
        return
    present = arch.area.as_dict()
    for entry in required_area_entries(arch):
        if entry not in present:
            raise ConfigError(f"no area for {entry!r}, a part this arch has", f"area.entries.{entry}",
                              "add '{mm2: <mm^2 per unit>, source: <where it comes from>}'")
    if arch.aqu.enabled and arch.aqu.sensitivity_channels < 1:
        raise ConfigError("an enabled AQU needs a sized sensitivity table for its area, got 0 channels",
                          "aqu.sensitivity_channels", "set it to the widest channel count (8192 in fgmp.yaml)")


def area_breakdown(arch: Arch) -> AreaBreakdown:
    """mm² per component of ``arch``; raises :class:`ConfigError` if the arch has no ``area:`` table."""
    if arch.area is None:
        raise ConfigError(f"arch {arch.name!r} has no area table", "area",
                          "add an 'area:' section (arch_configs/base.yaml has one) or extend base.yaml")
    mm2 = arch.area.as_dict()
    pe, mem, aqu = arch.pe_array, arch.memory, arch.aqu
    dp = pe.datapath_precisions
    macs = pe.lanes * pe.vector_width
    registers, networks = lane_register_bits(arch), alignment_networks(arch)

    def sram(component: str, size_bytes: int, copies: int = 1) -> float:
        return copies * size_bytes / _KIB * mm2[SRAM_ENTRIES[component]] if size_bytes else 0.0

    return AreaBreakdown(
        glb=sram("glb", mem.glb.size_bytes or 0),
        weight_buffers=sram("weight_buffers", mem.weight_buffer.size_bytes or 0, pe.pes),
        input_buffers=sram("input_buffers", mem.input_buffer.size_bytes or 0, pe.pes),
        accum_buffers=sram("accum_buffers", mem.accum_buffer.size_bytes or 0, pe.pes),
        mac_lanes=macs * mm2[_lane_entry(arch)],
        fgmp_mode_logic=macs * mm2["mac_fgmp_extra"] if set(dp) == {"fp4", "fp8"} else 0.0,
        block_scale=pe.lanes * mm2["block_scale"] if _has_block_scale(arch) else 0.0,
        accumulators=pe.lanes * mm2["accumulator"],
        int_rescale=pe.lanes * mm2["int_rescale"] if pe.integer else 0.0,
        aqu=aqu.blocks_per_cycle * mm2["aqu_block_per_cycle"] if aqu.enabled else 0.0,
        aqu_sensitivity_table=sram("aqu_sensitivity_table", aqu.sensitivity_table_bytes),
        cast_units=pe.lanes * mm2["cast_unit"] if pe.casts else 0.0,
        lane_registers=pe.lanes * registers * mm2["register_bit"] if registers else 0.0,
        alignment_networks=networks * mm2["align_network"] if networks else 0.0,
    )


def area_mm2(arch: Arch) -> float:
    """Total area of ``arch`` in mm²."""
    return area_breakdown(arch).total_mm2


ISO_AREA_KNOBS: tuple[str, ...] = ("lanes_per_pe", "glb")


@dataclass(frozen=True)
class IsoArea:
    """The override that grows an arch to (at most) a target area. ``overrides`` are ``--set``-style strings for
    :func:`fgmpsim.load_arch`; ``area_mm2`` is the area with them applied (<= ``target_mm2``, the largest reachable
    in whole lanes or KiB)."""

    knob: str
    overrides: tuple[str, ...]
    area_mm2: float
    target_mm2: float


def _with_lanes(arch: Arch, lanes_per_pe: int) -> tuple[Arch, tuple[str, ...]]:
    """``arch`` with ``lanes_per_pe`` lanes per PE and the per-lane buffer ports widened in proportion (one weight
    block and one partial sum per lane per cycle), so the added lanes are not starved by the old port widths."""
    ratio = lanes_per_pe / arch.pe_array.lanes_per_pe
    mem = arch.memory
    ports = {("weight_buffer", "read_bits_per_cycle"): mem.weight_buffer.read_bits_per_cycle,
             ("accum_buffer", "read_bits_per_cycle"): mem.accum_buffer.read_bits_per_cycle,
             ("accum_buffer", "write_bits_per_cycle"): mem.accum_buffer.write_bits_per_cycle}
    widened = {key: math.ceil(bits * ratio) for key, bits in ports.items()}
    levels = {name: getattr(mem, name) for name in ("weight_buffer", "accum_buffer")}
    for (name, port), bits in widened.items():
        levels[name] = dataclasses.replace(levels[name], **{port: bits})
    grown = dataclasses.replace(arch, pe_array=dataclasses.replace(arch.pe_array, lanes_per_pe=lanes_per_pe),
                                memory=dataclasses.replace(mem, **levels))
    overrides = (f"pe_array.lanes_per_pe={lanes_per_pe}",
                 *(f"memory.{name}.{port}={bits}" for (name, port), bits in widened.items()))
    return grown, overrides


def _with_glb(arch: Arch, size_bytes: int) -> tuple[Arch, tuple[str, ...]]:
    glb = dataclasses.replace(arch.memory.glb, size_bytes=size_bytes)
    return (dataclasses.replace(arch, memory=dataclasses.replace(arch.memory, glb=glb)),
            (f"memory.glb.size_bytes={size_bytes}",))


def iso_area(arch: Arch, target_mm2: float, knob: str = "lanes_per_pe") -> IsoArea:
    """The override that brings ``arch`` (e.g. ``fp8_baseline``) to the largest area <= ``target_mm2`` (e.g.
    ``fgmp``'s) by adding lanes per PE (``knob="lanes_per_pe"``, buffer ports widened with them) or GLB capacity in
    whole KiB (``knob="glb"``). Area is linear in both, so the step is found from one unit's increment and the
    result is checked with :func:`area_mm2`. Raises :class:`ConfigError` for an unknown knob or a target below
    the arch's own area."""
    if knob not in ISO_AREA_KNOBS:
        raise ConfigError(f"unknown iso-area knob {knob!r}", "knob", f"use one of {', '.join(ISO_AREA_KNOBS)}")
    base = area_mm2(arch)
    if not target_mm2 >= base:
        raise ConfigError(f"target {target_mm2:.6g} mm^2 is below {arch.name!r}'s own {base:.6g} mm^2", "target_mm2",
                          "iso-area grows the smaller design: give it the larger design's area")
    if knob == "lanes_per_pe":
        lanes = arch.pe_array.lanes_per_pe
        grow = lambda units: _with_lanes(arch, lanes + units)  # noqa: E731
    else:
        size = arch.memory.glb.size_bytes or 0
        grow = lambda units: _with_glb(arch, size + units * _KIB)  # noqa: E731
    step = area_mm2(grow(1)[0]) - base
    units = math.floor((target_mm2 - base) / step)
    while units > 0 and area_mm2(grow(units)[0]) > target_mm2:  # guard the floor against float rounding
        units -= 1
    grown, overrides = grow(units)
    return IsoArea(knob=knob, overrides=overrides if units else (), area_mm2=area_mm2(grown), target_mm2=target_mm2)
