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

where ``compute[s]`` is tile ``s``'s slowest lane plus the **VMAC pipeline fill/drain**: ``F = pipeline_depth - 1``
cycles per tile (:func:`fill_cycles`). A lane issues one block pair into a ``pipeline_depth``-stage pipeline as
soon as the previous one has used its cycles, and the lanes synchronize at tile boundaries, so the last block pair
of every tile needs ``F`` more cycles to leave the pipeline before the next tile starts (its first result then
needs ``F`` cycles to arrive: the fill of the next tile is the drain of this one, counted once per tile).

Cycles of an op = sum of its steps (it starts with an empty pipeline and drains it: ops run back to back, never
overlapping, except that with ``memory.prefetch_next_weights`` an op's first weight fill may run partly in the
previous op's tail: :mod:`fgmpsim.sim.hw.prefetch`, :mod:`fgmpsim.sim.edges`). Attribution: ``compute_cycles`` = sum of each tile's ideal ``ceil(work / active lanes)``;
``stall_imbalance`` = slowest lane minus ideal; ``stall_fill`` = ``F`` per tile; serialized transfers stall their
channel's cause (DRAM side -> ``stall_dram``, PE side -> ``stall_glb``, AQU -> ``stall_aqu``; a serialized drain
goes to the slower of its parts, the GLB on a tie); the overlapped excess ``max(...) - compute`` goes to the
channel that set the maximum (DRAM, then GLB, then AQU on ties); the excess is measured over ``compute[s]`` fill
included. Hence ``compute + stalls = cycles`` for every op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from fgmpsim.arch.record import Arch
from fgmpsim.sim.hw.traffic import OpTiles

LEAD = 2
"""Steps before tile 0's compute (the deepest prefetch) and after the last tile's (the write-back)."""


@dataclass(frozen=True)
class Placement:
    """Where a kind of transfer of tile ``j`` runs: step ``j + offset``, overlapped with compute or serialized."""

    channel: str
    offset: int
    overlapped: bool


def placements(arch: Arch) -> Mapping[str, Placement]:
    """The placement of every transfer kind of :class:`OpTiles` on ``arch`` (the table in the module docstring)."""
    mem = arch.memory
    return _placements(*(int(level.double_buffered) for level in
                         (mem.glb, mem.weight_buffer, mem.input_buffer, mem.accum_buffer)))


@lru_cache(maxsize=16)
def _placements(gd: int, wd: int, xd: int, ad: int) -> Mapping[str, Placement]:
    """:func:`placements` for the double-buffering flags of the GLB, weight, input and accumulation buffers (read
    only: every op of a run shares it)."""
    return MappingProxyType({"dram_w": Placement("dram", -wd - gd, bool(gd)), "dram_x": Placement("dram", -xd - gd, bool(gd)),
            "pe_w": Placement("glb", -wd, bool(wd)), "pe_x": Placement("glb", -xd, bool(xd)),
            "pe_psum": Placement("glb", -ad, bool(ad)), "drain_glb": Placement("glb", 1, bool(ad)),
            "drain_aqu": Placement("aqu", 1, bool(ad)), "writeback": Placement("dram", 2, bool(gd))})


BUSY = {"loader": ("dram_w", "dram_x"), "distributor": ("pe_w", "pe_x", "pe_psum"),
        "aqu": ("drain_aqu",), "writer": ("drain_glb", "writeback")}
"""The transfer kinds each hardware process (of the SimPy engine) performs."""

CHANNELS = ("dram", "glb", "aqu")

SMALL_OP = 4096
"""Steps below which :func:`time_op` keeps its step buffers int64 without checking whether int32 would do."""


def fill_cycles(arch: Arch) -> int:
    """VMAC pipeline fill/drain cycles added to every tile's compute: ``pipeline_depth - 1``."""
    return arch.pe_array.pipeline_depth - 1


