"""What must live in DRAM for a trace: its static weights and its KV cache, against ``memory.dram.size_bytes``.

* **Weights**: every static weight tensor at its stored size (the ``weight_bits`` row column:
  :func:`fgmpsim.energy.weight_footprint_bits`, values + block scales + metadata + tensor scale).
* **KV cache**: the K operand of every ``attn_qk`` and the V operand of every ``attn_pv`` (their weight side,
  ``static_weight=False``) at the same stored size, from the trace's map of each block: the block precision the
  AQU chose when the cache was written (the ``kv_cache_bits`` row column). The tile, event and reference engines
  price the DRAM reads of these operands at the same block bits (``dram_read_bits``), so a decode step reads its
  cache at the stored precision. Traces repeat a KV head's map for every query head it serves (grouped-query
  attention, ``meta.model.heads / kv_heads`` query heads per KV head): the cache holds each KV head once, so the
  row sum is divided by that group when the trace's meta gives it.

``dram_footprint_bytes`` = weights + KV cache; ``dram_fits`` is ``None`` for an unbounded DRAM (no
``size_bytes``), else whether the footprint is at most ``size_bytes``. Activations (which stream through) are not
counted; the cache is the traced ``kv_len`` keys per sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fgmpsim.arch.record import Arch
from fgmpsim.trace.record import Trace

KV_KINDS = ("attn_qk", "attn_pv")
"""Ops whose weight side is the KV cache (K for ``attn_qk``, V for ``attn_pv``)."""


def kv_group(trace: Trace) -> int:
    """Query heads per KV head from the trace's ``meta.model`` (1 when it does not say)."""
    model = trace.meta.get("model") if isinstance(trace.meta, dict) else None
    if not isinstance(model, dict):
        return 1
    heads, kv_heads = model.get("heads"), model.get("kv_heads")
    if isinstance(heads, int) and isinstance(kv_heads, int) and 0 < kv_heads <= heads and heads % kv_heads == 0:
        return heads // kv_heads
    return 1


def dram_footprint(rows: Sequence[dict[str, Any]], trace: Trace, arch: Arch) -> dict[str, Any]:
    """The summary fields of the module docstring from a result's rows."""
    weights = sum(row["weight_bits"] for row in rows) // 8
    kv = sum(row["kv_cache_bits"] for row in rows) // kv_group(trace) // 8
    size = arch.memory.dram.size_bytes
    total = weights + kv
    return {"dram_weight_bytes": weights, "dram_kv_cache_bytes": kv, "dram_footprint_bytes": total,
            "dram_size_bytes": size, "dram_fits": None if size is None else total <= size}
