"""The lane-skew buffer: each lane's FIFO behind its PE's activation broadcast, bounded at
``D = pe_array.lane_fifo_depth`` block pairs (``None``: unbounded, the lanes skew freely inside a tile).

**The hardware.** Under both VMAC dataflows a PE reads one activation block from its input buffer per *item* and
broadcasts it to its lanes; every lane reads its own weight block (weight stationary: lane = channel, the PE's
lanes are ``lanes_per_pe`` consecutive channels of the n-tile; output stationary: the PE is one row of the m-tile,
its lanes the n-tile's columns). The PE issues a tile's items in one fixed order, the order its lanes compute them:

* weight stationary: the m-tile's rows one after another, the k-tile's blocks within a row; with a weight
  collector (:mod:`fgmpsim.sim.hw.collectors`) the collector program's order: row groups of
  ``psum_collector_entries`` rows, within a group the k-chunks of ``weight_collector_blocks`` blocks, within a
  chunk the group's rows, within a row the chunk's blocks;
* output stationary: the k-tile's blocks.

Lane ``l`` spends ``c_l[i] = cycles_per_block_pair[w][a]`` cycles on item ``i``. An item holds a slot of each
lane's FIFO from its broadcast until that lane has finished it, so item ``i`` is broadcast when every lane of the
PE has finished item ``i - D``. With times in cycles from the tile's start::

    b[i]   = max over lanes l of f_l[i - D]        (0 for i < D)
    f_l[i] = max(f_l[i - 1], b[i]) + c_l[i]        (f_l[-1] = 0)

and the PE finishes at ``max_l f_l[I - 1]`` (``I`` items); the tile's lanes finish when its slowest PE does (then
the VMAC pipeline drains, :mod:`fgmpsim.sim.schedule`). The broadcast issues at most one item per cycle; that never
binds, since every ``c >= 1``. ``D = 1``: the lanes run in lock step (every item lasts its slowest lane's cycles);
``D >= I`` or unbounded: ``max_l sum_i c_l[i]``, the slowest lane's work. Lanes of one PE differ only in their
weight blocks, so when the mode cycles do not depend on the weight's precision (``c[0][a] = c[1][a]``, e.g. every
mode 1 cycle on ``fgmp``) all lanes of a PE run the same costs and the FIFO never fills: :func:`bounded` is then
false and the tile engine keeps its closed form (:mod:`fgmpsim.sim.hw.lanes`).

**The recurrence, vectorized.** In lag form relative to ``H[i] = max_l f_l[i]``: with ``v_l = f_l[i-1] - H[i-1]``
(``<= 0``) and ``e = H[i-1] - H[i-D]`` (the PE's advance over the last ``D - 1`` items),
``t_l = max(v_l, -e) + c_l``, ``H[i] - H[i-1] = max_l t_l`` and the new ``v_l = t_l - (H[i] - H[i-1])``. Every
value lies in ``[-D * c_max, c_max]``, so the state is int8 for small depths: one loop over the items of a tile,
each step a few passes over every (tile, PE, lane) of the op at once, in cache-sized chunks.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from fgmpsim.arch.record import PEArray
from fgmpsim.sim.vector.map_counts import group_reduce

_CHUNK_ELEMENTS = 1 << 18
"""Target state elements per chunk: the step's few arrays stay in the L2 cache."""


def bounded(pe: PEArray, items: int) -> bool:
    """True when a FIFO of ``pe.lane_fifo_depth`` can stall a tile of at most ``items`` items: a finite depth below
    ``items`` and mode cycles that depend on the weight's precision (else every lane of a PE runs the same costs)."""
    table = pe.mode_table
    weight_matters = table[0] != table[1]
    return pe.lane_fifo_depth is not None and pe.lane_fifo_depth < items and weight_matters


def item_order(rows: int, blocks: int, pe: PEArray, ws: bool) -> list[tuple[int, int]]:
    """``(row, block)`` offsets within a tile of ``rows x blocks`` in the order its PEs broadcast them (module
    docstring); output stationary: row 0 (each PE holds one row)."""
    if not ws:
        return [(0, k) for k in range(blocks)]
    dw, dp = pe.weight_collector_blocks, pe.psum_collector_entries
    if not dw:
        return [(m, k) for m in range(rows) for k in range(blocks)]
    return [(m, k) for g in range(0, rows, dp) for c in range(0, blocks, dw)
            for m in range(g, min(g + dp, rows)) for k in range(c, min(c + dw, blocks))]


