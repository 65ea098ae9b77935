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

Ops whose maps are the same objects with the same shape, output format and GLB residency reuse one simulation,
within a run and across runs on archs with the same cost fields (:mod:`~fgmpsim.sim.unit_costs`: another clock,
energy table, area table or static power only re-prices), except on the event engine, which processes every op's
events, and the reference engine, which runs every op on its own. A causal op runs as query bands
(:mod:`~fgmpsim.sim.hw.causal`), each mapped and costed as a dense op, its row their sum; with
``memory.glb.keep_outputs`` the GLB planner (:mod:`~fgmpsim.sim.hw.glb_residency`) decides which outputs skip
their DRAM round trip. With ``memory.prefetch_next_weights`` every unit of the timeline (an op, or a
causal op's band) gets its link to the one before (:mod:`~fgmpsim.sim.hw.prefetch`): the tile and analytic engines
cost a unit on its own and apply the link afterwards (:mod:`~fgmpsim.sim.edges`), the event and reference engines
run it with the link. The DRAM footprint goes into the summary (:mod:`~fgmpsim.sim.hw.dram`).
``simpy_events``: the events the SimPy environment processed for the op (tile: op level, event: tile-step level,
reference and analytic: 0).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from typing import Any

import numpy as np

from fgmpsim.arch.record import CAST_FP8, PRECISION_PAIRS, Arch
from fgmpsim.energy import ACTIONS, area_breakdown, block_bits, operand_footprint_bits, price
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim.engines.analytic import Bound, bound_timing, op_bound
from fgmpsim.sim.engines.tile import OpSpan, run_ops
from fgmpsim.sim.engines.event import MAX_STEPS, check_steps, event_op
from fgmpsim.sim.limits import MAX_TILES, check_tiles
from fgmpsim.sim.mapping import Mapping, Tiling, plan_op
from fgmpsim.sim.hw.layout import align_blocks
from fgmpsim.sim.hw.operands import (OperandCache, Operands, OutputFormat, check_formats, operand_storage,
                                     precision_adjustment, route_of)
from fgmpsim.sim.hw.systolic import systolic_op
from fgmpsim.sim.engines.reference import Decision, check_size, operand_columns, reference_bands, reference_op
from fgmpsim.sim.hw.dram import KV_KINDS, dram_footprint
from fgmpsim.sim.hw.glb_residency import NONE, Residency, plan_residency
from fgmpsim.sim.hw.causal import DEFAULT as DEFAULT_ATTENTION
from fgmpsim.sim.hw.causal import BAND_ROWS, MODES, CausalBands, merge_columns, merge_timings
from fgmpsim.sim.hw.prefetch import NO_LINK, Link, Sequencer, Unit
from fgmpsim.sim.edges import Edges, first_weight_fill, hide, op_edges
from fgmpsim.sim.result import RunResult
from fgmpsim.sim.schedule import OpTiming, time_op
from fgmpsim.sim.hw.traffic import op_tiles
from fgmpsim.sim.unit_costs import UnitCosts
from fgmpsim.trace.record import GemmOp, Trace

ENGINES = ("tile", "event", "reference", "analytic")


def _check_inputs(trace: Trace, arch: Arch, engine: str, mapping: Any, attention: str, band_rows: Any) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", "engine", f"use one of {', '.join(ENGINES)}")
    if attention not in MODES:
        raise ConfigError(f"unknown attention mode {attention!r}", "attention", f"use one of {', '.join(MODES)}")
    if isinstance(band_rows, bool) or not isinstance(band_rows, (int, np.integer)) or band_rows < 1:
        raise ConfigError(f"causal_band_rows must be a positive integer, got {band_rows!r}", "causal_band_rows",
                          f"use e.g. {BAND_ROWS}")
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
    check_formats(trace, arch)
    if engine == "reference":
        check_size(trace)


@dataclass(frozen=True, eq=False)
class _Costed:
    """One unit costed on the tile, event or analytic engine: its timing (on the event engine already with its
    link, on the others without), action counts, bound without prefetch, tile count and SimPy events; with
    ``memory.prefetch_next_weights`` the cycles of its first weight fill, its tail's free DRAM-side cycles (event)
    and its edges (tile)."""

    timing: OpTiming
    counts: dict[str, int]
    bound: Bound
    tiles: int
    events: int = 0
    first_fill: int = 0
    tail: int = 0
    edges: Edges | None = None


def _run(ops: Operands, tiling: Tiling, arch: Arch, engine: str, residency: Residency = NONE,
         window: int = 0) -> _Costed:
    """One op on the tile, event or analytic engine (a systolic_ws array: its folds); ``window``: the event
    engine's free cycles before it for its first weight fill (the others apply theirs in :func:`_linked`)."""
    if arch.pe_array.systolic:
        return _Costed(*systolic_op(ops, tiling, arch), tiling.tiles)
    tiles = op_tiles(ops, tiling, arch, residency)
    bound = op_bound(tiles.counts, arch, tiling.tiles)
    first = first_weight_fill(tiles) if arch.memory.prefetch_next_weights else 0
    if engine == "event":
        timing, events, tail = event_op(tiles, arch, window)
        return _Costed(timing, tiles.counts, bound, tiling.tiles, events, first, tail)
    if engine == "analytic":
        return _Costed(bound_timing(bound), tiles.counts, bound, tiling.tiles, first_fill=first)
    edges = op_edges(tiles, arch) if arch.memory.prefetch_next_weights else None
    return _Costed(time_op(tiles, arch), tiles.counts, bound, tiling.tiles, first_fill=first,
                   tail=edges.tail if edges else 0, edges=edges)


def _dense(operands: Callable[[], Operands], tiling: Tiling, arch: Arch, engine: str, residency: Residency,
           window: int) -> tuple[_Costed, dict[str, Any]]:
    """A dense op's cost (:func:`_run`) and operand columns; ``operands()`` builds its operands (on a cache miss
    only)."""
    ops = operands()
    return _run(ops, tiling, arch, engine, residency, window), _operand_columns(ops, arch)


def _linked(costed: _Costed, link: Link, arch: Arch, engine: str) -> tuple[OpTiming, Bound]:
    """The unit's timing and bound with its link to the one before: the bound's DRAM side less the first weight
    fill; the tile engine's head step rerun with ``min(c, window)`` cycles of that fill done, the analytic engine at
    its new bound (the event engine ran with it)."""
    if not link.prefetch:
        return costed.timing, costed.bound
    bound = op_bound(costed.counts, arch, costed.tiles, costed.first_fill)
    if engine == "analytic":
        return bound_timing(bound), bound
    if engine == "tile":
        return hide(costed.timing, costed.edges.head, min(costed.first_fill, link.window)), bound
    return costed.timing, bound


def _live_bits(residency: list[Residency], outputs: list[OutputFormat]) -> list[int]:
    """Bits the GLB keeps for each op beside its tile steps (:mod:`~fgmpsim.sim.hw.glb_residency`): the previous
    op's output it is fed, its own output it keeps (data + metadata)."""
    bits = [out.data_bits + out.metadata_bits for out in outputs]
    return [(bits[i - 1] if keep.fed else 0) + (bits[i] if keep.keeps_output else 0)
            for i, keep in enumerate(residency)]


def _cast_blocks(op: GemmOp, counts: dict[str, int], arch: Arch) -> int:
    """Blocks through the FP4 -> FP8 cast units: a weight in a ``cast_fp8`` format is cast on every lane read of
    it, one per block pair; an activation on every input-buffer block read (a PE reads each input block once and
    broadcasts the cast block to its lanes)."""
    cast = 0
    if route_of(op.weight_format, arch) == CAST_FP8:
        cast += counts["block_pairs"]
    if route_of(op.act_format, arch) == CAST_FP8:
        bits = int(block_bits(True, operand_storage(op.act_format, arch), arch.pe_array.vector_width))
        cast += counts["input_buffer_read_bits"] // bits
    return cast


def _group_scales(op: GemmOp, counts: dict[str, int], arch: Arch) -> int:
    """FP32 rescales on an INT8 datapath: its lanes sum a scale group's block pairs as integers and convert,
    scale and add the group's sum to the output once, so ``ceil(block_pairs * vector_width / g)`` with ``g`` the
    shorter of the two operands' scale groups along K (one scale per row: the padded K); 0 on FP lanes."""
    if not arch.pe_array.integer:
        return 0
    vw = arch.pe_array.vector_width
    padded_k = -(-op.k // vw) * vw
    group = min(fmt.group_size or padded_k for fmt in (op.weight_format, op.act_format))
    return -(-counts["block_pairs"] * vw // group)


def _derived_counts(op: GemmOp, counts: dict[str, int], timing: OpTiming, arch: Arch) -> dict[str, int]:
    """Counts every engine's counts imply: MACs on a mixed FP4/FP8 lane (each pays its decode and mode muxes),
    blocks through alignment networks (:func:`~fgmpsim.sim.hw.layout.align_blocks`) and cast units
    (:func:`_cast_blocks`), an integer lane's group rescales (:func:`_group_scales`), and the op's cycles for
    static energy (priced 0 when ``static`` is off)."""
    mixed = set(arch.pe_array.datapath_precisions) == {"fp4", "fp8"}
    return {"macs_fgmp_extra": sum(counts[f"macs_{pair}"] for pair in PRECISION_PAIRS) if mixed else 0,
            "align_blocks": align_blocks(counts, arch), "cast_blocks": _cast_blocks(op, counts, arch),
            "int_group_scales": _group_scales(op, counts, arch),
            "leakage_cycles": timing.cycles, "clock_cycles": timing.cycles}


def _reference(trace: Trace, op: GemmOp, tiling: Tiling, arch: Arch, residency: Residency = NONE,
               link: Link = NO_LINK) -> tuple[OpTiming, dict[str, Any], int]:
    """Timing, row columns and tail free cycles of one op on the reference engine: it gets the mapper's, the GLB
    planner's and the prefetch rule's decisions as plain numbers and derives its counts, cycles and operand
    columns itself."""
    m = tiling.mapping
    result = reference_op(trace, op, arch, Decision(m.dataflow, m.tile_m, m.tile_n, m.tile_k_blocks, m.chunk_m,
                                                    tiling.x_resident, tiling.w_resident, residency.keeps_output,
                                                    residency.fed), link.window)
    timing = OpTiming(**result.timing)
    bound = op_bound(result.counts, arch, tiling.tiles, result.first_fill if link.prefetch else 0)
    return timing, _columns(op, tiling, timing, result.counts, bound, arch, result.operands), result.tail


def _operand_columns(ops: Operands, arch: Arch) -> dict[str, Any]:
    """The row columns taken from the op's datapath-adjusted maps and output format."""
    op = ops.op
    weights = ops.w if len(op.weight_map.shape) == 3 else ops.w[0]
    kv = op.kind in KV_KINDS and not op.static_weight
    dp = arch.pe_array.datapath_precisions
    return {"weight_bits": (operand_footprint_bits(weights, op.weight_format, op.k, arch.storage, ops.vw, dp)
                           if op.static_weight else 0),
            "weight_elements": weights.size * ops.vw if op.static_weight else 0,
            "kv_cache_bits": (operand_footprint_bits(ops.w, op.weight_format, op.k, arch.storage, ops.vw, dp)
                              if kv else 0),
            "weight_fp8_fraction": ops.w_fp8_blocks / ops.w.size, "act_fp8_fraction": ops.a_fp8_blocks / ops.a.size,
            "output_blocks": ops.out.blocks, "output_fp8_blocks": ops.out.fp8_blocks}


def _level_actions(*levels: str) -> tuple[str, ...]:
    """The actions counting the bits read from and written to ``levels`` (data and metadata)."""
    return tuple(f"{level}_{d}_{kind}bits" for level in levels for d in ("read", "write") for kind in ("", "metadata_"))


_LEVEL_BYTES = {"dram_bytes": _level_actions("dram"), "glb_bytes": _level_actions("glb"),
                "pe_buffer_bytes": _level_actions("weight_buffer", "input_buffer", "accum_buffer")}
"""Row columns of bytes moved per memory level, and the actions that count them."""
_TIMING = tuple(f.name for f in fields(OpTiming))


def _columns(op: GemmOp, tiling: Tiling, timing: OpTiming, counts: dict[str, int], bound: Bound, arch: Arch,
             operands: dict[str, Any]) -> dict[str, Any]:
    """The row of one op, less its identity (op, layer, kind) and its place on the timeline; ``operands``: the
    columns of :func:`_operand_columns`."""
    m = tiling.mapping
    counts = {**counts, **_derived_counts(op, counts, timing, arch)}
    macs = sum(counts[f"macs_{pair}"] for pair in PRECISION_PAIRS)
    energy = price(counts, arch.energy).as_dict()
    total_pj = energy.pop("energy_total_pj")
    return {
        "M": op.m, "K": op.k, "N": op.n, "repeat": op.repeat, "static_weight": op.static_weight,
        "dataflow": m.dataflow, "tile_m": m.tile_m, "tile_n": m.tile_n, "tile_k_blocks": m.tile_k_blocks,
        "chunk_m": m.chunk_m or 0, "x_resident": tiling.x_resident, "w_resident": tiling.w_resident,
        "tiles": tiling.tiles, **{name: getattr(timing, name) for name in _TIMING},
        "start_cycle": 0, "end_cycle": 0, "simpy_events": 0, "bound_cycles": bound.cycles, "macs": macs,
        "useful_macs": op.macs, **{action: counts[action] for action in ACTIONS},
        **{column: sum(counts[action] for action in actions) / 8 for column, actions in _LEVEL_BYTES.items()},
        "energy_pj": total_pj, **energy, "pj_per_mac": total_pj / macs, **operands, "causal_bands": 0,
    }


def _causal(trace: Trace, op: GemmOp, arch: Arch, engine: str, mapping: Mapping | None, bands: CausalBands,
            cache: OperandCache, chain: Sequencer, costs: UnitCosts) -> tuple[OpTiming, dict[str, Any], Tiling, int]:
    """Timing, row columns, last band's tiling and SimPy events of causal op ``op``: its bands (:mod:`.hw.causal`;
    the reference engine builds its own), each mapped and run as a dense op (a unit of ``chain``), merged. A band's
    operand columns are its op's but for its output blocks (:func:`~fgmpsim.sim.hw.causal.merge_columns` sums
    those); ``costs``: the run's :class:`~fgmpsim.sim.unit_costs.UnitCosts`."""
    if engine == "reference":
        parts = reference_bands(trace, op, bands.band_rows)
        whole = operand_columns(trace, op, arch)
    else:
        ops = cache.operands(op)
        parts = [(band.op, band) for band in bands.of(op, ops)]
        whole = _operand_columns(ops, arch)
    timings, columns, events = [], [], 0
    for band, given in parts:  # given: the band's scope trace (reference engine) or its operands
        tiling = plan_op(arch, band, mapping)
        unit = Unit(band, tiling)
        link = chain.link(unit)
        if engine == "reference":
            timing, band_columns, tail = _reference(given, band, tiling, arch, link=link)
        else:
            costed = costs.get(band, given.source, given.out, tiling, NONE,
                               partial(_run, given, tiling, arch, engine, NONE, link.window))
            timing, bound = _linked(costed, link, arch, engine)
            band_columns = _columns(band, tiling, timing, costed.counts, bound, arch,
                                    {**whole, "output_blocks": given.out.blocks,
                                     "output_fp8_blocks": given.out.fp8_blocks})
            events, tail = events + costed.events, costed.tail
        chain.ran(unit, tail)
        timings.append(timing)
        columns.append(band_columns)
    return merge_timings(timings), merge_columns(op, columns, whole), tiling, events


def simulate(trace: Trace, arch: Arch, *, engine: str = "tile",
             mapping: Mapping | MappingABC[str, Mapping] | None = None, max_event_steps: int = MAX_STEPS,
             max_tiles: int = MAX_TILES, on_op: Callable[[], None] | None = None,
             attention: str = DEFAULT_ATTENTION, causal_band_rows: int = BAND_ROWS) -> RunResult:
    """Simulate every op of ``trace`` on ``arch``. ``mapping``: one :class:`Mapping` for every op, a dict of op
    name -> :class:`Mapping` (other ops use the mapper), or ``None`` (the mapper, honouring ``arch.mapping``).
    ``max_event_steps``: the most tile steps (all ops) the event engine takes on; ``max_tiles``: the most tiles (all
    ops) any engine takes on (:mod:`~fgmpsim.sim.limits`, which also refuses too large ops and int64 overflow).
    ``on_op``: called once after each op is costed (a progress bar's advance).
    ``attention``: ``"causal"`` runs a causal op (``GemmOp.causal``) as query bands that skip the masked keys
    (:mod:`~fgmpsim.sim.hw.causal`; its row has ``causal_bands`` > 0 and the last band's mapping), ``"dense"``
    counts every op as the full product; ``causal_band_rows``: query rows per band (default
    :data:`~fgmpsim.sim.hw.causal.BAND_ROWS`).
    Raises :class:`~fgmpsim.errors.MappingError` for impossible mappings (naming the field),
    :class:`~fgmpsim.errors.ConfigError` for an unknown engine, a block-size mismatch or a trace too large for the
    event engine."""
    _check_inputs(trace, arch, engine, mapping, attention, causal_band_rows)
    if arch.pe_array.systolic:  # its blocks are the trace's
        arch = replace(arch, pe_array=replace(arch.pe_array, vector_width=trace.block_size))
    chosen = [mapping.get(op.name) if isinstance(mapping, MappingABC) else mapping for op in trace.ops]
    tilings = [plan_op(arch, op, given) for op, given in zip(trace.ops, chosen)]
    check_tiles(trace, arch, tilings, max_tiles)
    if engine == "event":
        check_steps(tilings, max_event_steps)
    cache = OperandCache(trace, arch)
    banded = [op.causal and attention == "causal" for op in trace.ops]
    residency = plan_residency(trace.ops, tilings, [cache.output_format(op) for op in trace.ops], arch, banded) \
        if arch.memory.glb.keep_outputs else [NONE] * len(trace.ops)
    costs = UnitCosts(arch, engine)
    rows_memo: dict[tuple, tuple[_Costed, dict[str, Any]]] = {}
    bands = CausalBands(trace, cache, int(causal_band_rows))
    chain = Sequencer(arch)
    live = (_live_bits(residency, [cache.output_format(op) for op in trace.ops]) if arch.memory.prefetch_next_weights
            else [0] * len(trace.ops))
    rows, mappings, timings, events = [], [], [], []
    for op, tiling, given, band, keep, held in zip(trace.ops, tilings, chosen, banded, residency, live):
        if band:
            timing, columns, tiling, simpy_events = _causal(trace, op, arch, engine, given, bands, cache, chain, costs)
        else:
            unit = Unit(op, tiling, keep.fed, held)
            link = chain.link(unit)
            if engine == "reference":  # every op on its own, from the trace and the decisions only
                timing, columns, tail = _reference(trace, op, tiling, arch, keep, link)
                simpy_events = 0
            else:
                out = cache.output_format(op)
                costed, operands = costs.get(op, (op.weight_map, op.act_map), out, tiling, keep,
                                             partial(_dense, partial(cache.operands, op, out), tiling, arch, engine,
                                                     keep, link.window))
                timing, bound = _linked(costed, link, arch, engine)
                key = (id(costed), timing, bound)
                if key not in rows_memo:  # ops of one cost and timing share their row (costed held: its id stays)
                    rows_memo[key] = costed, _columns(op, tiling, timing, costed.counts, bound, arch, operands)
                columns, simpy_events, tail = rows_memo[key][1], costed.events, costed.tail
            chain.ran(unit, tail)
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
                     mappings=tuple(mappings), rows=tuple(rows), attention=attention,
                     causal_band_rows=int(causal_band_rows),
                     dram=tuple(dram_footprint(rows, trace, arch).items()),
                     area=tuple(asdict(area_breakdown(arch)).items()) if arch.area is not None else ())
