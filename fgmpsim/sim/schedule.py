"""The timing model: an op's tiles run through a lockstep pipeline of tile *steps*, vectorized over all steps.

Step ``s`` computes tile ``s``; while it runs, the memory system moves the data of neighbouring tiles. Where each
transfer of tile ``j`` happens (``gd, wd, xd, ad`` = 1 if the GLB, weight, input, accumulation buffer is double
buffered, else 0):

* DRAM -> GLB fill of the weights / X: step ``j - wd - gd`` / ``j - xd - gd``, overlapping compute if ``gd``;
* GLB -> weight / input / accumulation buffer fill: step ``j - wd`` / ``j - xd`` / ``j - ad``, overlapping compute
  if that buffer is double buffered;
* drain, accumulation buffer -> (AQU ->) GLB: step ``j + 1``, overlapping compute if ``ad``;
* write-back, GLB -> DRAM: step ``j + 2``, overlapping compute if ``gd``.

A double-buffered level is filled for a later tile while the current one computes; a single-buffered one is
filled (or drained) between two computes. Three channels carry the transfers, each one transfer at a time: the
*DRAM side* (DRAM fills and write-backs), the *PE side* of the GLB (PE fills and drains) and the *AQU*.
A step first runs its serialized transfers one after another (a serialized drain runs its GLB and AQU parts
side by side), then the compute in parallel with every channel's overlapped transfers::

    step[s] = serial_dram[s] + serial_glb[s] + serial_aqu[s] + max(compute[s], dram[s], glb[s], aqu[s])

Cycles of an op = sum of its steps (it starts with an empty pipeline and drains it: ops run back to back, never
overlapping). Attribution: ``compute_cycles`` = sum of each tile's ideal ``ceil(work / active lanes)``;
``stall_imbalance`` = slowest lane minus ideal; serialized transfers stall their channel's cause (DRAM side ->
``stall_dram``, PE side -> ``stall_glb``, AQU -> ``stall_aqu``; a serialized drain goes to the slower of its
parts, the GLB on a tie); the overlapped excess ``max(...) - compute`` goes to the channel that set the maximum
(DRAM, then GLB, then AQU on ties). Hence ``compute + stalls = cycles`` for every op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fgmpsim.arch.record import Arch
from fgmpsim.sim.traffic import OpTiles

LEAD = 2
"""Steps before tile 0's compute (the deepest prefetch) and after the last tile's (the write-back)."""


@dataclass(frozen=True)
class Placement:
    """Where a kind of transfer of tile ``j`` runs: step ``j + offset``, overlapped with compute or serialized."""

    channel: str
    offset: int
    overlapped: bool


def placements(arch: Arch) -> dict[str, Placement]:
    """The placement of every transfer kind of :class:`OpTiles` on ``arch`` (the table in the module docstring)."""
    mem = arch.memory
    gd, wd, xd, ad = (int(level.double_buffered) for level in
                      (mem.glb, mem.weight_buffer, mem.input_buffer, mem.accum_buffer))
    return {"dram_w": Placement("dram", -wd - gd, bool(gd)), "dram_x": Placement("dram", -xd - gd, bool(gd)),
            "pe_w": Placement("glb", -wd, bool(wd)), "pe_x": Placement("glb", -xd, bool(xd)),
            "pe_psum": Placement("glb", -ad, bool(ad)), "drain_glb": Placement("glb", 1, bool(ad)),
            "drain_aqu": Placement("aqu", 1, bool(ad)), "writeback": Placement("dram", 2, bool(gd))}


BUSY = {"loader": ("dram_w", "dram_x"), "distributor": ("pe_w", "pe_x", "pe_psum"),
        "aqu": ("drain_aqu",), "writer": ("drain_glb", "writeback")}
"""The transfer kinds each hardware process (of the SimPy engine) performs."""

CHANNELS = ("dram", "glb", "aqu")


@dataclass(frozen=True)
class OpTiming:
    """Cycles of one op: ``cycles = compute_cycles + stall_*``; ``busy_<process>_cycles`` are the cycles each
    hardware process (DRAM loader, GLB->PE distributor, AQU, drain + write-back writer) spends on transfers."""

    cycles: int
    compute_cycles: int
    stall_dram_cycles: int
    stall_glb_cycles: int
    stall_imbalance_cycles: int
    stall_aqu_cycles: int
    busy_loader_cycles: int
    busy_distributor_cycles: int
    busy_aqu_cycles: int
    busy_writer_cycles: int


def time_op(tiles: OpTiles, arch: Arch) -> OpTiming:
    """Run the lockstep recurrence over all steps of one op (see the module docstring)."""
    t = tiles.tiles
    steps = t + 2 * LEAD
    serial = {ch: np.zeros(steps, dtype=np.int64) for ch in CHANNELS}
    overlap = {ch: np.zeros(steps, dtype=np.int64) for ch in CHANNELS}
    place = placements(arch)
    for kind, where in place.items():
        if kind in ("drain_glb", "drain_aqu") and not where.overlapped:
            continue
        target = overlap if where.overlapped else serial
        start = LEAD + where.offset
        target[where.channel][start:start + t] += getattr(tiles, kind)
    if not place["drain_glb"].overlapped:
        glb, aqu = tiles.drain_glb, tiles.drain_aqu
        start = LEAD + place["drain_glb"].offset
        serial["glb"][start:start + t] += np.where(glb >= aqu, glb, 0)
        serial["aqu"][start:start + t] += np.where(aqu > glb, aqu, 0)
    compute = np.zeros(steps, dtype=np.int64)
    compute[LEAD:LEAD + t] = tiles.compute
    peak = np.maximum.reduce([compute, overlap["dram"], overlap["glb"], overlap["aqu"]])
    excess = peak - compute
    by_dram = overlap["dram"] == peak
    by_glb = ~by_dram & (overlap["glb"] == peak)
    by_aqu = ~by_dram & ~by_glb
    step = serial["dram"] + serial["glb"] + serial["aqu"] + peak
    ideal = int(tiles.ideal.sum())
    busy = {name: int(sum(getattr(tiles, kind).sum() for kind in kinds)) for name, kinds in BUSY.items()}
    return OpTiming(
        cycles=int(step.sum()), compute_cycles=ideal,
        stall_dram_cycles=int(serial["dram"].sum() + excess[by_dram].sum()),
        stall_glb_cycles=int(serial["glb"].sum() + excess[by_glb].sum()),
        stall_imbalance_cycles=int(tiles.compute.sum()) - ideal,
        stall_aqu_cycles=int(serial["aqu"].sum() + excess[by_aqu].sum()),
        **{f"busy_{name}_cycles": value for name, value in busy.items()})
