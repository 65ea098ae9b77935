"""Data movement of one op: what moves between DRAM, the GLB and the PE buffers for every tile, how many cycles
each transfer takes, and the op's action counts.

Block bits come from :func:`fgmpsim.energy.block_bits` (values + block scale) at each operand's widths
(``Operands.w_storage``/``a_storage``: the arch's, or a uniform format's); every block also moves its
``metadata_bits_per_block``, counted separately (``*_metadata_bits``) but taking bandwidth. Partial sums are
``psum_bits`` each; outputs follow :class:`fgmpsim.sim.hw.operands.OutputFormat`. WS = weight stationary, OS = output
stationary; a tile has ``rows x cols`` outputs.

* **DRAM -> GLB fills**: the weight tile when first needed (WS: first m-tile of each chunk; OS: first m-tile, or
  every tile when W is not GLB-resident) and the X tile when first needed (n-tile 0 of its rows, or every tile
  when X is not resident). Cycles ``ceil(bits / min(dram.read, glb.write))``.
* **GLB -> PE fills**: the weight tile (WS: with its DRAM fill, each block to the PE of its channel; OS: every
  tile, multicast to every active PE), the X tile (WS: every tile, multicast to every active PE; OS: every tile,
  row ``m`` to PE ``m``), and (WS, chunks of more than one m-tile) the tile's partial sums before every k-tile but
  the first. Cycles ``max(ceil(GLB bits / glb.read), ceil(bits into the fullest PE / buffer.write))``.
* **compute**: a lane reads its weight block for every block pair (``rows`` reads of each weight block of the
  tile), or, with a weight collector, as :mod:`fgmpsim.sim.hw.collectors` rules (which also counts the collectors'
  register-file accesses); a PE reads each input block once and broadcasts it to its lanes (a per-lane FIFO absorbs
  their skew); each lane read-modify-writes each output's partial sum once per tile (no read on k-tile 0).
* **drain** (accumulation buffer -> GLB): WS partial sums after every k-tile but the last (chunks of more than one
  m-tile); the outputs after the last k-tile, through the AQU when it quantizes the op. Cycles
  ``max(ceil(GLB bits / glb.write), ceil(partial-sum bits out of the fullest PE / accum.read))``; beside it the
  AQU takes ``latency + ceil(rows * cols / (blocks_per_cycle * vector_width))``.
* **write-back** (GLB -> DRAM): the outputs of the last k-tile, ``ceil(bits / min(glb.read, dram.write))``.
* **GLB-resident outputs** (:mod:`fgmpsim.sim.hw.glb_residency`): an op that keeps its output has no write-back;
  an op fed from the GLB has no DRAM -> GLB fill of that operand (its fill flag is 0 on every tile).

An op's output bits ``B`` are spread over its output tiles in proportion to their outputs: the tile that brings the
running output count to ``e`` (of ``E``) gets ``floor(B * e / E)`` minus what the tiles before it got.

Vectorization: per-tile quantities are factors over the tile grid (:mod:`fgmpsim.sim.vector.grid`), so the action counts
are sums of factor products; per-tile cycles are :class:`~fgmpsim.sim.vector.grid.Term` s on the boxes of the grid where
the transfer happens (output bits, spread tile by tile, only over the last k-tile), added into the schedule's step
buffers without a per-tile array per kind; :meth:`OpTiles.flat` materializes one kind for the event engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fgmpsim.arch.record import Arch, BlockStorage
from fgmpsim.energy import level_bits
from fgmpsim.precision import mac_counts
from fgmpsim.sim.vector.grid import Grid, Mask, Term, crop
from fgmpsim.sim.vector.map_counts import MapCounts, mode_pairs, op_counts, tile_sizes, tile_starts
from fgmpsim.sim.mapping import Tiling
from fgmpsim.sim.hw.collectors import collector_counts
from fgmpsim.sim.hw.operands import Operands, OutputFormat
from fgmpsim.sim.hw.glb_residency import NONE, Residency
from fgmpsim.sim.hw.lanes import lane_work


def ceil_div(a: np.ndarray | int, b: int) -> np.ndarray | int:
    """``ceil(a / b)`` for non-negative integers."""
    return -(-a // b)


KINDS = ("compute", "dram_w", "dram_x", "pe_w", "pe_x", "pe_psum", "drain_glb", "drain_aqu", "writeback")
"""Per-tile cycle quantities of an op: the slowest lane's compute, then every transfer kind of
:func:`fgmpsim.sim.schedule.placements`: DRAM -> GLB weight / X tile, GLB -> weight / input / accumulation buffers
(partial-sum refill), accumulation buffers -> GLB (partial sums or outputs) and its AQU part, GLB -> DRAM outputs."""


@dataclass(frozen=True, eq=False)
class OpTiles:
    """One op's tiles: per-tile cycles of every :data:`KINDS` entry as :class:`~fgmpsim.sim.vector.grid.Term` s over the
    tile grid (a kind is the sum of its terms), the sum over tiles of ``ceil(total lane work / active lanes)``
    (``ideal_cycles``) and the op's action counts (``fgmpsim.energy.ACTIONS`` names)."""

    grid: Grid
    terms: dict[str, tuple[Term, ...]]
    ideal_cycles: int
    counts: dict[str, int]

    @property
    def tiles(self) -> int:
        return self.grid.tiles

    def add(self, buffer: np.ndarray, start: int, kind: str) -> None:
        """Add the cycles of ``kind`` of tile ``j`` to ``buffer[start + j]`` for every tile, in place."""
        for term in self.terms[kind]:
            self.grid.add(buffer, start, term)

    def total(self, kind: str) -> int:
        """Cycles of ``kind`` summed over the op's tiles."""
        return sum(self.grid.term_total(term) for term in self.terms[kind])

    def peak(self, kind: str) -> int:
        """An upper bound on the cycles of ``kind`` of any one tile (the sum of its terms' maxima)."""
        return sum(int(term.value.max(initial=0)) for term in self.terms[kind])

    def flat(self, kind: str) -> np.ndarray:
        """Cycles of ``kind`` per tile, int64, in execution order."""
        out = np.zeros(self.tiles, dtype=np.int64)
        self.add(out, 0, kind)
        return out


