"""Reuse inside the PE: the weight and partial-sum collectors of every lane (Simba / MAGNet-style PEs: small
register files between the PE buffers and the VMAC lanes; Shao et al., MICRO 2019; Venkatesan et al., ICCAD 2019).

Each lane has a **weight collector** of ``dw = pe_array.weight_collector_blocks`` weight blocks (``0``: none, the
lane reads its weight operand from the weight buffer for every block pair) and a **partial-sum collector** of
``dp = pe_array.psum_collector_entries`` FP32 partial sums (``1``: only the lane's accumulator register, whose
energy is part of ``scale_accumulate``). Collectors act under weight stationary only: under output stationary a PE
holds one row, so a weight block has no other row to be reused for and the collectors are bypassed (no
register-file access is counted).

The rule, per lane and per tile of ``R`` rows and ``K`` blocks (the lane's ``K`` weight blocks, the tile's ``R``
input rows), weight stationary:

* ``dw = 0`` (today's PE): the lane walks row by row and, in each row, block by block, reading the weight block
  from the weight buffer for every block pair: ``R * K`` weight-buffer reads; no collector access.
* ``dw >= K``: the lane's whole k-tile of weights sits in the collector. It is loaded from the weight buffer on
  the first m-tile of the chunk (grid index ``i = 0``: ``K`` reads, ``K`` collector writes) and kept for the
  chunk's other m-tiles, which run next with the same weight tile (``0`` weight-buffer reads). Every block pair
  reads its weight block from the collector: ``R * K`` collector reads (unless bypassed, below). Rows still run
  one after another through the accumulator register: no partial-sum collector access.
* ``1 <= dw < K``: the lane splits the k-tile into ``nc = ceil(K / dw)`` chunks of ``dw`` blocks (the last may be
  short) and the rows into ``ceil(R / dp)`` groups of ``dp`` rows (the last may be short). For every row group and
  k-chunk it loads the chunk's weight blocks into the collector, then runs every row of the group over the chunk:
  ``ceil(R / dp) * K`` weight-buffer reads and as many collector writes, ``R * K`` collector reads (less the
  bypassed loads, below). A row's partial sum waits in the partial-sum collector between its k-chunks when its
  group holds more than one row: with ``P`` such rows (all ``R`` rows, less a last group of one row; none when
  ``dp = 1``), ``P * (nc - 1)`` partial-sum collector writes (after every k-chunk but the last) and as many reads
  (before every k-chunk but the first); the row of a one-row group keeps its sum in the accumulator register.
* **Bypass.** A load whose blocks only one row reads before the collector is loaded again (a one-row group, every
  group when ``dp = 1``; a held k-tile when its chunk is one m-tile of one row, as in decode) would write each
  block into the collector to read it once: the lane takes them straight from the weight buffer instead (the
  schedule is fixed when the op is compiled, so the controller knows). Weight-buffer reads are those above;
  collector writes and reads are counted only for loads that more than one row reads: ``dw >= K``: ``K`` writes
  and ``R * K`` reads unless the chunk is a single one-row m-tile (then none); ``dw < K``: ``(ceil(R / dp) - S) *
  K`` writes and ``(R - S) * K`` reads with ``S`` the one-row groups (``R`` when ``dp = 1``, else 1 if
  ``R mod dp = 1``, else 0). So a collector that no row reuses adds no register-file access.

The accumulation buffer is touched as before (once per output and tile: a read-modify-write, no read on k-tile 0),
and so are the input buffer (each input block read once per tile and PE) and every transfer's timing: collector
loads run beside the compute through the weight buffer's read port (one block per lane per cycle, the rate the
lanes consume blocks at) and cost no cycles. Weight collector bits are the weight blocks' data bits (values +
scale) and, separately, their metadata bits (``weight_collector_*_metadata_bits``); partial sums are
``storage.psum_bits`` each.

The mapper's objective (:mod:`fgmpsim.sim.mapping`) counts the weight-buffer reads of this rule
(:func:`weight_buffer_reads`) after DRAM and GLB bits: with ``dw = 0`` they are ``M * K * N`` blocks for every
tiling, so the mapper chooses as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fgmpsim.arch.record import PEArray

if TYPE_CHECKING:  # the mapper imports this module: no run-time import back
    from fgmpsim.sim.mapping import Tiling
    from fgmpsim.sim.vector.grid import Grid


@dataclass(frozen=True)
class CollectorCounts:
    """Per-tile multipliers as 5-D grid factors (:mod:`fgmpsim.sim.vector.grid`): per weight block of the tile, its
    weight-buffer reads, weight-collector writes and weight-collector reads; per lane (output channel) of the tile,
    its partial-sum collector reads (= writes)."""

    buffer_reads: np.ndarray
    collector_writes: np.ndarray
    collector_reads: np.ndarray
    psum_accesses: np.ndarray


def uses_collectors(t: Tiling, pe: PEArray) -> bool:
    """True when the op's lanes run through a weight collector (weight stationary with ``dw >= 1``)."""
    return t.ws and pe.weight_collector_blocks >= 1


def collector_counts(t: Tiling, pe: PEArray, g: Grid, rows: np.ndarray, kblocks: np.ndarray) -> CollectorCounts:
    """The factors of the module docstring's rule for every tile; ``rows`` the tile's rows (5-D factor),
    ``kblocks`` the blocks of each k-tile (1-D)."""
    zero = np.zeros((1,) * 5, dtype=np.int64)
    if not uses_collectors(t, pe):
        return CollectorCounts(rows, zero, zero, zero)
    dw, dp = pe.weight_collector_blocks, pe.psum_collector_entries
    k = g.place(kblocks, "kt")
    held = k <= dw                                          # the whole k-tile fits the collector
    groups = -(-rows // dp)
    first_m = (g.index("i") == 0).astype(np.int64)
    reads = np.where(held, first_m, groups)
    chunks = -(-k // dw)
    parked = 0 if dp == 1 else rows - (rows % dp == 1)       # rows of groups of more than one row
    psum = np.where(held, 0, parked * (chunks - 1))
    once = (g.place(g.chunk_lengths, "ch") == 1) & (rows == 1)  # a held k-tile that only one row ever reads
    writes = np.where(held, first_m * ~once, groups - (rows - parked))  # one-row groups bypass the collector
    return CollectorCounts(reads, writes, np.where(held, rows * ~once, parked), psum)


def weight_buffer_reads(t: Tiling, pe: PEArray) -> int:
    """Weight blocks one output channel reads from the weight buffer over one repeat of the op, by the rule of the
    module docstring (closed form, for the mapper)."""
    s, mp = t.shape, t.mapping
    if not uses_collectors(t, pe):
        return s.m * s.kb
    dw, dp, tm, tkb = pe.weight_collector_blocks, pe.psum_collector_entries, mp.tile_m, mp.tile_k_blocks
    last_k, last_m = s.kb - (t.k_tiles - 1) * tkb, s.m - (t.m_tiles - 1) * tm
    chunks = -(-t.m_tiles // t.chunk_tiles)
    groups = (t.m_tiles - 1) * -(-tm // dp) + -(-last_m // dp)

    def per_block(k: int) -> int:
        return chunks if k <= dw else groups

    return (t.k_tiles - 1) * tkb * per_block(tkb) + last_k * per_block(last_k)
