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

``simulate(..., attention="dense")`` ignores the flag and counts the full ``M x keys`` product, as a dense array
would.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from fgmpsim.sim.schedule import OpTiming
from fgmpsim.trace.record import GemmOp, Trace, materialize_map

BAND_ROWS = 128
"""Query rows per band: the query block of FlashAttention-2's forward pass (``B_r = 128`` for head dimension 128;
Dao, "FlashAttention-2", ICLR 2024, Sec. 3.3 and its tuned block sizes), the granularity at which a causal kernel
skips whole key blocks above the diagonal."""

MODES = ("causal", "dense")
"""``attention`` settings of :func:`fgmpsim.sim.simulate`: honour ``GemmOp.causal`` or count every op dense."""
DEFAULT = "causal"
"""The default ``attention`` setting: the work the model does. Bands are ops of their own, so a Llama-2-7B prefill
simulates 1,249 ops instead of 289 (about 2.5x the run time); ``"dense"`` is the fast, pessimistic count."""


def band_ranges(m: int, keys: int, total: int, per_block: int,
                band_rows: int = BAND_ROWS) -> list[tuple[int, int, int]]:
    """``(m0, m1, live)`` of every band of an op of ``m`` queries over ``keys`` keys: ``live`` is the extent of the
    band along the keys axis, ``min(total, ceil((keys - m + m1) / per_block))`` in units of ``per_block`` keys
    (``total``: the op's extent along that axis in the same units)."""
    starts = np.arange(0, m, band_rows)
    ends = np.minimum(starts + band_rows, m)
    live = np.minimum(total, -(-(keys - m + ends) // per_block))
    return [(int(a), int(b), int(c)) for a, b, c in zip(starts, ends, live)]


def _rows(pmap: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.ascontiguousarray(pmap[..., lo:hi, :])


def _blocks(pmap: np.ndarray, hi: int) -> np.ndarray:
    return np.ascontiguousarray(pmap[..., :hi])


def band_name(op: str, band: int) -> str:
    """The name of band ``band`` of op ``op``."""
    return f"{op}#band{band}"


@dataclass(frozen=True)
class Bands:
    """The bands of one causal op (dense :class:`GemmOp` s, in execution order) and ``scope``: a trace holding
    them, the ops they feed and the original ops, where a band looks up its consumer (for its output format)."""

    ops: tuple[GemmOp, ...]
    scope: Trace


class CausalBands:
    """Builds the bands of a trace's causal ops on demand (each op's maps are materialized when its bands are
    built, and dropped with them). An ``attn_qk`` feeding a causal ``attn_pv`` builds both op's bands at once, since
    the ``attn_qk`` bands' outputs are the ``attn_pv`` bands' P operands; the ``attn_pv`` bands are kept until asked
    for."""

    def __init__(self, trace: Trace, band_rows: int = BAND_ROWS) -> None:
        self.trace = trace
        self.band_rows = band_rows
        self.vw = trace.block_size
        producers = {op.consumer: op for op in trace.ops if op.kind == "attn_qk" and op.causal}
        self.keys = {op.name: op.n if op.kind == "attn_qk" else
                     (producers[op.name].n if op.name in producers else op.k) for op in trace.ops if op.causal}
        self._pending: dict[str, tuple[GemmOp, ...]] = {}

    def _split(self, op: GemmOp, paired: bool) -> tuple[GemmOp, ...]:
        """The bands of ``op``; ``paired``: band ``b`` feeds band ``b`` of the op's consumer (else the consumer)."""
        w, a = materialize_map(op.weight_map), materialize_map(op.act_map)
        qk = op.kind == "attn_qk"
        ranges = band_ranges(op.m, self.keys[op.name], op.n if qk else -(-op.k // self.vw), 1 if qk else self.vw,
                             self.band_rows)
        out = []
        for b, (m0, m1, live) in enumerate(ranges):
            if qk:
                maps = {"n": live, "weight_map": _rows(w, 0, live), "act_map": _rows(a, m0, m1)}
            else:
                maps = {"k": min(op.k, live * self.vw), "weight_map": _blocks(w, live),
                        "act_map": _blocks(_rows(a, m0, m1), live)}
            out.append(replace(op, name=band_name(op.name, b), m=m1 - m0, causal=False,
                               consumer=band_name(op.consumer, b) if paired else op.consumer, **maps))
        return tuple(out)

    def of(self, op: GemmOp) -> Bands:
        """The bands of causal op ``op``."""
        consumer = self.trace.op(op.consumer) if op.consumer is not None else None
        paired = consumer is not None and consumer.causal and op.kind == "attn_qk" and consumer.m == op.m
        ops = self._pending.pop(op.name) if op.name in self._pending else self._split(op, paired)
        fed: tuple[GemmOp, ...] = ()
        if paired:
            fed = self._pending[consumer.name] = self._split(consumer, False)
        return Bands(ops, Trace(self.trace.name, (*ops, *fed, *self.trace.ops), self.trace.block_size))


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