def _bits(fp8: np.ndarray, blocks: np.ndarray, arch: Arch, level: str, storage: BlockStorage) -> np.ndarray:
    """Data bits (values + scales) of ``blocks`` blocks of which ``fp8`` are FP8 at ``storage``'s widths (the
    operand's, :class:`~fgmpsim.sim.hw.operands.Operands`), as stored at ``level`` (``dram``, ``glb`` or ``pe``: its
    ``storage.layout``, :func:`fgmpsim.energy.level_bits`)."""
    layout = arch.storage.layout.at(level)
    bits = level_bits(fp8, blocks, storage, arch.pe_array.vector_width, layout, arch.pe_array.datapath_precisions)
    if layout == "packed":  # a sum of fp8 and blocks terms: already their broadcast shape
        return bits
    return np.broadcast_to(bits, np.broadcast_shapes(np.shape(fp8), np.shape(blocks)))  # slotted: map-independent


def spread(totals: tuple[int, ...], cum: np.ndarray) -> np.ndarray:
    """Split each of ``totals`` (bits) over tiles in proportion to their elements, given as the running count
    ``cum`` (``np.cumsum`` of the elements; cumulative floor: each split sums to its total), and add the splits."""
    whole = int(cum[-1]) if len(cum) else 1
    if whole >= 3_000_000_000:  # cum * r could overflow int64: exact Python integers instead
        cum = cum.astype(object)
    upto = 0
    for total in totals:
        q, r = divmod(total, whole)
        upto = upto + cum * q + (cum * r) // whole
    share = np.empty(len(upto), dtype=np.int64)  # upto's differences (np.diff with prepend is slower on small ops)
    share[:1] = upto[:1]
    np.subtract(upto[1:], upto[:-1], out=share[1:], casting="unsafe")
    return share


_ONE = np.ones((1,) * 5, dtype=np.int64)

W_WEIGHTS = ("dram", "fill", "buffer_write", "buffer_read", "collector_write", "collector_read")
"""How a weight tile's bits count (the rows of :attr:`TilePlan.w_weights`): DRAM -> GLB fills, GLB -> PE fills,
weight-buffer writes (one per copy), weight-buffer reads, weight-collector writes and reads."""
X_WEIGHTS = ("dram", "all", "fanout")
"""How an X tile's bits count (the rows of :attr:`TilePlan.x_weights`): DRAM -> GLB fills, every tile (GLB reads),
input-buffer copies."""

