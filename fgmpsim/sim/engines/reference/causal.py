"""The reference engine's causal bands, written from the spec (the docstring of :mod:`fgmpsim.sim.hw.causal`) with
plain loops and no code of the tile engine's band builder.

Query row ``i`` of a causal op with ``M`` rows over ``keys`` keys sees keys ``0 .. keys - M + i``. The op runs as
bands of ``band_rows`` consecutive rows; the band of rows ``m0 .. m1 - 1`` is a dense op over what its last row
sees: ``attn_qk`` keeps the first ``keys - M + m1`` key rows of K (at most ``N``), ``attn_pv`` the first key blocks
up to the one holding key ``keys - M + m1 - 1`` (at most all of them; ``K`` cut to those blocks, a partial last
block of the op staying partial) of P and V. ``keys`` is ``attn_qk``'s ``N``,
and for ``attn_pv`` the ``N`` of the causal ``attn_qk`` whose consumer it is (else its own ``K``). Band ``b`` of an
``attn_qk`` whose consumer is causal writes the P rows of that consumer's band ``b``.
"""

from __future__ import annotations

import numpy as np

from fgmpsim.trace.record import GemmOp, Trace, materialize_map


def _keys(trace: Trace, op: GemmOp) -> int:
    if op.kind == "attn_qk":
        return op.n
    for other in trace.ops:
        if other.kind == "attn_qk" and other.causal and other.consumer == op.name:
            return other.n
    return op.k


def _band_list(trace: Trace, op: GemmOp, band_rows: int, feeds_bands: bool) -> list[GemmOp]:
    block = trace.block_size
    w, a = np.asarray(materialize_map(op.weight_map)), np.asarray(materialize_map(op.act_map))
    keys = _keys(trace, op)
    bands = []
    m0 = 0
    while m0 < op.m:
        m1 = min(m0 + band_rows, op.m)
        seen = keys - op.m + m1
        name = f"{op.name}#band{len(bands)}"
        consumer = f"{op.consumer}#band{len(bands)}" if feeds_bands else op.consumer
        if op.kind == "attn_qk":
            n = min(op.n, seen)
            band = GemmOp(name, op.layer, op.kind, m1 - m0, op.k, n, op.repeat, w[..., :n, :].copy(),
                          a[..., m0:m1, :].copy(), op.static_weight, consumer, op.consumer_operand,
                          weight_format=op.weight_format, act_format=op.act_format)
        else:
            kb = min((op.k + block - 1) // block, (seen + block - 1) // block)
            band = GemmOp(name, op.layer, op.kind, m1 - m0, min(op.k, kb * block), op.n, op.repeat, w[..., :kb].copy(),
                          a[..., m0:m1, :kb].copy(), op.static_weight, consumer, op.consumer_operand,
                          weight_format=op.weight_format, act_format=op.act_format)
        bands.append(band)
        m0 = m1
    return bands


def reference_bands(trace: Trace, op: GemmOp, band_rows: int) -> list[tuple[GemmOp, Trace]]:
    """Every band of causal op ``op`` with the trace it looks its consumer up in (its own bands, those of the op
    it feeds when that one is a causal ``attn_pv``, and the trace's ops)."""
    consumer = next((other for other in trace.ops if other.name == op.consumer), None)
    paired = (op.kind == "attn_qk" and consumer is not None and consumer.causal and consumer.kind == "attn_pv"
              and consumer.m == op.m)
    bands = _band_list(trace, op, band_rows, paired)
    fed = _band_list(trace, consumer, band_rows, False) if paired else []
    scope = Trace(trace.name, tuple(bands + fed) + tuple(trace.ops), trace.block_size)
    return [(band, scope) for band in bands]
