"""``simulate(trace, arch)``: the one entry point of the simulator (CLI, sweeps, notebooks and tests call it).

Engines (same interface, same rows):

* ``"tile"`` (default): exact per-tile costs vectorized with numpy (:mod:`~fgmpsim.sim.hw.traffic`,
  :mod:`~fgmpsim.sim.schedule`), ops sequenced on the SimPy hardware model (:mod:`~fgmpsim.sim.engines.tile`);
* ``"event"``: the same tiles run through SimPy block processes, one event per transfer and tile compute
  (:mod:`~fgmpsim.sim.engines.event`), equal to ``"tile"`` in every column but ``simpy_events``; at most
  ``max_event_steps`` tile steps per trace;
* ``"reference"``: the per-cycle engine (:mod:`~fgmpsim.sim.engines.reference`), tiny GEMMs only, equal to ``"tile"``
  cycle for cycle and count for count;
* ``"analytic"``: the lower bound of :mod:`~fgmpsim.sim.engines.analytic` as the op's cycles (counts are exact), the gap
  between the bound and the compute bound charged to whichever of DRAM or GLB binds.

Ops whose maps are the same objects with the same shape and output format reuse one simulation, except on the
event engine, which processes every op's events. ``simpy_events``: the events the SimPy environment processed for
the op (tile: op level, event: tile-step level, reference and analytic: 0).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from fgmpsim.arch.record import PRECISION_PAIRS, Arch
from fgmpsim.energy import area_breakdown, price, weight_footprint_bits
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim.engines.analytic import Bound, op_bound
from fgmpsim.sim.engines.tile import OpSpan, run_ops
from fgmpsim.sim.engines.event import MAX_STEPS, check_steps, event_op
from fgmpsim.sim.limits import MAX_TILES, check_tiles
from fgmpsim.sim.mapping import Mapping, Tiling, plan_op
from fgmpsim.sim.hw.operands import OperandCache, Operands, precision_adjustment
from fgmpsim.sim.engines.reference import check_size, reference_op
from fgmpsim.sim.result import RunResult
from fgmpsim.sim.schedule import OpTiming, time_op
from fgmpsim.sim.hw.traffic import op_tiles
from fgmpsim.trace.record import Trace

ENGINES = ("tile", "event", "reference", "analytic")


def _check_inputs(trace: Trace, arch: Arch, engine: str, mapping: Any) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", "engine", f"use one of {', '.join(ENGINES)}")
    trace.check()
    if trace.block_size != arch.pe_array.vector_width:
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
        pe = arch.pe_array
        for field, value, off in (("weight_collector_blocks", pe.weight_collector_blocks, 0),
                                  ("psum_collector_entries", pe.psum_collector_entries, 1),
                                  ("pipeline_depth", pe.pipeline_depth, 1)):
            if value != off:
                raise ConfigError(f"the reference engine does not model pe_array.{field} yet (got {value})",
                                  f"pe_array.{field}", f"use engine='tile' or set it to {off}")
        check_size(sum(op.m * op.n * op.repeat * (op.k // trace.block_size) for op in trace.ops))


def _analytic_timing(bound: Bound) -> OpTiming:
    gap = bound.cycles - bound.compute - bound.fill
    dram_binds = bound.dram == bound.cycles
    return OpTiming(cycles=bound.cycles, compute_cycles=bound.compute, stall_dram_cycles=gap if dram_binds else 0,
                    stall_glb_cycles=0 if dram_binds else gap, stall_imbalance_cycles=0, stall_aqu_cycles=0,
                    stall_fill_cycles=bound.fill,
                    busy_loader_cycles=0, busy_distributor_cycles=0, busy_aqu_cycles=0, busy_writer_cycles=0)


def _run(ops: Operands, tiling: Tiling, arch: Arch, engine: str) -> tuple[OpTiming, dict[str, int], Bound, int]:
    """Timing, action counts, bound and SimPy events (event engine only) of one op."""
    if engine == "reference":
        timing, counts = reference_op(ops, tiling, arch)
        return timing, counts, op_bound(counts, arch, tiling.tiles), 0
    tiles = op_tiles(ops, tiling, arch)
    bound = op_bound(tiles.counts, arch, tiling.tiles)
    if engine == "event":
        timing, events = event_op(tiles, arch)
        return timing, tiles.counts, bound, events
    timing = time_op(tiles, arch) if engine == "tile" else _analytic_timing(bound)
    return timing, tiles.counts, bound, 0


def _level_bytes(counts: dict[str, int], levels: tuple[str, ...]) -> float:
    return sum(counts[f"{level}_{d}_{kind}bits"] for level in levels for d in ("read", "write")
               for kind in ("", "metadata_")) / 8


def _columns(ops: Operands, tiling: Tiling, timing: OpTiming, counts: dict[str, int], bound: Bound,
             arch: Arch) -> dict[str, Any]:
    """The row of one op, less its identity (op, layer, kind) and its place on the timeline."""
    op, m = ops.op, tiling.mapping
    macs = sum(counts[f"macs_{pair}"] for pair in PRECISION_PAIRS)
    energy = price(counts, arch.energy).as_dict()
    total_pj = energy.pop("energy_total_pj")
    weights = ops.w if len(op.weight_map.shape) == 3 else ops.w[0]
    return {
        "M": op.m, "K": op.k, "N": op.n, "repeat": op.repeat, "static_weight": op.static_weight,
        "dataflow": m.dataflow, "tile_m": m.tile_m, "tile_n": m.tile_n, "tile_k_blocks": m.tile_k_blocks,
        "chunk_m": m.chunk_m or 0, "x_resident": tiling.x_resident, "w_resident": tiling.w_resident,
        "tiles": tiling.tiles, **{f.name: getattr(timing, f.name) for f in fields(timing)},
        "start_cycle": 0, "end_cycle": 0, "simpy_events": 0, "bound_cycles": bound.cycles, "macs": macs, **counts,
        "dram_bytes": _level_bytes(counts, ("dram",)), "glb_bytes": _level_bytes(counts, ("glb",)),
        "pe_buffer_bytes": _level_bytes(counts, ("weight_buffer", "input_buffer", "accum_buffer")),
        "energy_pj": total_pj, **energy, "pj_per_mac": total_pj / macs,
        "weight_bits": weight_footprint_bits(weights, arch.storage, ops.vw) if op.static_weight else 0,
        "weight_elements": weights.size * ops.vw if op.static_weight else 0,
        "weight_fp8_fraction": ops.w_fp8_blocks / ops.w.size, "act_fp8_fraction": ops.a_fp8_blocks / ops.a.size,
        "output_blocks": ops.out.blocks, "output_fp8_blocks": ops.out.fp8_blocks,
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
    tilings = [plan_op(arch, op, mapping.get(op.name) if isinstance(mapping, MappingABC) else mapping)
               for op in trace.ops]
    check_tiles(trace, arch, tilings, max_tiles)
    if engine == "event":
        check_steps(tilings, max_event_steps)
    cache = OperandCache(trace, arch)
    memo: dict[tuple, tuple[OpTiming, dict[str, Any], int]] = {}  # scalars only: maps are never all held at once
    rows, mappings, timings, events = [], [], [], []
    for op, tiling in zip(trace.ops, tilings):
        out = cache.output_format(op)
        key = (id(op.weight_map), id(op.act_map), op.m, op.k, op.n, op.repeat, op.static_weight, out, tiling)
        if engine == "event" or key not in memo:  # the event engine processes every op's events
            ops = cache.operands(op, out)
            timing, counts, bound, simpy_events = _run(ops, tiling, arch, engine)
            memo[key] = timing, _columns(ops, tiling, timing, counts, bound, arch), simpy_events
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
