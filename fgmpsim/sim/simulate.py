"""``simulate(trace, arch)``: the one entry point of the simulator (CLI, sweeps, notebooks and tests call it).

Engines (same interface, same rows):

* ``"tile"`` (default): exact per-tile costs vectorized with numpy (:mod:`~fgmpsim.sim.hw.traffic`,
  :mod:`~fgmpsim.sim.schedule`), ops sequenced on the SimPy hardware model (:mod:`~fgmpsim.sim.engines.tile`);
* ``"event"``: the same tiles run through SimPy block processes, one event per transfer and tile compute
  (:mod:`~fgmpsim.sim.engines.event`), equal to ``"tile"`` in every column but ``simpy_events``; at most
  ``max_event_steps`` tile steps per trace;
* ``"reference"``: the per-cycle engine (:mod:`~fgmpsim.sim.engines.reference`), written from the spec with no
  code of the tile engine (it gets only the mapper's decision), tiny GEMMs only, equal to ``"tile"`` cycle for
  cycle and count for count;
* ``"analytic"``: the lower bound of :mod:`~fgmpsim.sim.engines.analytic` as the op's cycles (counts are exact), the gap
  between the bound and the compute bound charged to whichever of DRAM or GLB binds.

On a ``systolic_ws`` array (:mod:`~fgmpsim.sim.hw.systolic`) the op is costed by its folds: ``"tile"`` and
``"analytic"`` give the same rows (the fold model is closed-form; its cycles are checked against SCALE-Sim's, not
against a per-cycle engine), ``"event"`` and ``"reference"`` are refused. It runs traces of any block size.

Ops whose maps are the same objects with the same shape and output format reuse one simulation, except on the
event engine, which processes every op's events, and the reference engine, which runs every op on its own.
``simpy_events``: the events the SimPy environment processed for the op (tile: op level, event: tile-step level,
reference and analytic: 0).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np

from fgmpsim.arch.record import PRECISION_PAIRS, Arch
from fgmpsim.energy import ACTIONS, area_breakdown, price, weight_footprint_bits
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim.engines.analytic import Bound, bound_timing, op_bound
from fgmpsim.sim.engines.tile import OpSpan, run_ops
from fgmpsim.sim.engines.event import MAX_STEPS, check_steps, event_op
from fgmpsim.sim.limits import MAX_TILES, check_tiles
from fgmpsim.sim.mapping import Mapping, Tiling, plan_op
from fgmpsim.sim.hw.operands import OperandCache, Operands, precision_adjustment
from fgmpsim.sim.hw.systolic import systolic_op
from fgmpsim.sim.engines.reference import Decision, check_size, reference_op
from fgmpsim.sim.result import RunResult
from fgmpsim.sim.schedule import OpTiming, time_op
from fgmpsim.sim.hw.traffic import op_tiles
from fgmpsim.trace.record import GemmOp, Trace

ENGINES = ("tile", "event", "reference", "analytic")


def _check_inputs(trace: Trace, arch: Arch, engine: str, mapping: Any) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", "engine", f"use one of {', '.join(ENGINES)}")
    trace.check()
    if arch.pe_array.systolic and engine in ("event", "reference"):
        raise ConfigError(f"engine {engine!r} models the block dataflows' tile steps, not a systolic_ws array's folds "
                          "(whose cycles are checked against SCALE-Sim instead)", "engine",
                          "use engine='tile' (or 'analytic', equal on systolic_ws)")
    if trace.block_size != arch.pe_array.vector_width and not arch.pe_array.systolic:
        raise ConfigError(f"trace {trace.name!r} has {trace.block_size}-element blocks but the array's lanes are "
                          f"{arch.pe_array.vector_width} wide", "pe_array.vector_width",
                          f"set pe_array.vector_width to {trace.block_size} (--set pe_array.vector_width=...)")
    if isinstance(mapping, MappingABC):
        unknown = sorted(set(mapping) - {op.name for op in trace.ops})
        if unknown:
            raise MappingError(f"mappings given for ops not in trace {trace.name!r}: {', '.join(unknown)}",
                               "mapping", "key the mapping dict by op names of the trace")
    elif mapping is not None and not isinstance(mapping, Mapping):
        raise MappingError(f"mapping must be a Mapping or a dict of op name -> Mapping, got "
                           f"{type(mapping).__name__}", "mapping", "pass fgmpsim.sim.Mapping(...)")
    if engine == "reference":
        check_size(trace)


def _run(ops: Operands, tiling: Tiling, arch: Arch, engine: str) -> tuple[OpTiming, dict[str, int], Bound, int]:
    """Timing, action counts, bound and SimPy events (event engine only) of one op on the tile, event or analytic
    engine (a systolic_ws array: its folds)."""
    if arch.pe_array.systolic:
        return (*systolic_op(ops, tiling, arch), 0)
    tiles = op_tiles(ops, tiling, arch)
    bound = op_bound(tiles.counts, arch)
    if engine == "event":
        timing, events = event_op(tiles, arch)
        return timing, tiles.counts, bound, events
    timing = time_op(tiles, arch) if engine == "tile" else bound_timing(bound)
    return timing, tiles.counts, bound, 0


def _reference(trace: Trace, op: GemmOp, tiling: Tiling, arch: Arch) -> tuple[OpTiming, dict[str, Any]]:
    """Timing and row columns of one op on the reference engine: it gets the mapper's decision as plain numbers
    and derives its counts, cycles and operand columns itself."""
    m = tiling.mapping
    result = reference_op(trace, op, arch, Decision(m.dataflow, m.tile_m, m.tile_n, m.tile_k_blocks, m.chunk_m,
                                                    tiling.x_resident, tiling.w_resident))
    timing = OpTiming(**result.timing)
    return timing, _columns(op, tiling, timing, result.counts, op_bound(result.counts, arch), arch, result.operands)


def _operand_columns(ops: Operands, arch: Arch) -> dict[str, Any]:
    """The row columns taken from the op's datapath-adjusted maps and output format."""
    op = ops.op
    weights = ops.w if len(op.weight_map.shape) == 3 else ops.w[0]
    return {"weight_bits": weight_footprint_bits(weights, arch.storage, ops.vw) if op.static_weight else 0,
            "weight_elements": weights.size * ops.vw if op.static_weight else 0,
            "weight_fp8_fraction": ops.w_fp8_blocks / ops.w.size, "act_fp8_fraction": ops.a_fp8_blocks / ops.a.size,
            "output_blocks": ops.out.blocks, "output_fp8_blocks": ops.out.fp8_blocks}


