"""Exact per-tile compute cycles from block-precision maps, vectorized with numpy over tiles and repeats.

A lane spends ``c[w][a] = cycles_per_block_pair`` cycles on block pair ``(m, n, kb)`` with weight precision
``w = W_fp8[n, kb]`` and activation precision ``a = A_fp8[m, kb]``. A tile's *work* on a lane is the sum over the
lane's block pairs in the tile; the tile takes the **maximum** over its lanes (lanes synchronize at tile
boundaries) and its *ideal* time is ``ceil(total work / active lanes)``.

Weight stationary (lane = channel ``n``; the lane walks the m-tile's rows and the k-tile's blocks): with
``cnt1[mt, kb]`` the FP8 activation rows of m-tile ``mt`` at block ``kb`` and ``cnt0`` the NVFP4 ones,
``work[n, mt, kt] = sum_kb f0[mt, kb] + W_fp8[n, kb] * df[mt, kb]`` where ``f0 = c00*cnt0 + c01*cnt1`` and
``df = (c10 - c00)*cnt0 + (c11 - c01)*cnt1``: one matrix product ``W_fp8[:, kt] @ df[:, kt]^T`` per k-tile, skipped
when the weight precision does not change a pair's cost (``c10 = c00`` and ``c11 = c01``, e.g. equal mode cycles).

Output stationary (lane = output ``(m, n)``, the lane walks the k-tile's blocks):
``work[m, n, kt] = c00*blocks + (c01 - c00)*A1[m] + (c10 - c00)*W1[n] + d * (A_fp8[:, kt] @ W_fp8[:, kt]^T)[m, n]``
with ``A1``/``W1`` the FP8 blocks of the row/column in the k-tile and ``d = c11 - c10 - c01 + c00``; for ``d = 0``
the work separates into a row and a column term and the tile maximum is the sum of their maxima.

With a bounded lane FIFO that can fill (:func:`fgmpsim.sim.hw.skew.bounded`) the slowest lane's work is replaced by
the time the PEs' broadcast and lanes take through their FIFOs (:mod:`fgmpsim.sim.hw.skew`); the ideal is the same.

Products and the per-tile maximum and sum run in float32 when every value stays below 2**24 (exact integers),
else float64; results are int64.
"""

from __future__ import annotations

import numpy as np

from fgmpsim.arch.record import Arch
from fgmpsim.sim.vector.grid import Grid
from fgmpsim.sim.vector.map_counts import MapCounts, group_reduce, tile_sizes, tile_starts
from fgmpsim.sim.mapping import Tiling
from fgmpsim.sim.hw.skew import bounded, os_slowest, ws_slowest

_F32_EXACT = 2 ** 24


def _float_type(bound: int) -> type:
    return np.float32 if bound < _F32_EXACT else np.float64


def mode_table(arch: Arch) -> np.ndarray:
    """``c[w_fp8][a_fp8]`` as an int64 2x2 array (cycles per block pair)."""
    return np.array(arch.pe_array.mode_table, dtype=np.int64)


