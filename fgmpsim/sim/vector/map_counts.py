"""FP8 block counts of an op's maps grouped by tiles: the only passes over the full maps.

Everything the tile engine needs from a map is a count of FP8 blocks over some group of rows and blocks, so each
map is reduced once (rows grouped into tiles or PEs, a slab add per row of the group: far faster than
``np.add.reduceat`` along a middle axis) and every later step works on the small result.

Maps are ``[R, rows, KB]`` with ``R`` 1 (shared by all repeats) or the repeat count. A map in one precision
throughout arrives as a constant broadcast view (:class:`~fgmpsim.sim.hw.operands.OperandCache`): it is never read,
its counts are the group sizes (all FP8) or zero.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from fgmpsim.sim.mapping import Tiling
from fgmpsim.sim.hw.operands import Operands
from fgmpsim.trace.record import is_immutable
from fgmpsim.trace.synthetic_map import BytesLRU


def tile_starts(total: int, size: int) -> np.ndarray:
    """First index of every tile of ``size`` along a dimension of ``total``."""
    return np.arange(0, total, size)


def tile_sizes(total: int, size: int) -> np.ndarray:
    """Extent of every tile (the last one may be short), int64."""
    starts = tile_starts(total, size)
    return np.minimum(starts + size, total) - starts


_SLAB_MIN = 1 << 20
"""Elements from which a middle-axis reduction over groups of up to 64 runs slab by slab."""
_SLAB_SIZE = 16
"""Group size up to which a middle-axis reduction runs slab by slab whatever the map's size: ``ufunc.reduce`` over a
short middle axis walks it with a short inner loop (3-4x slower than the slab adds on a band's ``[32, rows, 1]``
word map); above it, on maps below :data:`_SLAB_MIN`, one call per group member would cost more than it saves."""


def group_reduce(values: np.ndarray, size: int, axis: int, ufunc: np.ufunc = np.add,
                 dtype: type | None = None) -> np.ndarray:
    """``ufunc`` (``np.add`` or ``np.maximum``) over consecutive groups of ``size`` along ``axis``; the last group
    may be short. Groups along a middle axis of a large array, and small groups (:data:`_SLAB_SIZE`) along any
    middle axis, are combined one slab at a time, an order of magnitude faster than ``ufunc.reduceat`` there.
    ``dtype``: accumulator type (default: that of ``values``). The groups are a reshape of ``axis`` in place (no
    axis moves: on the small arrays of most ops the call overhead is the cost)."""
    dtype = dtype or values.dtype
    before = (slice(None),) * axis
    length = values.shape[axis]
    full = length // size
    parts = []
    if full:
        main = values[(*before, slice(0, full * size))].reshape(
            values.shape[:axis] + (full, size) + values.shape[axis + 1:])
        if axis == values.ndim - 1 or size > 64 or (size > _SLAB_SIZE and main.size < _SLAB_MIN):
            parts.append(ufunc.reduce(main, axis=axis + 1, dtype=dtype))
        else:
            acc = main[(*before, slice(None), 0)].astype(dtype)
            for j in range(1, size):
                ufunc(acc, main[(*before, slice(None), j)], out=acc)
            parts.append(acc)
    if full * size < length:
        parts.append(ufunc.reduce(values[(*before, slice(full * size, None))], axis=axis, dtype=dtype,
                                  keepdims=True))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def group_count(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Sums over groups of ``size`` along ``axis`` (see :func:`group_reduce`) in the narrowest exact type: ``bool``
    input counts True, ``uint8`` for groups of fewer than 256 along a middle axis of a contiguous map (summed eight
    columns at a time: each byte of a ``uint64`` word is the counter of one column, and a count below 256 never
    carries into its neighbour), else ``int32``; narrow integer input (at most 16 bits) accumulates in ``int32``,
    anything else in ``int64``. A caller that only sums the result again keeps it narrow (less memory traffic);
    :func:`group_sum` widens it."""
    if values.dtype == np.bool_:
        counts = values.view(np.uint8)
        if axis != values.ndim - 1 and size < 256 and counts.flags.c_contiguous and counts.shape[-1] % 8 == 0:
            return group_reduce(counts.view(np.uint64), size, axis).view(np.uint8)
        return group_reduce(counts, size, axis, dtype=np.int32)
    narrow = values.dtype.kind in "ui" and values.dtype.itemsize <= 2 and size < 1 << 15
    return group_reduce(values, size, axis, dtype=np.int32 if narrow else np.int64)