def _level_bytes(counts: dict[str, int], levels: tuple[str, ...]) -> float:
    return sum(counts[f"{level}_{d}_{kind}bits"] for level in levels for d in ("read", "write")
               for kind in ("", "metadata_")) / 8


def _columns(op: GemmOp, tiling: Tiling, timing: OpTiming, counts: dict[str, int], bound: Bound, arch: Arch,
             operands: dict[str, Any]) -> dict[str, Any]:
    """The row of one op, less its identity (op, layer, kind) and its place on the timeline; ``operands``: the
    columns of :func:`_operand_columns`."""
    m = tiling.mapping
    macs = sum(counts[f"macs_{pair}"] for pair in PRECISION_PAIRS)
    energy = price(counts, arch.energy).as_dict()
    total_pj = energy.pop("energy_total_pj")
    return {
        "M": op.m, "K": op.k, "N": op.n, "repeat": op.repeat, "static_weight": op.static_weight,
        "dataflow": m.dataflow, "tile_m": m.tile_m, "tile_n": m.tile_n, "tile_k_blocks": m.tile_k_blocks,
        "chunk_m": m.chunk_m or 0, "x_resident": tiling.x_resident, "w_resident": tiling.w_resident,
        "tiles": tiling.tiles, **{f.name: getattr(timing, f.name) for f in fields(timing)},
        "start_cycle": 0, "end_cycle": 0, "simpy_events": 0, "bound_cycles": bound.cycles, "macs": macs,
        "useful_macs": op.macs, **{action: counts[action] for action in ACTIONS},
        "dram_bytes": _level_bytes(counts, ("dram",)), "glb_bytes": _level_bytes(counts, ("glb",)),
        "pe_buffer_bytes": _level_bytes(counts, ("weight_buffer", "input_buffer", "accum_buffer")),
        "energy_pj": total_pj, **energy, "pj_per_mac": total_pj / macs, **operands,
    }