PLAN_CACHE_SIZE = 64
"""Tile plans kept by :func:`tile_plan` (least recently used first out). A plan holds small grid factors (at most
one value per tile of the op), so the cache stays within a few tens of MB even at Llama scale."""


@dataclass(frozen=True, eq=False)
class TilePlan:
    """What an op's tiles are and move that does not depend on its maps: the grid, factors in blocks, rows and
    flags (5-D, see :mod:`fgmpsim.sim.vector.grid`), the terms of the map-independent transfers and the map-independent
    action-count totals. ``*_blocks`` count blocks (each carries metadata); flags are bool or 0/1."""

    grid: Grid
    kblocks: np.ndarray      # blocks of each k-tile, 1-D
    rows: np.ndarray         # output rows of the tile
    cols: np.ndarray         # output columns of the tile
    last: np.ndarray         # last k-tile: outputs drain
    w_blocks: np.ndarray
    x_blocks: np.ndarray
    w_dram: Mask             # the tiles whose weight tile comes from DRAM
    w_fill: Mask             # the tiles whose weight tile is sent to the PEs
    x_dram: Mask             # the tiles whose X tile comes from DRAM
    psum_out: np.ndarray     # cycles to drain the fullest PE's partial sums
    out_cum: np.ndarray      # outputs of the last k-tile's tiles, running count in execution order (1-D int64;
                             # 0 on the padding of a short last chunk, so padding points take no output bits)
    last_k: tuple[slice, ...]  # the box of the last k-tile
    terms: dict[str, tuple[Term, ...]]
    totals: dict[str, int]
    w_weights: np.ndarray    # [W_WEIGHTS, 1, 1, nt, kt, 1]: how often each weight tile's bits count in a total
    x_weights: np.ndarray    # [X_WEIGHTS, 1, ch, 1, kt, i]: likewise for each X tile

    def weighted(self, weights: np.ndarray, names: tuple[str, ...],
                 bits: dict[str, np.ndarray]) -> dict[tuple[str, str], int]:
        """``sum over tiles of bits[level] * weights[name]`` for every (name, level), for bits factors with a
        repeat axis of 1 or ``repeat``; levels that share one factor (the same layout) are summed once."""
        sums: dict[int, list[int]] = {}
        out = {}
        for level, factor in bits.items():
            if id(factor) not in sums:
                per_name = (weights * factor[None]).reshape(len(names), -1).sum(axis=1, dtype=np.int64)
                scale = self.grid.repeat if factor.shape[0] == 1 else 1
                sums[id(factor)] = [int(total) * scale for total in per_name]
            out.update(((name, level), total) for name, total in zip(names, sums[id(factor)]))
        return out


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def tile_plan(t: Tiling, arch: Arch, fed: str | None = None) -> TilePlan:
    """The map-independent part of an op's tiles under tiling ``t`` (cached: ops of one shape share it); ``fed``:
    the operand (``"act"``/``"weight"``) already in the GLB, never filled from DRAM."""
    g = Grid.of(t)
    mp, pe, mem, aqu = t.mapping, arch.pe_array, arch.memory, arch.aqu
    meta, ps = arch.storage.metadata_bits_per_block, arch.storage.psum_bits
    tm, tn, tkb, lpp = mp.tile_m, mp.tile_n, mp.tile_k_blocks, pe.lanes_per_pe
    kt = g.index("kt")
    last = kt == t.k_tiles - 1
    rows, cols = tile_sizes(t.shape.m, tm), tile_sizes(t.shape.n, tn)
    kblocks = tile_sizes(t.shape.kb, tkb)
    w_blocks, x_blocks = g.place(cols[:, None] * kblocks, "nt kt"), g.place(rows[:, None] * kblocks, "mt kt")
    rows, cols = g.place(rows, "mt"), g.place(cols, "nt")
    x_dram = (g.index("nt") == 0) | (not t.x_resident)
    if t.ws:
        first_m = g.index("i") == 0
        spill = g.place((g.chunk_lengths > 1) & (t.k_tiles > 1), "ch")
        w_dram, w_fill, w_fanout, x_fanout = first_m, first_m, _ONE, -(-cols // lpp)
        psum_pe, spill_out, refill = rows * np.minimum(cols, lpp), spill & ~last, spill & (kt > 0)
    else:
        w_dram, w_fill, w_fanout, x_fanout = (g.index("mt") == 0) | (not t.w_resident), _ONE, rows, _ONE
        psum_pe, spill_out, refill = cols, _ONE - 1, _ONE - 1
    if fed == "act":
        x_dram = _ONE - 1
    elif fed == "weight":
        w_dram = _ONE - 1
    total = g.total
    outputs = rows * cols
    glb_r, glb_w = mem.glb.read_bits_per_cycle, mem.glb.write_bits_per_cycle
    psum_out = ceil_div(psum_pe * ps, mem.accum_buffer.read_bits_per_cycle)
    last_k = tuple(slice(0, n) for n in g.shape[:3]) + (slice(g.k_tiles - 1, g.k_tiles), slice(0, g.chunk_tiles))
    terms = {
        "pe_psum": (g.term(np.maximum(ceil_div(outputs * ps, glb_r),
                                      ceil_div(psum_pe * ps, mem.accum_buffer.write_bits_per_cycle)), refill),),
        # partial sums leave after every k-tile but the last (the outputs' drain, per op, is on the last k-tile)
        "drain_glb": (g.term(np.maximum(ceil_div(outputs * ps, glb_w), psum_out), spill_out),),
        "drain_aqu": (g.term(aqu.latency_cycles + ceil_div(outputs, aqu.blocks_per_cycle * pe.vector_width),
                             last),) if aqu.enabled else (),
    }
    cc = collector_counts(t, pe, g, rows, kblocks)
    spilled, refilled = ps * total(spill_out, rows, cols), ps * total(refill, rows, cols)
    totals = {
        "fills_meta": meta * (total(w_dram, w_blocks) + total(x_dram, x_blocks)), "spilled": spilled,
        "refilled": refilled, "inputs_meta": meta * total(x_fanout, x_blocks),
        "pe_fill_meta": meta * (total(w_fill, w_blocks) + total(x_blocks)),
        "weight_buffer_write_meta": meta * total(w_fill, w_fanout, w_blocks),
        "weight_buffer_read_meta": meta * total(cc.buffer_reads, w_blocks),
        "weight_collector_write_meta": meta * total(cc.collector_writes, w_blocks),
        "weight_collector_read_meta": meta * total(cc.collector_reads, w_blocks),
        "psum_collector": ps * total(cc.psum_accesses, cols),
        "accum_read": ps * (total(kt > 0, rows, cols) + total(last, rows, cols)) + spilled,
        "accum_write": ps * total(rows, cols) + refilled,
    }
    full = (1, *g.shape[1:])
    valid = g.valid if g.ragged else _ONE

    def per_tile(axes: tuple[int, ...], *factors: np.ndarray) -> np.ndarray:
        """The product of ``factors`` (and the tile mask) summed over ``axes`` of the grid, kept 5-D."""
        return np.broadcast_to(np.prod(np.broadcast_arrays(*factors, valid), axis=0), full).sum(
            axis=axes, keepdims=True, dtype=np.int64)

    w_axes, x_axes = (1, 4), (2,)
    w_weights = np.stack([per_tile(w_axes, w_dram), per_tile(w_axes, w_fill), per_tile(w_axes, w_fill, w_fanout),
                          per_tile(w_axes, cc.buffer_reads), per_tile(w_axes, cc.collector_writes),
                          per_tile(w_axes, cc.collector_reads)])
    x_weights = np.stack([per_tile(x_axes, x_dram), per_tile(x_axes, _ONE), per_tile(x_axes, x_fanout)])
    out_cum = np.cumsum(np.broadcast_to(outputs, (g.repeat, g.chunks, g.n_tiles, 1, g.chunk_tiles)), dtype=np.int64)
    return TilePlan(g, kblocks, rows, cols, last, w_blocks, x_blocks, g.mask(w_dram), g.mask(w_fill), g.mask(x_dram),
                    psum_out, out_cum, last_k, {kind: tuple(x for x in parts if x is not None) for kind, parts in terms.items()},
                    totals, w_weights, x_weights)


@dataclass(frozen=True)
class MapFactors:
    """The map-dependent per-tile quantities of one op as 5-D grid factors: data bits (values + scales) of the
    weight and X tiles as stored at each level (``w_bits[level]``, ``x_bits[level]`` for ``dram``, ``glb``, ``pe``:
    its ``storage.layout``), and data + metadata bits into the PE that receives the most of each."""

    w_bits: dict[str, np.ndarray]
    x_bits: dict[str, np.ndarray]
    w_pe: np.ndarray
    x_pe: np.ndarray


LEVELS = ("dram", "glb", "pe")


def map_factors(t: Tiling, plan: TilePlan, mc: MapCounts, arch: Arch, ops: Operands) -> MapFactors:
    """The map-dependent factors of an op with tiling ``t`` and map counts ``mc`` (its operands' block widths from
    ``ops``)."""
    ws, xs = ops.w_storage, ops.a_storage
    g, meta, kblocks = plan.grid, arch.storage.metadata_bits_per_block, plan.kblocks
    rows, cols = tile_sizes(t.shape.m, t.mapping.tile_m), tile_sizes(t.shape.n, t.mapping.tile_n)
    w_bits, x_bits = {}, {}
    for lv in LEVELS:  # levels with the same layout share one factor
        same = next((other for other in w_bits if arch.storage.layout.at(other) == arch.storage.layout.at(lv)), None)
        w_bits[lv] = w_bits[same] if same else g.place(_bits(mc.w_tiles, cols[:, None] * kblocks, arch, lv, ws),
                                                       "r nt kt")
        x_bits[lv] = x_bits[same] if same else g.place(_bits(mc.x_tiles, rows[:, None] * kblocks, arch, lv, xs),
                                                       "r mt kt")
    if t.ws:
        pe_blocks = mc.pe_lanes[:, None] * kblocks
        pe_bits = _bits(mc.w_pe_kt, pe_blocks, arch, "pe", ws) + pe_blocks * meta
        return MapFactors(w_bits, x_bits, g.place(np.maximum.reduceat(pe_bits, mc.pe_first, axis=1), "r nt kt"),
                          x_bits["pe"] + plan.x_blocks * meta)
    row_bits = _bits(mc.a_rows_kt, kblocks, arch, "pe", xs) + kblocks * meta
    return MapFactors(w_bits, x_bits, w_bits["pe"] + plan.w_blocks * meta,
                      g.place(np.maximum.reduceat(row_bits, tile_starts(t.shape.m, t.mapping.tile_m), axis=1),
                              "r mt kt"))


def action_counts(p: TilePlan, f: MapFactors, mc: MapCounts, ops: Operands, arch: Arch,
                  keeps_output: bool = False) -> dict[str, int]:
    """The op's action counts (names of ``fgmpsim.energy.ACTIONS``): sums of factor products over the tiles;
    ``keeps_output``: the output stays in the GLB (no write-back)."""
    out, op, tt = ops.out, ops.op, p.totals
    back_meta = 0 if keeps_output else out.metadata_bits
    vw = ops.vw

    w_sums, x_sums = p.weighted(p.w_weights, W_WEIGHTS, f.w_bits), p.weighted(p.x_weights, X_WEIGHTS, f.x_bits)

    def w(name: str, level: str) -> int:
        return w_sums[name, level]

    def x(name: str, level: str) -> int:
        return x_sums[name, level]

    inputs = x("fanout", "pe")
    pairs = mode_pairs(mc, op.n, op.m, op.repeat)
    layout = arch.storage.layout
    out_dram, out_glb = out.data_bits_at(layout.dram), out.data_bits_at(layout.glb)
    return {
        "dram_read_bits": w("dram", "dram") + x("dram", "dram"), "dram_read_metadata_bits": tt["fills_meta"],
        "dram_write_bits": 0 if keeps_output else out_dram, "dram_write_metadata_bits": back_meta,
        "glb_write_bits": w("dram", "glb") + x("dram", "glb") + tt["spilled"] + out_glb,
        "glb_write_metadata_bits": tt["fills_meta"] + out.metadata_bits,
        "glb_read_bits": w("fill", "glb") + x("all", "glb") + tt["refilled"] + (0 if keeps_output else out_glb),
        "glb_read_metadata_bits": tt["pe_fill_meta"] + back_meta,
        "weight_buffer_write_bits": w("buffer_write", "pe"),
        "weight_buffer_write_metadata_bits": tt["weight_buffer_write_meta"],
        "weight_buffer_read_bits": w("buffer_read", "pe"),
        "weight_buffer_read_metadata_bits": tt["weight_buffer_read_meta"],
        "weight_collector_write_bits": w("collector_write", "pe"),
        "weight_collector_write_metadata_bits": tt["weight_collector_write_meta"],
        "weight_collector_read_bits": w("collector_read", "pe"),
        "weight_collector_read_metadata_bits": tt["weight_collector_read_meta"],
        "psum_collector_write_bits": tt["psum_collector"], "psum_collector_read_bits": tt["psum_collector"],
        "psum_collector_write_metadata_bits": 0, "psum_collector_read_metadata_bits": 0,
        "input_buffer_write_bits": inputs, "input_buffer_write_metadata_bits": tt["inputs_meta"],
        "input_buffer_read_bits": inputs, "input_buffer_read_metadata_bits": tt["inputs_meta"],
        "accum_buffer_read_bits": tt["accum_read"], "accum_buffer_write_bits": tt["accum_write"],
        "accum_buffer_read_metadata_bits": 0, "accum_buffer_write_metadata_bits": 0,
        **mac_counts(pairs, vw, arch.pe_array.datapath_precisions),
        "block_pairs": int(pairs.sum()), "aqu_blocks": out.aqu_blocks,
        "aqu_sensitivity_read_bits": out.aqu_blocks * vw * arch.aqu.sensitivity_bits_per_channel,
    }


def _last_k_outputs(p: TilePlan, out: OutputFormat, layout: str) -> np.ndarray:
    """Output bits (data at a level with ``layout`` + metadata) of every tile of the last k-tile,
    ``[r, ch, nt, 1, i]``, spread in execution order over the outputs counted by ``p.out_cum``."""
    g = p.grid
    bits = spread((out.data_bits_at(layout), out.metadata_bits), p.out_cum)
    return bits.reshape(g.repeat, g.chunks, g.n_tiles, 1, g.chunk_tiles)


def op_tiles(ops: Operands, t: Tiling, arch: Arch, residency: Residency = NONE) -> OpTiles:
    """The per-tile cycles and the action counts of one op (see the module docstring)."""
    mc = op_counts(ops, t, arch.pe_array.lanes_per_pe, arch.pe_array.datapath_precisions)
    p = tile_plan(t, arch, residency.fed)
    f = map_factors(t, p, mc, arch, ops)
    g, mem = p.grid, arch.memory
    meta = arch.storage.metadata_bits_per_block
    layout = arch.storage.layout
    w_dram, x_dram = f.w_bits["dram"] + p.w_blocks * meta, f.x_bits["dram"] + p.x_blocks * meta
    w_glb, x_glb = f.w_bits["glb"] + p.w_blocks * meta, f.x_bits["glb"] + p.x_blocks * meta
    glb_r, glb_w, dram_r = mem.glb.read_bits_per_cycle, mem.glb.write_bits_per_cycle, mem.dram.read_bits_per_cycle
    slowest, ideal = lane_work(ops.w, ops.a, mc, t, arch, g)
    out_glb = _last_k_outputs(p, ops.out, layout.glb)
    out_dram = out_glb if layout.dram == layout.glb else _last_k_outputs(p, ops.out, layout.dram)
    terms = {
        "compute": (g.term(slowest),),
        "dram_w": (g.term(np.maximum(ceil_div(w_dram, dram_r), ceil_div(w_glb, glb_w)), p.w_dram),),
        "dram_x": (g.term(np.maximum(ceil_div(x_dram, dram_r), ceil_div(x_glb, glb_w)), p.x_dram),),
        "pe_w": (g.term(np.maximum(ceil_div(w_glb, glb_r), ceil_div(f.w_pe, mem.weight_buffer.write_bits_per_cycle)),
                        p.w_fill),),
        "pe_x": (g.term(np.maximum(ceil_div(x_glb, glb_r), ceil_div(f.x_pe, mem.input_buffer.write_bits_per_cycle))),),
        "pe_psum": p.terms["pe_psum"],
        "drain_glb": (*p.terms["drain_glb"],
                      Term(p.last_k, np.maximum(ceil_div(out_glb, glb_w), crop(p.psum_out, p.last_k)))),
        "drain_aqu": p.terms["drain_aqu"] if ops.out.aqu_blocks else (),
        "writeback": () if residency.keeps_output else
        (Term(p.last_k, np.maximum(ceil_div(out_glb, glb_r), ceil_div(out_dram, mem.dram.write_bits_per_cycle))),),
    }
    return OpTiles(g, {kind: tuple(term for term in parts if term is not None) for kind, parts in terms.items()},
                   g.total(ideal), action_counts(p, f, mc, ops, arch, residency.keeps_output))
