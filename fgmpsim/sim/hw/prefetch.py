"""Next-op weight prefetch (``memory.prefetch_next_weights``): the DRAM -> GLB fill of an op's first weight tile
runs on the DRAM side during the previous op's tail, when the previous op no longer uses that channel.

**Units.** The timeline is a sequence of units run back to back: the trace's ops in order, a causal op's query
bands (:mod:`fgmpsim.sim.hw.causal`) each a unit of its own. ``u`` is a unit, ``v`` the unit right after it.

**When ``v`` prefetches** (:func:`may_prefetch`; all must hold, else ``v`` runs as without the option):

1. the option is on (a ``systolic_ws`` array, costed by folds, refuses it when the arch is loaded);
2. ``v`` fetches its first weight tile from DRAM (not when its W is the previous op's output kept in the GLB,
   :mod:`fgmpsim.sim.hw.glb_residency`);
3. ``v``'s W is not ``u``'s output (``u.consumer == v.name`` with ``consumer_operand == "weight"``): it is not in
   DRAM before ``u`` ends;
4. the GLB has room: ``tile bits + slots * step bits(u) + live bits(u) <= glb.size_bytes * 8``, where ``tile
   bits`` = ``tile_n * tile_k_blocks`` worst-case blocks (:func:`fgmpsim.sim.mapping.worst_block_bits`: ``v``'s
   weight tile as the mapper reserves it), ``step bits(u)`` = the worst-case GLB bits of one tile step of ``u``'s
   tiling (:func:`fgmpsim.sim.mapping.glb_step_bits`), ``slots`` = 2 when the GLB is double buffered (two steps in
   flight) else 1, and ``live bits(u)`` = data + metadata bits of what :mod:`~fgmpsim.sim.hw.glb_residency` keeps
   in the GLB during ``u``: the operand ``u`` is fed from the GLB and the output ``u`` keeps. A GLB too small
   means no prefetch, never an error.

**Timing** (each engine implements it on its own: :mod:`fgmpsim.sim.edges` for the tile engine, the event
engine's prefetcher process, the reference engine's cycle loop). ``u``'s *tail window* is its steps after the
last step that holds one of ``u``'s DRAM -> GLB fills as scheduled without the prefetch (every step if it has none;
a first weight fill of ``u`` done entirely in its own predecessor's tail still counts, so that ``T(u)`` is ``u``'s
own, whatever came before). At the window's first cycle
``v``'s fill is issued on the DRAM side and runs in every cycle of the window in which ``u``'s own transfers
leave that channel free (``u``'s transfers always go first, so ``u``'s timing never changes):

    T(u) = sum over the window's steps of (step cycles - DRAM-side busy cycles of the step)

``v``'s fill alone takes ``c`` cycles (tile 0's ``dram_w``); ``h = min(c, T(u))`` of them are done when ``v``
starts (both ends of a transfer advance every cycle it runs, so ``c - h`` remain), and the rest runs in its usual
step. Steps are independent in the schedule's recurrence (:mod:`fgmpsim.sim.schedule`), so only that step is
recomputed, attribution included: a serialized fill gives back ``h`` of ``stall_dram``; an overlapped one
shortens the step by how much less its excess over the compute is, taken from the channel that set it. Only tile
0's weight fill is prefetched, from the unit right before.

**Accounting.** The cycles ``v``'s fill spends in ``u``'s tail overlap ``u``'s own work: ``u``'s cycles, stalls
and busy cycles are unchanged, and no cycle is added to the timeline. ``v``'s cycles drop by the saving, all of
it out of its stalls (compute unchanged), so ``compute + stalls = cycles`` per op and the run's cycles = the sum
of its ops' cycles, back to back. ``v`` keeps its fill's bits (DRAM read, GLB write) and its busy loader cycles
(a transfer's busy cycles belong to its op, wherever they fall): every action count and every dynamic energy is
unchanged; static energy, charged per cycle, drops with the cycles.

**Analytic bound**: ``v``'s DRAM side minus ``c``, the most a prefetch can hide
(:func:`fgmpsim.sim.engines.analytic.op_bound`), so it stays a lower bound of ``v``'s cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.sim.mapping import Tiling, glb_step_bits, worst_block_bits
from fgmpsim.trace.record import GemmOp


@dataclass(frozen=True)
class Unit:
    """A unit of the timeline as the prefetch rule sees it: its op (or band), its tiling, the operand it is fed
    from the GLB (``"act"``/``"weight"``, ``None``) and ``live_bits``: what the GLB keeps for it beside its tile
    steps (its fed operand and its kept output, data + metadata bits)."""

    op: GemmOp
    tiling: Tiling
    fed: str | None = None
    live_bits: int = 0


@dataclass(frozen=True)
class Link:
    """The prefetch decision between a unit and the one before it: ``prefetch`` (rule 1-4 of the module
    docstring hold) and ``window``: the free DRAM-side cycles ``T`` of the previous unit's tail (0 without
    prefetch)."""

    prefetch: bool = False
    window: int = 0


NO_LINK = Link()


def first_tile_bits(arch: Arch, tiling: Tiling) -> int:
    """Worst-case GLB bits of a unit's first weight tile: ``tile_n * tile_k_blocks`` worst-case blocks."""
    m = tiling.mapping
    return m.tile_n * m.tile_k_blocks * worst_block_bits(arch)


def may_prefetch(arch: Arch, u: Unit, v: Unit) -> bool:
    """Rules 1-4 of the module docstring for ``v`` right after ``u``."""
    glb = arch.memory.glb
    if not arch.memory.prefetch_next_weights or v.fed == "weight":
        return False
    if u.op.consumer == v.op.name and u.op.consumer_operand == "weight":
        return False
    slots = 2 if glb.double_buffered else 1
    return first_tile_bits(arch, v.tiling) + slots * glb_step_bits(arch, u.tiling) + u.live_bits <= glb.size_bytes * 8


class Sequencer:
    """Walks the units in timeline order and hands each its :class:`Link` to the one before: :meth:`link` before
    costing a unit, :meth:`ran` after, with the free DRAM-side cycles of its tail window (``T``) as its engine
    measured them."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        self._previous: Unit | None = None
        self._tail = 0

    def link(self, unit: Unit) -> Link:
        if self._previous is None or not may_prefetch(self.arch, self._previous, unit):
            return NO_LINK
        return Link(True, self._tail)

    def ran(self, unit: Unit, tail: int) -> None:
        self._previous, self._tail = unit, tail