def group_sum(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """:func:`group_count` widened to ``int64``."""
    return group_count(values, size, axis).astype(np.int64, copy=False)


def total_count(counts: np.ndarray, axis: int) -> np.ndarray:
    """``counts`` (non-negative, e.g. :func:`group_count`'s) summed over ``axis``, int64: accumulated in ``int32``
    when the largest possible sum fits it."""
    narrow = counts.dtype.itemsize <= 2 and counts.shape[axis] << 8 * counts.dtype.itemsize < 1 << 31
    return counts.sum(axis=axis, dtype=np.int32 if narrow else np.int64).astype(np.int64, copy=False)


def constant_value(pmap: np.ndarray) -> bool | None:
    """The value of a constant map given as a broadcast view (every stride 0), else ``None``."""
    return bool(pmap.flat[0]) if pmap.size and not any(pmap.strides) else None


def map_group_sum(pmap: np.ndarray, size: int, axis: int) -> np.ndarray:
    """FP8 blocks of ``pmap`` over groups of ``size`` along ``axis`` (:func:`group_sum`); a constant map is not
    read."""
    value = constant_value(pmap)
    if value is None:
        return group_sum(pmap, size, axis)
    return _constant_counts(pmap, tile_sizes(pmap.shape[axis], size) * int(value), axis)


def _constant_counts(pmap: np.ndarray, counts: np.ndarray, axis: int) -> np.ndarray:
    """``counts`` (one per group along ``axis``) broadcast over the other axes of ``pmap``, as a read-only view."""
    shape = list(pmap.shape)
    shape[axis] = len(counts)
    return np.broadcast_to(np.expand_dims(counts, tuple(a for a in range(pmap.ndim) if a != axis)), shape)


@dataclass(frozen=True)
class MapCounts:
    """FP8 blocks of an op's maps (each array has a leading repeat axis of 1 or ``repeat``).

    ``w_cols``/``a_cols`` ``[R, KB]``: per block index (for the MAC count per mode); ``w_tiles`` ``[R, NT, KT]`` and
    ``x_tiles`` ``[R, MT, KT]``: per weight / X tile. Weight stationary: ``a_mt_kb`` ``[R, MT, KB]`` per m-tile and
    block (lane work), ``w_pe_kt`` ``[R, PEs, KT]`` per PE group of channels (``pe_lanes`` channels each, ``pe_first``
    the first PE of every n-tile; ``a_mt_kb`` in :func:`group_count`'s narrow type, every other array int64).
    Output stationary: ``a_rows_kt`` ``[R, M, KT]`` and ``w_rows_kt`` ``[R, N, KT]``
    per row (lane work, the fullest input row)."""

    w_cols: np.ndarray
    a_cols: np.ndarray
    w_tiles: np.ndarray
    x_tiles: np.ndarray
    a_mt_kb: np.ndarray | None = None
    w_pe_kt: np.ndarray | None = None
    pe_lanes: np.ndarray | None = None
    pe_first: np.ndarray | None = None
    a_rows_kt: np.ndarray | None = None
    w_rows_kt: np.ndarray | None = None


COUNT_CACHE_BYTES = 384 << 20
"""Bytes of :class:`MapCounts` kept across simulations (least recently used first out): a sweep point that keeps an
op's tiling (another clock, bandwidth, AQU or energy table) does not pass over its maps again. Only immutable maps
are cached: lazy (synthetic) maps and read-only arrays; a writable array may change between two simulations. A
Llama-2-7B prefill point (2048 tokens, causal bands included) holds about 80 MB with ``lanes_per_pe=8``, so the
counts of the last four or five tilings stay; a point that did not fit would miss on every op, since each would evict
the counts the next one needs."""

_COUNTS = BytesLRU(COUNT_CACHE_BYTES)


def _held_bytes(arrays: list[np.ndarray]) -> int:
    """Bytes of the buffers ``arrays`` keep alive (a view counts its base once; a broadcast view its small
    source)."""
    bases = {}
    for array in arrays:
        while isinstance(array.base, np.ndarray):
            array = array.base
        bases[id(array)] = array.nbytes
    return sum(bases.values())


def _contiguous(pmap: np.ndarray) -> np.ndarray:
    """``pmap`` in one C-ordered buffer (a causal op's band is a view of its op's map; :func:`group_sum` is fastest on
    contiguous maps), a constant view kept as it is."""
    return pmap if constant_value(pmap) is not None else np.ascontiguousarray(pmap)


def _count(ops: Operands, tiling: Tiling, lanes_per_pe: int) -> MapCounts:
    """:func:`count_maps` of an op's operands, with a causal band's weight PE-group counts cut from its op's
    (``Operands.w_groups``) when they are."""
    known = ops.w_groups(tiling.mapping.tile_n, lanes_per_pe) if ops.w_groups and tiling.ws else None
    return count_maps(ops.w if known is not None else _contiguous(ops.w), _contiguous(ops.a), tiling, lanes_per_pe,
                      known)


def op_counts(ops: Operands, tiling: Tiling, lanes_per_pe: int, datapath_precisions: tuple[str, ...]) -> MapCounts:
    """:func:`count_maps` of an op's operands, cached across simulations by the trace's map objects (held by the
    cache, so their identity stays unique; a causal op's band: its op's, and its cuts of them,
    ``Operands.source``), the operand formats and their routes, the datapath precisions, the tiling and the lanes
    per PE."""
    op = ops.op
    weight_map, act_map, *cuts = ops.source or (op.weight_map, op.act_map)
    if not (is_immutable(weight_map) and is_immutable(act_map)):
        return _count(ops, tiling, lanes_per_pe)
    key = (id(weight_map), id(act_map), *cuts, op.weight_format, op.act_format, ops.routes, datapath_precisions,
           tiling, lanes_per_pe)
    hit = _COUNTS.get(key)
    if hit is not None:
        return hit[2]
    counts = _count(ops, tiling, lanes_per_pe)
    arrays = [a for a in (getattr(counts, f.name) for f in fields(counts)) if isinstance(a, np.ndarray)]
    for array in arrays:
        array.flags.writeable = False  # shared by later simulations: nobody may change it
    _COUNTS.put(key, (weight_map, act_map, counts), _held_bytes(arrays))
    return counts


@lru_cache(maxsize=256)
def pe_groups(n: int, tn: int, lpp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PE groups of ``n`` channels in n-tiles of ``tn``, lane ``j`` of an n-tile in PE ``j // lpp``: the first
    channel and the channels of every group, and the first group of every n-tile (read only: cached, shared by every
    op of that shape)."""
    starts = np.concatenate([np.arange(s, min(s + tn, n), lpp) for s in tile_starts(n, tn)])
    groups = (starts, np.diff(starts, append=n), np.searchsorted(starts, tile_starts(n, tn)))
    for array in groups:
        array.flags.writeable = False
    return groups


def _ws_act_counts(a: np.ndarray, tm: int, tkb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FP8 blocks of the activation map ``a [R, M, KB]`` per m-tile and block ``[R, MT, KB]`` (in
    :func:`group_count`'s narrow type), per X tile ``[R, MT, KT]`` and per block ``[R, KB]`` (int64); for a constant
    map, int64 products of group sizes (the map is never read)."""
    value = constant_value(a)
    if value is None:
        counts = group_count(a, tm, axis=1)  # kept narrow: a eighth of the bytes held by the count cache
        return counts, group_sum(counts, tkb, axis=2), total_count(counts, axis=1)
    rows = tile_sizes(a.shape[1], tm) * int(value)
    tiles = rows[:, None] * tile_sizes(a.shape[2], tkb)
    return (_constant_counts(a, rows, axis=1), np.broadcast_to(tiles, (a.shape[0], *tiles.shape)),
            np.broadcast_to(np.int64(a.shape[1] * int(value)), (a.shape[0], a.shape[2])))


def pe_group_counts(w: np.ndarray, tn: int, lpp: int) -> np.ndarray:
    """FP8 blocks of ``w [R, N, KB]`` per PE group of channels (:func:`pe_groups`) and block, ``[R, PEs, KB]``:
    narrow (:func:`group_count`) when n-tiles hold whole groups, int64 otherwise and for a constant map (not read)."""
    starts, pe_lanes, _ = pe_groups(w.shape[1], tn, lpp)
    value = constant_value(w)
    if value is not None:
        return _constant_counts(w, pe_lanes * int(value), axis=1)
    if tn % lpp == 0:
        return group_count(w, lpp, axis=1)
    return np.add.reduceat(w.view(np.uint8), starts, axis=1, dtype=np.int64)


def count_maps(w: np.ndarray, a: np.ndarray, tiling: Tiling, lanes_per_pe: int,
               w_pe_kb: np.ndarray | None = None) -> MapCounts:
    """Group the FP8 blocks of ``w [R, N, KB]`` and ``a [R, M, KB]`` as :class:`MapCounts` describes.
    ``w_pe_kb``: weight stationary, :func:`pe_group_counts` of ``w`` when already known (a causal band's, cut from
    its op's: :mod:`fgmpsim.sim.hw.causal`); ``w`` is then not read."""
    mp = tiling.mapping
    tm, tn, tkb = mp.tile_m, mp.tile_n, mp.tile_k_blocks
    if tiling.ws:
        a_mt_kb, x_tiles, a_cols = _ws_act_counts(a, tm, tkb)
        _, pe_lanes, pe_first = pe_groups(w.shape[1], tn, lanes_per_pe)
        if w_pe_kb is None:
            w_pe_kb = pe_group_counts(w, tn, lanes_per_pe)
        w_pe_kt = group_sum(w_pe_kb, tkb, axis=2)
        return MapCounts(w_cols=total_count(w_pe_kb, axis=1), a_cols=a_cols,
                         w_tiles=np.add.reduceat(w_pe_kt, pe_first, axis=1), x_tiles=x_tiles,
                         a_mt_kb=a_mt_kb, w_pe_kt=w_pe_kt, pe_lanes=pe_lanes, pe_first=pe_first)
    a_rows_kt = map_group_sum(a, tkb, axis=2)
    w_rows_kt = map_group_sum(w, tkb, axis=2)
    return MapCounts(w_cols=map_group_sum(w, w.shape[1], axis=1)[:, 0],
                     a_cols=map_group_sum(a, a.shape[1], axis=1)[:, 0],
                     w_tiles=group_sum(w_rows_kt, tn, axis=1), x_tiles=group_sum(a_rows_kt, tm, axis=1),
                     a_rows_kt=a_rows_kt, w_rows_kt=w_rows_kt)


def mode_pairs(counts: MapCounts, n: int, m: int, repeat: int) -> np.ndarray:
    """Block pairs of the op per mode, int64 ``[2, 2]`` indexed ``[w_fp8][a_fp8]``: ``sum_r sum_kb`` (#rows of W
    with precision x at kb) x (#rows of A with precision y at kb)."""
    w, a = counts.w_cols, counts.a_cols  # [1 or R, KB] each, broadcast against each other
    rows = max(w.shape[0], a.shape[0])
    both = int((w * a).sum(dtype=np.int64))
    w_all = int(w.sum(dtype=np.int64)) * (rows // w.shape[0])
    a_all = int(a.sum(dtype=np.int64)) * (rows // a.shape[0])
    cells = rows * w.shape[1]
    pairs = np.array([[n * m * cells - m * w_all - n * a_all + both, n * a_all - both],
                      [m * w_all - both, both]], dtype=np.int64)
    return pairs * (repeat if rows == 1 else 1)