def simulate(trace: Trace, arch: Arch, *, engine: str = "tile",
             mapping: Mapping | MappingABC[str, Mapping] | None = None, max_event_steps: int = MAX_STEPS,
             max_tiles: int = MAX_TILES, on_op: Callable[[], None] | None = None) -> RunResult:
    """Simulate every op of ``trace`` on ``arch``. ``mapping``: one :class:`Mapping` for every op, a dict of op
    name -> :class:`Mapping` (other ops use the mapper), or ``None`` (the mapper, honouring ``arch.mapping``).
    ``max_event_steps``: the most tile steps (all ops) the event engine takes on; ``max_tiles``: the most tiles (all
    ops) any engine takes on (:mod:`~fgmpsim.sim.limits`, which also refuses too large ops and int64 overflow).
    ``on_op``: called once after each op is costed (a progress bar's advance).
    Raises :class:`~fgmpsim.errors.MappingError` for impossible mappings (naming the field),
    :class:`~fgmpsim.errors.ConfigError` for an unknown engine, a block-size mismatch or a trace too large for the
    event engine."""
    _check_inputs(trace, arch, engine, mapping)
    if arch.pe_array.systolic:  # its blocks are the trace's
        arch = replace(arch, pe_array=replace(arch.pe_array, vector_width=trace.block_size))
    tilings = [plan_op(arch, op, mapping.get(op.name) if isinstance(mapping, MappingABC) else mapping)
               for op in trace.ops]
    check_tiles(trace, arch, tilings, max_tiles)
    if engine == "event":
        check_steps(tilings, max_event_steps)
    cache = OperandCache(trace, arch)
    memo: dict[tuple, tuple[OpTiming, dict[str, Any], int]] = {}  # scalars only: maps are never all held at once
    rows, mappings, timings, events = [], [], [], []
    for op, tiling in zip(trace.ops, tilings):
        if engine == "reference":  # every op on its own, from the trace and the decision only
            timing, columns = _reference(trace, op, tiling, arch)
            simpy_events = 0
        else:
            out = cache.output_format(op)
            key = (id(op.weight_map), id(op.act_map), op.m, op.k, op.n, op.repeat, op.static_weight, out, tiling)
            if engine == "event" or key not in memo:  # the event engine processes every op's events
                ops = cache.operands(op, out)
                timing, counts, bound, simpy_events = _run(ops, tiling, arch, engine)
                memo[key] = (timing, _columns(op, tiling, timing, counts, bound, arch, _operand_columns(ops, arch)),
                             simpy_events)
            timing, columns, simpy_events = memo[key]
        rows.append({"op": op.name, "layer": int(op.layer), "kind": op.kind, **columns})
        mappings.append((op.name, tiling.mapping))
        timings.append(timing)
        events.append(simpy_events)
        if on_op is not None:
            on_op()
    if engine == "tile":
        spans = run_ops(timings)
    else:
        ends = np.cumsum([t.cycles for t in timings])
        spans = [OpSpan(int(end - t.cycles), int(end), n) for t, end, n in zip(timings, ends, events)]
    for row, span in zip(rows, spans):
        row["start_cycle"], row["end_cycle"], row["simpy_events"] = span.start, span.end, span.simpy_events
    return RunResult(arch=arch.name, trace=trace.name, engine=engine, clock_hz=arch.clock_hz,
                     peak_macs_per_cycle=arch.peak_macs_per_cycle, precision_adjustment=precision_adjustment(arch),
                     mappings=tuple(mappings), rows=tuple(rows),
                     area=tuple(asdict(area_breakdown(arch)).items()) if arch.area is not None else ())
