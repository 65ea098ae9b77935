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
    table = pe.cycles_per_block_pair.as_table()
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


def _state_type(depth: int, c_max: int) -> type:
    bound = (depth + 1) * c_max
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if bound <= np.iinfo(t).max)


def fifo_finish(base: np.ndarray, delta: np.ndarray, act: np.ndarray, order: list[tuple[int, int]], depth: int,
                c_max: int, chunk_axis: int) -> np.ndarray:
    """Cycles until every PE's last lane finishes its items (``H[I - 1]``), int64, shape ``state[1:]``.

    The state is ``[lanes, *rest]``; item ``i = order[j] = (row, block)`` costs lane ``l`` of state point ``x``
    ``base[block][l, x] + act[j][x] * delta[block][l, x]`` cycles: ``base``/``delta`` ``[blocks, lanes, ...]``
    (per weight block; zero on padding lanes, which then never lead their PE), ``act`` ``[I, 1, ...]`` (1 where
    the item's activation block is FP8), all broadcastable to the state. ``chunk_axis``: an axis of the state
    (``>= 1``) split into cache-sized chunks."""
    shape = np.broadcast_shapes(base.shape[1:], delta.shape[1:], act.shape[1:])
    dtype = _state_type(depth, c_max)
    finish = np.empty(shape[1:], dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS * shape[chunk_axis] // int(np.prod(shape)))
    for lo in range(0, shape[chunk_axis], step):
        part = [slice(None)] * len(shape)
        part[chunk_axis] = slice(lo, lo + step)

        def cut(a: np.ndarray, first: int = 0) -> np.ndarray:
            index = list(part)
            index[chunk_axis] = part[chunk_axis] if a.shape[chunk_axis + first] > 1 else slice(None)
            return a[(slice(None),) * first + tuple(index)]

        b, d = cut(base, 1).astype(dtype), cut(delta, 1).astype(dtype)
        acts = cut(act, 1).astype(dtype)
        sub = np.broadcast_shapes(b.shape[1:], d.shape[1:], acts.shape[1:])
        v, cost = np.zeros(sub, dtype), np.empty(sub, dtype)
        rise, neg_e = np.empty(sub[1:], dtype), np.zeros(sub[1:], dtype)
        total = np.zeros(sub[1:], np.int64)
        window: deque[np.ndarray] = deque()
        for j, (_, block) in enumerate(order):
            np.multiply(acts[j], d[block], out=cost)
            cost += b[block]
            np.maximum(v, neg_e, out=v)
            v += cost
            np.maximum.reduce(v, axis=0, out=rise)
            v -= rise
            total += rise
            neg_e -= rise
            window.append(rise.copy())
            if len(window) >= depth:
                neg_e += window.popleft()
        finish[tuple(part[1:])] = total
    return finish


def _weight_factors(w: np.ndarray, channels: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(base, delta)`` of every weight block for lanes laid out as ``channels`` ``[G, lanes]`` (``-1`` = a
    padding lane), ``[KB, lanes, Rw, G]``: ``base = c[w][0]``, ``delta = c[w][1] - c[w][0]``, zero on padding."""
    picked = w[:, np.maximum(channels, 0), :].astype(np.intp)                   # [Rw, G, lanes, KB]
    valid = (channels >= 0)[None, :, :, None]
    base = np.where(valid, table[picked, 0], 0).transpose(3, 2, 0, 1)
    delta = np.where(valid, table[picked, 1] - table[picked, 0], 0).transpose(3, 2, 0, 1)
    return base, delta


def _classes(total: int, size: int) -> list[tuple[slice, int]]:
    """The tiles along a dimension grouped by extent: ``(tile indices, extent)`` of the full tiles and of a short
    last tile."""
    full, rest = divmod(total, size)
    return ([(slice(0, full), size)] if full else []) + ([(slice(full, full + 1), rest)] if rest else [])


def _finish(base: np.ndarray, delta: np.ndarray, act: np.ndarray, order: list[tuple[int, int]], pe: PEArray,
            table: np.ndarray, swap: bool) -> np.ndarray:
    """:func:`fifo_finish` on state axes ``[lanes, r, kt, rows, channels]`` (``act`` varies along rows, the
    chunked axis; ``base``/``delta`` along channels); ``swap`` makes rows the last, contiguous axis (numpy's inner
    loop runs along it: the longer of the two should be last). Returns ``[r, kt, rows, channels]``."""
    if not swap:
        return fifo_finish(base, delta, act, order, pe.lane_fifo_depth, int(table.max()), chunk_axis=3)
    swap = [np.ascontiguousarray(np.swapaxes(x, -1, -2)) for x in (base, delta, act)]
    return np.swapaxes(fifo_finish(*swap, order, pe.lane_fifo_depth, int(table.max()), chunk_axis=4), -1, -2)


def ws_slowest(w: np.ndarray, a: np.ndarray, m: int, n: int, kb: int, tm: int, tn: int, tkb: int, pe: PEArray,
               table: np.ndarray) -> np.ndarray:
    """Weight stationary: every tile's lanes' finish with bounded FIFOs, ``[R, NT, KT, MT]``, for maps
    ``w [Rw, N, KB]``, ``a [Ra, M, KB]``."""
    lanes = min(pe.lanes_per_pe, tn)
    per_tile = -(-tn // lanes)
    n_tiles = -(-n // tn)
    offset = np.arange(per_tile * lanes).reshape(per_tile, lanes)
    channels = np.arange(n_tiles)[:, None, None] * tn + offset
    channels = np.where((offset < tn) & (channels < n), channels, -1).reshape(-1, lanes)
    base, delta = _weight_factors(w, channels, table)                          # [KB, lanes, Rw, G]
    reps = max(w.shape[0], a.shape[0])
    out = np.empty((reps, n_tiles, -(-kb // tkb), -(-m // tm)), dtype=np.int64)
    for kts, blocks in _classes(kb, tkb):
        ks = np.arange(kts.start, kts.stop)[:, None] * tkb + np.arange(blocks)              # [KTc, blocks]
        b = base[ks].transpose(1, 2, 3, 0, 4)[:, :, :, :, None, :]                        # [blocks, l, Rw, KTc, 1, G]
        d = delta[ks].transpose(1, 2, 3, 0, 4)[:, :, :, :, None, :]
        for mts, rows in _classes(m, tm):
            order = item_order(rows, blocks, pe, ws=True)
            row0 = np.arange(mts.start, mts.stop) * tm
            rows_of = np.array([row0 + r for r, _ in order])                               # [I, MTc]
            blocks_of = np.array([ks[:, k] for _, k in order])                             # [I, KTc]
            act = a[:, rows_of[:, None, :], blocks_of[:, :, None]].transpose(1, 0, 2, 3)   # [I, Ra, KTc, MTc]
            finish = _finish(b, d, act[:, None, :, :, :, None], order, pe, table,
                             swap=act.shape[-1] > channels.shape[0])                # [R, KTc, MTc, G]
            pes = finish.reshape(finish.shape[:3] + (n_tiles, per_tile)).max(axis=-1)       # [R, KTc, MTc, NT]
            out[:, :, kts, mts] = pes.transpose(0, 3, 1, 2)
    return out


def os_slowest(w: np.ndarray, a: np.ndarray, m: int, n: int, kb: int, tm: int, tn: int, tkb: int, pe: PEArray,
               table: np.ndarray) -> np.ndarray:
    """Output stationary: every tile's lanes' finish with bounded FIFOs, ``[R, MT, NT, KT]`` (PE = row of the
    m-tile, its lanes the n-tile's columns)."""
    n_tiles = -(-n // tn)
    channels = np.arange(n_tiles)[:, None] * tn + np.arange(tn)
    base, delta = _weight_factors(w, np.where(channels < n, channels, -1), table)    # [KB, tn, Rw, NT]
    reps = max(w.shape[0], a.shape[0])
    out = np.empty((reps, -(-m // tm), n_tiles, -(-kb // tkb)), dtype=np.int64)
    for kts, blocks in _classes(kb, tkb):
        ks = np.arange(kts.start, kts.stop)[:, None] * tkb + np.arange(blocks)              # [KTc, blocks]
        b = base[ks].transpose(1, 2, 3, 0, 4)[:, :, :, :, None, :]                        # [blocks, tn, Rw, KTc, 1, NT]
        d = delta[ks].transpose(1, 2, 3, 0, 4)[:, :, :, :, None, :]
        order = item_order(1, blocks, pe, ws=False)
        act = a[:, :, ks.T].transpose(2, 0, 3, 1)                                          # [I, Ra, KTc, M]
        finish = _finish(b, d, act[:, None, :, :, :, None], order, pe, table,
                         swap=m > n_tiles)                                           # [R, KTc, M, NT]
        tiles = group_reduce(finish, tm, axis=2, ufunc=np.maximum)                        # [R, KTc, MT, NT]
        out[:, :, :, kts] = tiles.transpose(0, 2, 3, 1)
    return out