@dataclass(frozen=True, kw_only=True)
class OpTiming:
    """Cycles of one op: ``cycles = compute_cycles + stall_*`` (``stall_fill_cycles``: the VMAC pipeline's fill and
    drain); ``busy_<process>_cycles`` are the cycles each
    hardware process (DRAM loader, GLB->PE distributor, AQU, drain + write-back writer) spends on transfers."""

    cycles: int
    compute_cycles: int
    stall_dram_cycles: int
    stall_glb_cycles: int
    stall_imbalance_cycles: int
    stall_aqu_cycles: int
    stall_fill_cycles: int
    busy_loader_cycles: int
    busy_distributor_cycles: int
    busy_aqu_cycles: int
    busy_writer_cycles: int


def time_op(tiles: OpTiles, arch: Arch) -> OpTiming:
    """Run the lockstep recurrence over all steps of one op (see the module docstring).

    Only the overlapped phase needs per-step values: each channel's overlapped transfers and the compute are added
    into one step buffer each, and only the steps where a transfer outlasts the compute are attributed. Serialized
    transfers add their totals (a serialized drain is split per tile between its GLB and AQU parts)."""
    steps = tiles.tiles + 2 * LEAD
    place = placements(arch)
    # a step holds at most one tile's share of each kind: int32 buffers (half the memory traffic) when that fits;
    # below SMALL_OP steps the buffers are a few KB and the peaks would cost more than they save
    fill = fill_cycles(arch)
    dtype = (np.int32 if steps >= SMALL_OP and sum(tiles.peak(kind) for kind in place) + tiles.peak("compute") + fill
             < 2**31 else np.int64)
    serial = dict.fromkeys(CHANNELS, 0)
    overlap: dict[str, np.ndarray] = {}
    for kind, where in place.items():
        if not tiles.terms[kind] or (kind in ("drain_glb", "drain_aqu") and not where.overlapped):
            continue
        if where.overlapped:
            if where.channel not in overlap:
                overlap[where.channel] = np.zeros(steps, dtype=dtype)
            tiles.add(overlap[where.channel], LEAD + where.offset, kind)
        else:
            serial[where.channel] += tiles.total(kind)
    if not place["drain_glb"].overlapped:
        glb, aqu = tiles.flat("drain_glb"), tiles.flat("drain_aqu")
        serial["glb"] += int(np.where(glb >= aqu, glb, 0).sum())
        serial["aqu"] += int(np.where(aqu > glb, aqu, 0).sum())
    compute = np.zeros(steps, dtype=dtype)
    tiles.add(compute, LEAD, "compute")
    compute[LEAD:LEAD + tiles.tiles] += fill
    stall = dict.fromkeys(CHANNELS, 0)
    if overlap:
        channels = iter(overlap.values())
        peak = np.maximum(compute, next(channels))
        for channel in channels:
            np.maximum(peak, channel, out=peak)
        hot = np.flatnonzero(peak > compute)  # the only steps with an excess to attribute
        top = peak[hot]
        excess = top.astype(np.int64) - compute[hot]
        unclaimed = np.ones(len(hot), dtype=bool)
        for channel in CHANNELS:  # ties go to DRAM, then GLB, then AQU
            if channel in overlap:
                mine = unclaimed & (overlap[channel][hot] == top)
                stall[channel] = int(excess[mine].sum())
                unclaimed &= ~mine
    work = tiles.total("compute")
    busy = {name: sum(tiles.total(kind) for kind in kinds) for name, kinds in BUSY.items()}
    filled = fill * tiles.tiles
    return OpTiming(
        cycles=sum(serial.values()) + work + filled + sum(stall.values()), compute_cycles=tiles.ideal_cycles,
        stall_dram_cycles=serial["dram"] + stall["dram"], stall_glb_cycles=serial["glb"] + stall["glb"],
        stall_imbalance_cycles=work - tiles.ideal_cycles, stall_aqu_cycles=serial["aqu"] + stall["aqu"],
        stall_fill_cycles=filled,
        **{f"busy_{name}_cycles": value for name, value in busy.items()})
