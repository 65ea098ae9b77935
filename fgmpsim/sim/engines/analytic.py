"""The analytic lower bound of an op's cycles, from its action counts.

``bound = max(compute + fill, dram side, glb side)`` where

* ``compute = ceil(sum over block pairs of c[w][a] / lanes)`` (every lane busy, no imbalance);
* ``fill = tiles * (pipeline_depth - 1)``: every tile fills and drains the VMAC pipeline once
  (:mod:`fgmpsim.sim.schedule`);
* ``dram side = ceil(fill bits / min(dram.read, glb.write) + write-back bits / min(glb.read, dram.write))``: every
  DRAM transfer runs on the one DRAM-side channel at no more than its slower end's rate;
* ``glb side = ceil(PE-fill bits / glb.read + drain bits / glb.write)``: the PE side of the GLB likewise.

Bits include metadata. The tile engine is never below it: each of its steps lasts at least its compute and at
least each channel's transfers, and every transfer takes at least its bits over its rate; its compute steps last
at least each tile's ideal plus the fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from fgmpsim.arch.record import Arch


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


def _bits(counts: dict[str, int], level: str, direction: str) -> int:
    return counts[f"{level}_{direction}_bits"] + counts[f"{level}_{direction}_metadata_bits"]


def op_bound(counts: dict[str, int], arch: Arch, tiles: int = 0) -> Bound:
    """The bound of one op with these action counts and ``tiles`` tiles."""
    pe, mem = arch.pe_array, arch.memory
    table = pe.cycles_per_block_pair.as_table()
    work = sum(counts[f"macs_fp{4 + 4 * w}xfp{4 + 4 * a}"] // pe.vector_width * table[w][a]
               for w in (0, 1) for a in (0, 1))
    fill, writeback = _bits(counts, "dram", "read"), _bits(counts, "dram", "write")
    pe_fill = _bits(counts, "glb", "read") - writeback
    drain = _bits(counts, "glb", "write") - fill
    dram = (Fraction(fill, min(mem.dram.read_bits_per_cycle, mem.glb.write_bits_per_cycle))
            + Fraction(writeback, min(mem.glb.read_bits_per_cycle, mem.dram.write_bits_per_cycle)))
    glb = Fraction(pe_fill, mem.glb.read_bits_per_cycle) + Fraction(drain, mem.glb.write_bits_per_cycle)
    return Bound(compute=-(-work // pe.lanes), dram=ceil(dram), glb=ceil(glb),
                 fill=tiles * (pe.pipeline_depth - 1))
