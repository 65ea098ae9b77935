"""The per-cycle reference engine: the modeled machine stepped one cycle at a time, written from the spec.

It shares no code with the tile engine (nothing of :mod:`fgmpsim.sim.hw`, :mod:`fgmpsim.sim.vector`,
:mod:`fgmpsim.sim.schedule`, the other engines, the tiling helpers of :mod:`fgmpsim.sim.mapping` or the energy
helpers): it reads the trace and arch records and the mapper's decision as plain numbers (:class:`Decision`) and
derives everything else itself, so ``tile == reference`` on its own counts and cycles checks the tile engine's
vectorized model against a plain reading of the same spec.

* :mod:`.operands`: blocks along K (a partial last block counts whole), datapath precision, block bits, the
  output format, the weight footprint;
* :mod:`.tiles`: the tiles in execution order, what each moves, the action counts;
* :mod:`.cycles`: the step rules and the cycle-by-cycle run;
* :mod:`.causal`: the query bands of a causal attention op.

Usable on tiny GEMMs only: above :data:`MAX_BLOCK_PAIRS` block pairs per trace it refuses before building any
tile, and an op whose cycle-by-cycle run would take more than :data:`MAX_STEPPED_CYCLES` lane and transfer cycles
is refused once its tiles are built, before the first cycle (a few block pairs at 2**20 cycles each are as slow as
millions at 1 cycle).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fgmpsim.arch.record import Arch
from fgmpsim.errors import TraceError
from fgmpsim.sim.engines.reference.causal import reference_bands
from fgmpsim.sim.engines.reference.cycles import build_steps, run_step, stepped_cycles, window_start
from fgmpsim.sim.engines.reference.operands import (blocks_along_k, fp8_share, footprint_bits, output_of,
                                                    stored_map)
from fgmpsim.sim.engines.reference.tiles import Decision, OpBuilder, action_names
from fgmpsim.trace.record import GemmOp, Trace

__all__ = ["MAX_BLOCK_PAIRS", "MAX_STEPPED_CYCLES", "TIMING", "Decision", "ReferenceOp", "check_size",
           "operand_columns", "reference_bands", "reference_op"]

MAX_BLOCK_PAIRS = 200_000
"""Largest trace (block pairs over all ops and repeats) the reference engine accepts."""
MAX_STEPPED_CYCLES = 20_000_000
"""Most loop iterations (a lane or a transfer port advanced by one cycle) of one op: 1-20 s in Python."""

TIMING = ("cycles", "compute_cycles", "stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles",
          "stall_aqu_cycles", "stall_fill_cycles", "busy_loader_cycles", "busy_distributor_cycles",
          "busy_aqu_cycles", "busy_writer_cycles")
"""The timing columns :func:`reference_op` returns (``cycles`` = ``compute_cycles`` + the five stalls)."""


def check_size(trace: Trace) -> None:
    """Refuse traces too large for a per-cycle simulation."""
    pairs = sum(op.m * op.n * op.repeat * blocks_along_k(op.k, trace.block_size) for op in trace.ops)
    if pairs > MAX_BLOCK_PAIRS:
        raise TraceError(f"the reference engine steps every cycle and takes at most {MAX_BLOCK_PAIRS} block pairs, "
                         f"this trace has {pairs}", "engine",
                         "use engine='tile' (exact, vectorized) or a smaller GEMM")


@dataclass(frozen=True)
class ReferenceOp:
    """One op on the reference engine: ``timing`` (the :data:`TIMING` columns), ``counts`` (every action),
    ``operands`` (the row columns it derives from the maps: ``weight_bits``, ``weight_elements``, the FP8
    fractions and the output blocks), ``first_fill``: the cycles its tile-0 weight fill takes alone, and ``tail``:
    the free DRAM-side cycles of its tail window (:mod:`.cycles`)."""

    timing: dict[str, int]
    counts: dict[str, int]
    operands: dict[str, Any]
    first_fill: int
    tail: int


def reference_op(trace: Trace, op: GemmOp, arch: Arch, decision: Decision, window: int = 0) -> ReferenceOp:
    """Simulate ``op`` of ``trace`` cycle by cycle under the mapper's ``decision``, its tile-0 weight fill run in
    the ``window`` free DRAM-side cycles of the previous op's tail first (0: no prefetch); refuses an op over
    :data:`MAX_STEPPED_CYCLES` before stepping it."""
    vw = arch.pe_array.vector_width
    kb = blocks_along_k(op.k, vw)
    w, a = stored_map(op.weight_map, arch, op.weight_format), stored_map(op.act_map, arch, op.act_format)
    out = output_of(trace, op, arch)
    builder = OpBuilder(arch, decision, w, a, out, op.m, op.n, kb, op.repeat, (op.weight_format, op.act_format))
    builder.build()
    steps, ahead = build_steps(builder.lanes, builder.moves, arch, window)
    first_fill = next((max(-(-bits // rate) for bits, rate in move.ends) for move in builder.moves
                       if move.kind == "dram_w" and move.tile == 0), 0)
    work = stepped_cycles(steps)
    if work > MAX_STEPPED_CYCLES:
        raise TraceError(f"the reference engine steps every cycle; op {op.name!r} would take {work:,} lane and "
                         f"transfer cycles (~{work / 2e6:,.0f} s at ~2 M per second), more than the "
                         f"{MAX_STEPPED_CYCLES:,} it takes on",
                         "engine", "use engine='tile' (exact, vectorized) or a smaller GEMM / fewer cycles per "
                                   "block pair")
    busy: dict[str, int] = defaultdict(int)
    busy["loader"] += ahead
    spent: dict[str, int] = defaultdict(int)
    opens, tail = window_start(steps) if steps else 0, 0
    for s in sorted(steps):
        step_spent, free = run_step(steps[s], busy)
        tail += free if s >= opens else 0
        for cause, cycles in step_spent.items():
            spent[cause] += cycles
    timing = {"cycles": spent["cycles"], "compute_cycles": spent["compute"],
              "stall_dram_cycles": spent["dram"], "stall_glb_cycles": spent["glb"],
              "stall_imbalance_cycles": spent["imbalance"], "stall_aqu_cycles": spent["aqu"],
              "stall_fill_cycles": spent["fill"],
              **{f"busy_{p}_cycles": busy[p] for p in ("loader", "distributor", "aqu", "writer")}}
    return ReferenceOp(timing, {name: builder.counts.get(name, 0) for name in action_names()},
                       _operands(op, w, a, out, arch), first_fill, tail)


def _operands(op: GemmOp, w: list, a: list, out: Any, arch: Arch) -> dict[str, Any]:
    w_fp8, w_blocks = fp8_share(w)
    a_fp8, a_blocks = fp8_share(a)
    vw = arch.pe_array.vector_width
    return {"weight_bits": footprint_bits(w, arch, op) if op.static_weight else 0,
            "weight_elements": w_blocks * vw if op.static_weight else 0,
            "kv_cache_bits": footprint_bits(w, arch, op) if op.kind in ("attn_qk", "attn_pv") and not op.static_weight
            else 0,
            "weight_fp8_fraction": w_fp8 / w_blocks, "act_fp8_fraction": a_fp8 / a_blocks,
            "output_blocks": out.blocks, "output_fp8_blocks": out.fp8_blocks}


def operand_columns(trace: Trace, op: GemmOp, arch: Arch) -> dict[str, Any]:
    """The operand columns of ``op`` as a whole (those :class:`ReferenceOp` holds), without simulating it: a causal
    op's row takes its weight and FP8-fraction columns from them."""
    return _operands(op, stored_map(op.weight_map, arch, op.weight_format), stored_map(op.act_map, arch, op.act_format),
                     output_of(trace, op, arch), arch)