def state_type(pe: PEArray) -> type:
    """The smallest signed integer type holding every value of the lag-form state (module docstring)."""
    bound = (pe.lane_fifo_depth + 1) * max(max(row) for row in pe.mode_table)
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if bound <= np.iinfo(t).max)


def fifo_finish(lane_costs: np.ndarray, act: np.ndarray, order: list[tuple[int, int]], depth: int) -> np.ndarray:
    """Cycles until every PE's last lane finishes its items (``H[I - 1]``), int64 ``[R, KT, rows, G]``.

    ``lane_costs [blocks, lanes, 2 * Rw * KT, G]``: the cycles lane ``l`` of PE group ``g`` spends on the k-tile's
    block ``kb`` with an NVFP4 (index ``kt + KT * rw``) or an FP8 activation block (``+ Rw * KT``); zero on padding
    lanes (which then never lead their PE). ``act [I, Ra, KT, rows]``: 1 where item ``j = order[j] = (row,
    block)`` of the tile at ``(r, kt, row)`` has an FP8 activation block (``Rw``, ``Ra``: 1 or the repeats). State
    ``[lanes, (r, kt, row), G]`` in cache-sized chunks of rows; each item's costs are one row gather."""
    blocks, lanes, combos, groups = lane_costs.shape
    items, act_reps, k_tiles, rows = act.shape
    w_reps = combos // (2 * k_tiles)
    reps = max(w_reps, act_reps)
    base = ((np.arange(reps) if w_reps > 1 else np.zeros(reps, np.intp))[:, None] * k_tiles
            + np.arange(k_tiles))[None, :, :, None]                                        # [1, R, KT, 1]
    finish = np.empty((reps, k_tiles, rows, groups), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // (lanes * reps * k_tiles * groups))
    for lo in range(0, rows, step):
        hi = min(rows, lo + step)
        pick = np.broadcast_to(act[..., lo:hi].astype(np.intp) * (w_reps * k_tiles) + base, (items, reps, k_tiles, hi - lo))
        pick = pick.reshape(items, -1)
        v = np.zeros((lanes, pick.shape[1], groups), lane_costs.dtype)
        cost = np.empty_like(v)
        rise, neg_e = np.empty(v.shape[1:], v.dtype), np.zeros(v.shape[1:], v.dtype)
        total = np.zeros(v.shape[1:], np.int64)
        window: deque[np.ndarray] = deque()
        for j, (_, block) in enumerate(order):
            np.take(lane_costs[block], pick[j], axis=1, out=cost)
            np.maximum(v, neg_e, out=v)
            v += cost
            np.maximum.reduce(v, axis=0, out=rise)
            v -= rise
            total += rise
            neg_e -= rise
            window.append(rise.copy())
            if len(window) >= depth:
                neg_e += window.popleft()
        finish[:, :, lo:hi] = total.reshape(reps, k_tiles, hi - lo, groups)
    return finish


def _lane_costs(w: np.ndarray, channels: np.ndarray, table: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``lane_costs`` of :func:`fifo_finish` for lanes laid out as ``channels [G, lanes]`` (``-1`` = padding) over
    the k-tiles' blocks ``ks [KT, blocks]``: ``[blocks, lanes, 2 * Rw * KT, G]``."""
    picked = w[:, np.maximum(channels, 0)][..., ks].astype(np.intp)              # [Rw, G, lanes, KT, blocks]
    valid = (channels >= 0)[None, :, :, None, None]
    costs = np.stack([np.where(valid, table[picked, a], 0) for a in (0, 1)])     # [2, Rw, G, lanes, KT, blocks]
    costs = costs.transpose(5, 3, 0, 1, 4, 2)                                   # [blocks, lanes, 2, Rw, KT, G]
    return np.ascontiguousarray(costs.reshape(costs.shape[:2] + (-1, costs.shape[-1])))


def _classes(total: int, size: int) -> list[tuple[slice, int]]:
    """The tiles along a dimension grouped by extent: ``(tile indices, extent)`` of the full tiles and of a short
    last tile."""
    full, rest = divmod(total, size)
    return ([(slice(0, full), size)] if full else []) + ([(slice(full, full + 1), rest)] if rest else [])


def _k_classes(kb: int, tkb: int) -> list[tuple[slice, np.ndarray]]:
    """``(k-tile indices, their blocks [KT, blocks])`` of the full k-tiles and of a short last one."""
    return [(kts, np.arange(kts.start, kts.stop)[:, None] * tkb + np.arange(blocks))
            for kts, blocks in _classes(kb, tkb)]


def ws_slowest(w: np.ndarray, a: np.ndarray, m: int, n: int, kb: int, tm: int, tn: int, tkb: int, pe: PEArray,
               table: np.ndarray) -> np.ndarray:
    """Weight stationary: every tile's lanes' finish with bounded FIFOs, ``[R, NT, KT, MT]``, for maps
    ``w [Rw, N, KB]``, ``a [Ra, M, KB]`` (PE group = n-tile x PE, its lanes consecutive channels)."""
    lanes = min(pe.lanes_per_pe, tn)
    per_tile = -(-tn // lanes)
    n_tiles = -(-n // tn)
    offset = np.arange(per_tile * lanes).reshape(per_tile, lanes)
    channels = np.arange(n_tiles)[:, None, None] * tn + offset
    channels = np.where((offset < tn) & (channels < n), channels, -1).reshape(-1, lanes)
    table = table.astype(state_type(pe))
    out = np.empty((max(w.shape[0], a.shape[0]), n_tiles, -(-kb // tkb), -(-m // tm)), dtype=np.int64)
    for kts, ks in _k_classes(kb, tkb):
        costs = _lane_costs(w, channels, table, ks)
        for mts, rows in _classes(m, tm):
            order = item_order(rows, ks.shape[1], pe, ws=True)
            row_of = np.arange(mts.start, mts.stop)[None, :] * tm + np.array([r for r, _ in order])[:, None]
            block_of = ks.T[[k for _, k in order]]                                          # [I, KTc]
            act = a[:, row_of[:, None, :], block_of[:, :, None]].transpose(1, 0, 2, 3)     # [I, Ra, KTc, MTc]
            finish = fifo_finish(costs, act, order, pe.lane_fifo_depth)   # [R, KTc, MTc, G]
            pes = finish.reshape(finish.shape[:3] + (n_tiles, per_tile)).max(axis=-1)       # [R, KTc, MTc, NT]
            out[:, :, kts, mts] = pes.transpose(0, 3, 1, 2)
    return out


def os_slowest(w: np.ndarray, a: np.ndarray, m: int, n: int, kb: int, tm: int, tn: int, tkb: int, pe: PEArray,
               table: np.ndarray) -> np.ndarray:
    """Output stationary: every tile's lanes' finish with bounded FIFOs, ``[R, MT, NT, KT]`` (PE = row of the
    m-tile, its lanes the n-tile's columns)."""
    n_tiles = -(-n // tn)
    channels = np.arange(n_tiles)[:, None] * tn + np.arange(tn)
    channels = np.where(channels < n, channels, -1)
    table = table.astype(state_type(pe))
    out = np.empty((max(w.shape[0], a.shape[0]), -(-m // tm), n_tiles, -(-kb // tkb)), dtype=np.int64)
    for kts, ks in _k_classes(kb, tkb):
        order = item_order(1, ks.shape[1], pe, ws=False)
        act = a[:, :, ks.T].transpose(2, 0, 3, 1)                                           # [I, Ra, KTc, M]
        finish = fifo_finish(_lane_costs(w, channels, table, ks), act, order, pe.lane_fifo_depth)
        tiles = group_reduce(finish, tm, axis=2, ufunc=np.maximum)                          # [R, KTc, MT, NT]
        out[:, :, :, kts] = tiles.transpose(0, 2, 3, 1)
    return out
