"""An op's edges on the tile engine: the two places the next-op weight prefetch (:mod:`fgmpsim.sim.hw.prefetch`)
couples neighbouring ops, computed from the op's tiles alone so that ops are still costed independently.

* **tail**: the free DRAM-side cycles ``T`` of the op's tail window (the steps after its last DRAM -> GLB fill);
* **head**: the step holding tile 0's weight fill, as its parts (serialized cycles per channel, overlapped cycles
  per channel, compute), so that :func:`hide` can rerun that one step with ``h`` cycles of the fill already done.

Per step, by the rules of :mod:`fgmpsim.sim.schedule`: ``step = serial dram + serial glb + serial aqu +
max(compute, dram, glb, aqu)``, the DRAM side busy ``serial dram + dram`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fgmpsim.arch.record import Arch
from fgmpsim.sim.hw.traffic import OpTiles
from fgmpsim.sim.schedule import CHANNELS, LEAD, OpTiming, fill_cycles, placements


@dataclass(frozen=True)
class HeadStep:
    """The step holding tile 0's DRAM -> GLB weight fill: cycles per channel (:data:`~fgmpsim.sim.schedule.CHANNELS`
    order) of its serialized and of its overlapped transfers, its compute (pipeline fill included, 0 before tile
    0's step), whether the weight fill is overlapped, and its cycles ``weights`` (``c``)."""

    serial: tuple[int, ...]
    overlap: tuple[int, ...]
    compute: int
    overlapped: bool
    weights: int


@dataclass(frozen=True)
class Edges:
    """The op's :class:`HeadStep` and ``tail``: the free DRAM-side cycles of its tail window."""

    head: HeadStep
    tail: int


def first_weight_fill(tiles: OpTiles) -> int:
    """Cycles of tile 0's DRAM -> GLB weight fill (0 when it has none)."""
    return int(tiles.flat("dram_w")[0]) if tiles.terms["dram_w"] else 0


def op_edges(tiles: OpTiles, arch: Arch) -> Edges:
    """The op's edges (module docstring), with one buffer per step and channel."""
    steps = tiles.tiles + 2 * LEAD
    place = placements(arch)
    serial = {ch: np.zeros(steps, dtype=np.int64) for ch in CHANNELS}
    overlap = {ch: np.zeros(steps, dtype=np.int64) for ch in CHANNELS}
    fills = np.zeros(steps, dtype=np.int64)
    for kind, where in place.items():
        if not tiles.terms[kind] or (kind in ("drain_glb", "drain_aqu") and not where.overlapped):
            continue
        tiles.add((overlap if where.overlapped else serial)[where.channel], LEAD + where.offset, kind)
        if kind in ("dram_w", "dram_x"):
            tiles.add(fills, LEAD + where.offset, kind)
    if not place["drain_glb"].overlapped:  # a serialized drain stalls the slower of its parts (the GLB on ties)
        glb, aqu = tiles.flat("drain_glb"), tiles.flat("drain_aqu")
        at = slice(LEAD + 1, LEAD + 1 + tiles.tiles)
        serial["glb"][at] += np.where(glb >= aqu, glb, 0)
        serial["aqu"][at] += np.where(aqu > glb, aqu, 0)
    compute = np.zeros(steps, dtype=np.int64)
    tiles.add(compute, LEAD, "compute")
    compute[LEAD:LEAD + tiles.tiles] += fill_cycles(arch)
    peak = np.maximum.reduce([compute, *overlap.values()])
    filled = np.flatnonzero(fills)
    window = slice(int(filled[-1]) + 1 if len(filled) else 0, steps)
    tail = int((serial["glb"][window] + serial["aqu"][window] + peak[window] - overlap["dram"][window]).sum())
    s = LEAD + place["dram_w"].offset
    head = HeadStep(tuple(int(serial[ch][s]) for ch in CHANNELS), tuple(int(overlap[ch][s]) for ch in CHANNELS),
                    int(compute[s]), place["dram_w"].overlapped, first_weight_fill(tiles))
    return Edges(head, tail)


def _step(serial: tuple[int, ...], overlap: tuple[int, ...], compute: int) -> tuple[int, list[int]]:
    """Cycles of one step and its stall per channel: serialized transfers stall their channel, the overlapped
    excess over the compute goes to the channel that set the maximum (DRAM, then GLB, then AQU on ties)."""
    top = max(compute, *overlap)
    stall = list(serial)
    if top > compute:
        stall[overlap.index(top)] += top - compute
    return sum(serial) + top, stall


def hide(timing: OpTiming, head: HeadStep, hidden: int) -> OpTiming:
    """``timing`` with ``hidden`` cycles of tile 0's weight fill done before the op starts: the head step rerun
    with the fill shortened, the difference taken off the cycles and the stalls (compute and busy unchanged)."""
    if not hidden:
        return timing
    assert 0 < hidden <= head.weights, (hidden, head.weights)
    cut = [0] * len(CHANNELS)
    cut[CHANNELS.index("dram")] = hidden
    shorter = tuple(x - d for x, d in zip(head.overlap if head.overlapped else head.serial, cut))
    before, stall_before = _step(head.serial, head.overlap, head.compute)
    after, stall_after = (_step(head.serial, shorter, head.compute) if head.overlapped
                          else _step(shorter, head.overlap, head.compute))
    stalls = {f"stall_{ch}_cycles": getattr(timing, f"stall_{ch}_cycles") - old + new
              for ch, old, new in zip(CHANNELS, stall_before, stall_after)}
    return replace(timing, cycles=timing.cycles - before + after, **stalls)
