"""Causal attention on the array: a causal op runs as query *bands*, each a dense GEMM over the keys its rows see.

A causal op (``GemmOp.causal``, :mod:`fgmpsim.trace.record`) of ``M`` query rows over ``keys`` keys lets query row
``i`` see the first ``keys - M + i + 1`` keys. The sequencer issues it as ``ceil(M / BAND_ROWS)`` bands of
:data:`BAND_ROWS` consecutive query rows (the last band may be short); band ``b`` covering rows ``[m0, m1)``
computes only the keys its last row sees, ``live = keys - M + m1``:

* ``attn_qk`` (``S = Q K^T``, keys along ``N``): the band is the dense GEMM of rows ``[m0, m1)`` of Q against
  the first ``min(N, live)`` rows of K (the key columns of S after the band's last row are never computed:
  lane granularity, one key per WS lane / OS output column);
* ``attn_pv`` (``O = P V``, keys along the reduction ``K``): rows ``[m0, m1)`` of P against V over the first
  ``min(ceil(K / vector_width), ceil(live / vector_width))`` key blocks (``K`` cut to them; a partial last block
  of the op stays partial): the lanes stop at the last block holding a key the band's last row sees (block-pair
  granularity, a block is the array's unit of work along K).

So the hardware skips, per band, every whole block pair (pv) or key column (qk) above the band's last row; the
masked part *inside* a band (the triangle below each band's diagonal) is computed and discarded as on a dense
array. With 2048 queries over 2048 keys and 128-row bands, the bands compute ``(16 + 1) / (2 * 16) = 53.1%`` of
the dense product (the exact triangle: 50.02%).

Each band is an op of its own on the timeline: the mapper tiles it, it fills and drains its pipeline and runs
after the previous band (:mod:`fgmpsim.sim.engines.tile`), so bands pay their own weight (K, V) fetches: a band
re-reads the keys it needs from DRAM. ``attn_qk`` band ``b`` writes the scores of its rows, which are the P rows
that ``attn_pv`` band ``b`` reads (its consumer when the ``attn_pv`` is causal too). The op's row in the result is
the sum of its bands (:func:`merge_columns`).

The bands are cut from the op's own maps as the lanes see them (:class:`CausalBands`): the op's maps are
materialized once per simulation, every band's maps are views of them (a constant view where a band's blocks are all in one
precision) and every band's FP8 blocks come from one running sum over each map's rows and blocks. A band's map
counts are cached across simulations like a dense op's, keyed by its op's maps and its :class:`Cut` s of them
(:func:`fgmpsim.sim.vector.map_counts.op_counts`).

``simulate(..., attention="dense")`` ignores the flag and counts the full ``M x keys`` product, as a dense array
would.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

import numpy as np

from fgmpsim.sim.hw.operands import OperandCache, Operands, as_3d
from fgmpsim.sim.schedule import OpTiming
from fgmpsim.sim.vector.map_counts import constant_value, group_sum, pe_group_counts, pe_groups
from fgmpsim.trace.record import GemmOp, PrecisionMap, Trace

BAND_ROWS = 128
"""Query rows per band: the query block of FlashAttention-2's forward pass (``B_r = 128`` for head dimension 128;
Dao, "FlashAttention-2", ICLR 2024, Sec. 3.3 and its tuned block sizes), the granularity at which a causal kernel
skips whole key blocks above the diagonal."""

MODES = ("causal", "dense")
"""``attention`` settings of :func:`fgmpsim.sim.simulate`: honour ``GemmOp.causal`` or count every op dense."""
DEFAULT = "causal"
"""The default ``attention`` setting: the work the model does. Bands are ops of their own, so a Llama-2-7B prefill
simulates 1,249 ops instead of 289 (about twice the run time of a design point); ``"dense"`` is the fast,
pessimistic count."""


def band_ranges(m: int, keys: int, total: int, per_block: int,
                band_rows: int = BAND_ROWS) -> list[tuple[int, int, int]]:
    """``(m0, m1, live)`` of every band of an op of ``m`` queries over ``keys`` keys: ``live`` is the extent of the
    band along the keys axis, ``min(total, ceil((keys - m + m1) / per_block))`` in units of ``per_block`` keys
    (``total``: the op's extent along that axis in the same units)."""
    starts = np.arange(0, m, band_rows)
    ends = np.minimum(starts + band_rows, m)
    live = np.minimum(total, -(-(keys - m + ends) // per_block))
    return [(int(a), int(b), int(c)) for a, b, c in zip(starts, ends, live)]


def band_name(op: str, band: int) -> str:
    """The name of band ``band`` of op ``op``."""
    return f"{op}#band{band}"


@dataclass(frozen=True)
class Cut:
    """A band's part of one map ``[R, rows, KB]`` of its op: rows ``[lo, hi)`` and blocks ``[0, blocks)`` of every
    repeat."""

    lo: int
    hi: int
    blocks: int


class _CutMap:
    """One map of a causal op as the lanes see it (``[R, rows, KB]``, :class:`~fgmpsim.sim.hw.operands.Operands`),
    the FP8 blocks of any :class:`Cut` of it, from one running sum over its rows and blocks (a constant map is
    never read), and the PE-group counts of a cut from the whole map's."""

    def __init__(self, pmap: np.ndarray) -> None:
        self.map = pmap
        self.value = constant_value(pmap)
        self._groups: dict[tuple[int, int], np.ndarray] = {}
        if self.value is None:
            self.sums = np.zeros((pmap.shape[1] + 1, pmap.shape[2] + 1), dtype=np.int64)
            self.sums[1:, 1:] = group_sum(pmap, pmap.shape[0], axis=0)[0].cumsum(axis=0).cumsum(axis=1)

    def share(self, cut: Cut) -> tuple[int, int]:
        """(FP8 blocks, blocks) of ``cut``."""
        size = self.map.shape[0] * (cut.hi - cut.lo) * cut.blocks
        if self.value is not None:
            return size * int(self.value), size
        return int(self.sums[cut.hi, cut.blocks] - self.sums[cut.lo, cut.blocks]), size

    def pe_groups(self, cut: Cut, tn: int, lpp: int) -> np.ndarray | None:
        """:func:`~fgmpsim.sim.vector.map_counts.pe_group_counts` of ``cut`` (a band's weight map) in n-tiles of
        ``tn`` with ``lpp`` lanes per PE, cut from the whole map's (counted once per ``(tn, lpp)`` for all the op's
        bands, instead of once per band over the keys every earlier band read too). A cut from row 0 to a group
        boundary of the whole map holds its first groups whole; ``None`` for any other cut and for a constant map
        (whose counts are never read)."""
        if self.value is not None or cut.lo:
            return None
        starts = pe_groups(self.map.shape[1], tn, lpp)[0]
        groups = int(np.searchsorted(starts, cut.hi))  # the groups that start below the cut's end
        if cut.hi != self.map.shape[1] and (groups == len(starts) or starts[groups] != cut.hi):
            return None
        if (tn, lpp) not in self._groups:
            self._groups[tn, lpp] = pe_group_counts(self.map, tn, lpp)
        return self._groups[tn, lpp][:, :groups, :cut.blocks]

    def cut(self, cut: Cut) -> tuple[np.ndarray, int]:
        """The blocks of ``cut``, a view of the map (a constant view when they are all in one precision, as
        :meth:`~fgmpsim.sim.hw.operands.OperandCache.adjusted` gives a map) and how many are FP8."""
        fp8, size = self.share(cut)
        if fp8 in (0, size):
            return np.broadcast_to(np.bool_(fp8 == size), (self.map.shape[0], cut.hi - cut.lo, cut.blocks)), fp8
        return self.map[:, cut.lo:cut.hi, :cut.blocks], fp8


def _traced(band: np.ndarray, pmap: PrecisionMap) -> np.ndarray:
    """A band's map with the dimensions of its op's map (2-D when one map serves every repeat)."""
    return band[0] if len(pmap.shape) == 2 else band


class CausalBands:
    """Cuts the bands of a trace's causal ops from the ops' maps as the lanes see them (``cache``: the
    simulation's :class:`~fgmpsim.sim.hw.operands.OperandCache`, which also gives the consumer's map an ``attn_qk``
    band writes a band of)."""

    def __init__(self, trace: Trace, cache: OperandCache, band_rows: int = BAND_ROWS) -> None:
        self.trace = trace
        self.cache = cache
        self.band_rows = band_rows
        self.vw = trace.block_size
        producers = {op.consumer: op for op in trace.ops if op.kind == "attn_qk" and op.causal}
        self.keys = {op.name: op.n if op.kind == "attn_qk" else
                     (producers[op.name].n if op.name in producers else op.k) for op in trace.ops if op.causal}

    def _cuts(self, op: GemmOp) -> list[tuple[int, int, Cut, Cut, dict[str, int]]]:
        """``(m0, m1, weight cut, act cut, the band's extent along the keys)`` of every band of ``op``."""
        kb = -(-op.k // self.vw)
        if op.kind == "attn_qk":
            return [(m0, m1, Cut(0, live, kb), Cut(m0, m1, kb), {"n": live})
                    for m0, m1, live in band_ranges(op.m, self.keys[op.name], op.n, 1, self.band_rows)]
        return [(m0, m1, Cut(0, op.n, live), Cut(m0, m1, live), {"k": min(op.k, live * self.vw)})
                for m0, m1, live in band_ranges(op.m, self.keys[op.name], kb, self.vw, self.band_rows)]

    def of(self, op: GemmOp, whole: Operands) -> tuple[Operands, ...]:
        """The bands of causal op ``op`` (``whole``: its operands) in execution order, each a dense op's
        operands."""
        consumer = self.trace.op(op.consumer) if op.consumer is not None else None
        paired = consumer is not None and consumer.causal and op.kind == "attn_qk" and consumer.m == op.m
        if paired:  # band b writes band b of the consumer's operand: its FP8 share sets the output's
            act = op.consumer_operand == "act"
            fed = _CutMap(as_3d(self.cache.adjusted(consumer.act_map if act else consumer.weight_map,
                                                    consumer.act_format if act else consumer.weight_format)))
            shares = [fed.share(a_cut if act else w_cut) for _, _, w_cut, a_cut, _ in self._cuts(consumer)]
        w, a = _CutMap(whole.w), _CutMap(whole.a)
        bands = []
        for b, (m0, m1, w_cut, a_cut, extent) in enumerate(self._cuts(op)):
            (w_band, w_fp8), (a_band, a_fp8) = w.cut(w_cut), a.cut(a_cut)
            band = replace(op, name=band_name(op.name, b), m=m1 - m0, causal=False,
                           consumer=band_name(op.consumer, b) if paired else op.consumer,
                           weight_map=_traced(w_band, op.weight_map), act_map=_traced(a_band, op.act_map), **extent)
            out = self.cache.output_format(band, consumer, shares[b] if paired else None)
            bands.append(Operands(band, w_band, a_band, whole.vw, out, w_fp8, a_fp8, whole.w_storage,
                                  whole.a_storage, whole.routes, (op.weight_map, op.act_map, w_cut, a_cut),
                                  partial(w.pe_groups, w_cut)))
        return tuple(bands)


def merge_timings(timings: list[OpTiming]) -> OpTiming:
    """The timing of bands run back to back: every field summed (so ``compute + stalls = cycles`` still holds)."""
    return OpTiming(**{f.name: sum(getattr(t, f.name) for t in timings) for f in fields(OpTiming)})


OP_COLUMNS = ("M", "K", "N", "repeat", "static_weight")
"""Row columns taken from the causal op itself."""
MAPPING_COLUMNS = ("dataflow", "tile_m", "tile_n", "tile_k_blocks", "chunk_m", "x_resident", "w_resident")
"""Row columns taken from the last (widest) band: the mapping it reports."""


def merge_columns(op: GemmOp, bands: list[dict[str, Any]], operands: dict[str, Any]) -> dict[str, Any]:
    """The row columns of a causal op from its bands' columns: the op's shape, the last band's mapping, the op's
    own map columns (``operands``: weight, KV-cache and FP8-fraction columns of the whole op), ``pj_per_mac`` recomputed
    and every other column summed; ``causal_bands`` = the number of bands."""
    fixed = {"M": op.m, "K": op.k, "N": op.n, "repeat": op.repeat, "static_weight": op.static_weight}
    merged: dict[str, Any] = {}
    for key, value in bands[-1].items():
        if key in OP_COLUMNS:
            merged[key] = fixed[key]
        elif key in MAPPING_COLUMNS:
            merged[key] = value
        elif key in ("weight_bits", "weight_elements", "kv_cache_bits", "weight_fp8_fraction", "act_fp8_fraction"):
            merged[key] = operands[key]
        else:
            merged[key] = sum(band[key] for band in bands)
    merged["pj_per_mac"] = merged["energy_pj"] / merged["macs"]
    merged["causal_bands"] = len(bands)
    return merged