def _ws_work(w: np.ndarray, counts: MapCounts, t: Tiling, c: np.ndarray, grid: Grid) -> tuple[np.ndarray, ...]:
    mp = t.mapping
    tm, tn, tkb = mp.tile_m, mp.tile_n, mp.tile_k_blocks
    ks = tile_starts(t.shape.kb, tkb)
    rows = tile_sizes(t.shape.m, tm)[None, :, None]
    kblocks = tile_sizes(t.shape.kb, tkb)
    f0 = c[0, 0] * rows * kblocks + (c[0, 1] - c[0, 0]) * counts.x_tiles      # [R, MT, KT]
    if c[1, 0] == c[0, 0] and c[1, 1] == c[0, 1]:  # weight precision never changes a pair's cost
        base = grid.place(f0, "r mt kt")
        return base, base
    cnt1 = counts.a_mt_kb.astype(np.int64)                                   # [R, MT, KB]
    df = (c[1, 0] - c[0, 0]) * (rows - cnt1) + (c[1, 1] - c[0, 1]) * cnt1    # [R, MT, KB]
    reps = max(w.shape[0], cnt1.shape[0])
    slowest = np.empty((reps, t.n_tiles, t.k_tiles, t.m_tiles), dtype=np.int64)
    total = np.empty_like(slowest)
    ftype = _float_type(tn * (int(np.abs(df).max(initial=0)) * tkb + int(np.abs(f0).max(initial=0))))
    weights, deltas = w.astype(ftype), df.astype(ftype)
    for k, k0 in enumerate(ks):
        k1 = min(k0 + tkb, t.shape.kb)
        work = np.matmul(weights[:, :, k0:k1], deltas[:, :, k0:k1].transpose(0, 2, 1))     # [R, N, MT]
        work += f0[:, None, :, k].astype(ftype)
        slowest[:, :, k, :] = np.rint(group_reduce(work, tn, axis=1, ufunc=np.maximum))
        total[:, :, k, :] = np.rint(group_reduce(work, tn, axis=1))
    lanes = tile_sizes(t.shape.n, tn)[None, :, None, None]
    return grid.place(slowest, "r nt kt mt"), grid.place(-(-total // lanes), "r nt kt mt")


def _os_work(w: np.ndarray, a: np.ndarray, counts: MapCounts, t: Tiling, c: np.ndarray,
             grid: Grid) -> tuple[np.ndarray, ...]:
    mp = t.mapping
    tm, tn, tkb = mp.tile_m, mp.tile_n, mp.tile_k_blocks
    ks = tile_starts(t.shape.kb, tkb)
    row_term = (c[0, 1] - c[0, 0]) * counts.a_rows_kt                        # [R, M, KT]
    col_term = (c[1, 0] - c[0, 0]) * counts.w_rows_kt                        # [R, N, KT]
    base = grid.place(c[0, 0] * tile_sizes(t.shape.kb, tkb), "kt")
    rows = grid.place(tile_sizes(t.shape.m, tm), "mt")
    cols = grid.place(tile_sizes(t.shape.n, tn), "nt")
    d = c[1, 1] - c[1, 0] - c[0, 1] + c[0, 0]
    if d == 0:
        slowest = (base + grid.place(group_reduce(row_term, tm, 1, np.maximum), "r mt kt")
                   + grid.place(group_reduce(col_term, tn, 1, np.maximum), "r nt kt"))
        total = (rows * cols * base + cols * grid.place(group_reduce(row_term, tm, 1), "r mt kt")
                 + rows * grid.place(group_reduce(col_term, tn, 1), "r nt kt"))
        return slowest, -(-total // (rows * cols))
    reps = max(w.shape[0], a.shape[0])
    slowest = np.empty((reps, t.m_tiles, t.n_tiles, t.k_tiles), dtype=np.int64)
    total = np.empty_like(slowest)
    bound = tm * tn * (abs(d) * tkb + int(np.abs(row_term).max(initial=0)) + int(np.abs(col_term).max(initial=0))
                       + abs(int(c[0, 0])) * tkb)
    ftype = _float_type(bound)
    wf, af = w.astype(ftype), a.astype(ftype)
    for k, k0 in enumerate(ks):
        k1 = min(k0 + tkb, t.shape.kb)
        work = np.matmul(af[:, :, k0:k1], wf[:, :, k0:k1].transpose(0, 2, 1))   # [R, M, N] FP8 x FP8 pairs
        work *= d
        work += (row_term[:, :, k, None] + col_term[:, None, :, k] + c[0, 0] * (k1 - k0)).astype(ftype)
        slowest[..., k] = np.rint(group_reduce(group_reduce(work, tm, 1, np.maximum), tn, 2, np.maximum))
        total[..., k] = np.rint(group_reduce(group_reduce(work, tm, 1), tn, 2))
    lanes = tile_sizes(t.shape.m, tm)[None, :, None, None] * tile_sizes(t.shape.n, tn)[None, None, :, None]
    return grid.place(slowest, "r mt nt kt"), grid.place(-(-total // lanes), "r mt nt kt")


def lane_work(w: np.ndarray, a: np.ndarray, counts: MapCounts, tiling: Tiling, arch: Arch,
              grid: Grid) -> tuple[np.ndarray, ...]:
    """``(slowest lane, ideal)`` cycles of every tile as grid factors, for maps ``w [R, N, KB]``, ``a [R, M, KB]``
    (``R`` is 1 or the repeat count) and their grouped ``counts``."""
    c, mp, s = mode_table(arch), tiling.mapping, tiling.shape
    slowest, ideal = (_ws_work(w, counts, tiling, c, grid) if tiling.ws else _os_work(w, a, counts, tiling, c, grid))
    items = mp.tile_k_blocks * (mp.tile_m if tiling.ws else 1)
    if not bounded(arch.pe_array, items):
        return slowest, ideal
    sizes = (s.m, s.n, s.kb, mp.tile_m, mp.tile_n, mp.tile_k_blocks, arch.pe_array, c)
    if tiling.ws:
        return grid.place(ws_slowest(w, a, *sizes), "r nt kt mt"), ideal
    return grid.place(os_slowest(w, a, *sizes), "r mt nt kt"), ideal
