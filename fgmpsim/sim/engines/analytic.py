"""The analytic lower bound of an op's cycles, from its action counts.

``bound = max(compute + fill, dram side, glb side)`` where

* ``compute = ceil(sum over block pairs of c[w][a] / lanes)`` (every lane busy, no imbalance);
* ``fill = tiles * (pipeline_depth - 1)``: every tile fills and drains the VMAC pipeline once
  (:mod:`fgmpsim.sim.schedule`);
* ``dram side = ceil(fill bits / min(dram.read, glb.write) + write-back bits / min(glb.read, dram.write))``: every
  DRAM transfer runs on the one DRAM-side channel at no more than its slower end's rate;
* ``glb side = ceil(PE-fill bits / glb.read + drain bits / glb.write)``: the PE side of the GLB likewise.

With the next-op weight prefetch (:mod:`fgmpsim.sim.hw.prefetch`) an op that prefetches its first weight tile has
``c`` (that fill's cycles) taken off its DRAM side (at least 0): the most of it the previous op's tail can hide.

Bits include metadata. The tile engine is never below it: each of its steps lasts at least its compute and at
least each channel's transfers, and every transfer takes at least its bits over its rate; its compute steps last
at least each tile's ideal plus the fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from fgmpsim.arch.record import Arch
from fgmpsim.precision import slot_pairs
from fgmpsim.sim.schedule import OpTiming


@dataclass(frozen=True)
class Bound:
    """Lower bounds in cycles: ``cycles`` is the largest of compute + fill, DRAM side and GLB side."""

    compute: int
    dram: int
    glb: int
    fill: int = 0

    @property
    def cycles(self) -> int:
        return max(self.compute + self.fill, self.dram, self.glb)


@dataclass(frozen=True)
class MemorySides:
    """The DRAM side and the PE side of the GLB of an op, in cycles (rounded up), with their parts: ``fill``
    (DRAM -> GLB), ``writeback`` (GLB -> DRAM), ``pe_fill`` (GLB -> PEs), ``drain`` (PEs -> GLB)."""

    dram: int
    glb: int
    fill: int
    writeback: int
    pe_fill: int
    drain: int


def _bits(counts: dict[str, int], level: str, direction: str) -> int:
    return counts[f"{level}_{direction}_bits"] + counts[f"{level}_{direction}_metadata_bits"]


def memory_bounds(counts: dict[str, int], arch: Arch) -> MemorySides:
    """The two memory sides of the bound (module docstring) of one op with these action counts."""
    mem = arch.memory
    fill, writeback = _bits(counts, "dram", "read"), _bits(counts, "dram", "write")
    pe_fill = _bits(counts, "glb", "read") - writeback
    drain = _bits(counts, "glb", "write") - fill
    rates = (min(mem.dram.read_bits_per_cycle, mem.glb.write_bits_per_cycle),
             min(mem.glb.read_bits_per_cycle, mem.dram.write_bits_per_cycle), mem.glb.read_bits_per_cycle,
             mem.glb.write_bits_per_cycle)
    parts = [Fraction(bits, rate) for bits, rate in zip((fill, writeback, pe_fill, drain), rates)]
    return MemorySides(dram=ceil(parts[0] + parts[1]), glb=ceil(parts[2] + parts[3]),
                       **{name: ceil(part) for name, part in zip(("fill", "writeback", "pe_fill", "drain"), parts)})


def op_bound(counts: dict[str, int], arch: Arch, tiles: int = 0, prefetched: int = 0) -> Bound:
    """The bound of one op with these action counts and ``tiles`` tiles; ``prefetched``: cycles of its first
    weight fill the previous op's tail may hide (module docstring)."""
    pe = arch.pe_array
    table = pe.mode_table
    names = slot_pairs(pe.datapath_precisions)
    modes = {names[2 * w + a]: table[w][a] for w in (0, 1) for a in (0, 1)}  # an INT8 datapath: one mode
    work = sum(counts[f"macs_{pair}"] // pe.vector_width * cycles for pair, cycles in modes.items())
    sides = memory_bounds(counts, arch)
    return Bound(compute=-(-work // pe.lanes), dram=max(0, sides.dram - prefetched), glb=sides.glb,
                 fill=tiles * (pe.pipeline_depth - 1))


def bound_timing(bound: Bound, busy: dict[str, int] | None = None) -> OpTiming:
    """An op lasting its bound: the fill stalls as ``stall_fill_cycles``, the gap between the bound and compute +
    fill stalls DRAM when the DRAM side binds, else the GLB; ``busy``: cycles per hardware process (``loader,
    distributor, aqu, writer``; absent = 0)."""
    busy = busy or {}
    gap = bound.cycles - bound.compute - bound.fill
    dram_binds = bound.dram == bound.cycles
    return OpTiming(cycles=bound.cycles, compute_cycles=bound.compute, stall_dram_cycles=gap if dram_binds else 0,
                    stall_glb_cycles=0 if dram_binds else gap, stall_imbalance_cycles=0, stall_aqu_cycles=0,
                    stall_fill_cycles=bound.fill,
                    **{f"busy_{name}_cycles": busy.get(name, 0) for name in ("loader", "distributor", "aqu",
                                                                              "writer")})
