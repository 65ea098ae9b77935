"""The tiles of one op as a 5-D grid whose C order is the execution order.

Axes ``(r, ch, nt, kt, i)``: repeat, M-chunk, n-tile, k-tile, m-tile within the chunk (m-tile
``mt = ch * chunk_tiles + i``). Weight stationary iterates exactly this way; output stationary is the same grid with
one m-tile per chunk (``ch = mt``, ``i = 0``). A short last chunk leaves grid points with ``mt >= m_tiles``: they
are masked out of sums and dropped when the grid is flattened.

Per-tile quantities are kept as small *factors* broadcastable to the grid (e.g. weight-tile bits ``[r, nt, kt]``),
so op totals are sums of factor products computed without materializing the grid (:meth:`Grid.total`). Per-tile
cycles are :class:`Term` s: a factor over a *box* of the grid (a fill that happens only on the first m-tile of a
chunk lives on the box ``i = 0``), added straight into a step buffer in execution order (:meth:`Grid.add`) through
strided views of the buffer, so neither the zeros outside the box nor a flat copy of the factor is ever made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fgmpsim.sim.mapping import Tiling

AXES = ("r", "ch", "nt", "kt", "i")


@dataclass(frozen=True, eq=False)
class Term:
    """A per-tile quantity that is ``value`` on the grid points of ``box`` (one ``slice`` per grid axis, with
    explicit bounds) and zero elsewhere. ``value`` is 5-D; each axis has length 1 (broadcast) or the box's extent."""

    box: tuple[slice, ...]
    value: np.ndarray


@dataclass(frozen=True, eq=False)
class Mask:
    """Where a 5-D 0/1 flag factor is non-zero: the smallest box holding those points (``None``: the flag is zero
    everywhere) and the flag cropped to it (``inside``; ``None`` when the flag is 1 on the whole box). Made once per
    tile plan, applied to every op's values by :meth:`Grid.term`."""

    box: tuple[slice, ...] | None
    inside: np.ndarray | None = None


@dataclass(frozen=True)
class Grid:
    """Grid sizes of one op (see the module docstring)."""

    repeat: int
    chunks: int
    n_tiles: int
    k_tiles: int
    chunk_tiles: int
    m_tiles: int

    @staticmethod
    def of(tiling: Tiling) -> Grid:
        ct = tiling.chunk_tiles
        return Grid(tiling.shape.repeat, -(-tiling.m_tiles // ct), tiling.n_tiles, tiling.k_tiles, ct,
                    tiling.m_tiles)

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return self.repeat, self.chunks, self.n_tiles, self.k_tiles, self.chunk_tiles

    @property
    def ragged(self) -> bool:
        """True when the last chunk is short (some grid points are not tiles)."""
        return self.chunks * self.chunk_tiles != self.m_tiles

    @property
    def tiles(self) -> int:
        return self.repeat * self.m_tiles * self.n_tiles * self.k_tiles

    def place(self, values: np.ndarray, axes: str) -> np.ndarray:
        """A 5-D factor from an array whose axes are named by ``axes`` (space separated, grid axes or ``mt``, which
        is split into ``ch, i`` padding with zeros). An ``r`` axis of length 1 broadcasts over repeats."""
        names = axes.split()
        values = np.asarray(values)
        if "mt" in names:
            at = names.index("mt")
            pad = self.chunks * self.chunk_tiles - values.shape[at]
            if pad:
                widths = [(0, 0)] * values.ndim
                widths[at] = (0, pad)
                values = np.pad(values, widths)
            values = values.reshape(values.shape[:at] + (self.chunks, self.chunk_tiles) + values.shape[at + 1:])
            names[at:at + 1] = ["ch", "i"]
        order = [names.index(a) for a in AXES if a in names]
        values = values.transpose(order)
        present = [a for a in AXES if a in names]
        return values.reshape([values.shape[present.index(a)] if a in present else 1 for a in AXES])

    def index(self, axis: str) -> np.ndarray:
        """The grid coordinate along ``axis`` (``mt`` allowed) as a factor."""
        size = self.m_tiles if axis == "mt" else self.shape[AXES.index(axis)]
        return self.place(np.arange(size), axis)

    @cached_property
    def chunk_lengths(self) -> np.ndarray:
        """m-tiles in each M-chunk (1-D; the last chunk may be short)."""
        return np.minimum(self.chunk_tiles, self.m_tiles - np.arange(self.chunks) * self.chunk_tiles)

    @cached_property
    def valid(self) -> np.ndarray:
        """1 for grid points that are tiles, 0 for the padding of a short last chunk (int64 factor)."""
        mt = np.arange(self.chunks)[:, None] * self.chunk_tiles + np.arange(self.chunk_tiles)[None, :]
        return (mt < self.m_tiles).astype(np.int64).reshape(1, self.chunks, 1, 1, self.chunk_tiles)

    def total(self, *factors: np.ndarray) -> int:
        """Sum over all tiles of the product of ``factors`` (5-D, broadcastable to the grid). Each factor first sums
        out the axes no other factor holds, so the product that follows is small."""
        arrays = [*factors, self.valid] if self.ragged else list(factors)
        shapes = [a.shape for a in arrays]
        holders = [sum(shape[ax] > 1 for shape in shapes) for ax in range(len(AXES))]
        scale = 1
        for size, held in zip(self.shape, holders):
            if not held:
                scale *= size
        product = None
        for a, shape in zip(arrays, shapes):
            private = tuple(ax for ax in range(len(AXES)) if shape[ax] > 1 and holders[ax] == 1)
            part = a.sum(axis=private, keepdims=True, dtype=np.int64) if private else a
            product = part if product is None else product * part
        return scale * int(product.sum(dtype=np.int64))

    def box(self, flag: np.ndarray) -> tuple[slice, ...] | None:
        """The smallest box holding every non-zero point of the 5-D factor ``flag`` (``None`` if it is all zero)."""
        if not flag.any():
            return None
        box = []
        for ax, size in enumerate(self.shape):
            if flag.shape[ax] == 1:
                box.append(slice(0, size))
                continue
            hit = np.flatnonzero(flag.any(axis=tuple(a for a in range(len(AXES)) if a != ax)))
            box.append(slice(int(hit[0]), int(hit[-1]) + 1))
        return tuple(box)

    def mask(self, flag: np.ndarray) -> Mask:
        """The :class:`Mask` of a 5-D 0/1 factor."""
        box = self.box(flag)
        if box is None:
            return Mask(None)
        inside = crop(flag, box)
        return Mask(box, None if inside.all() else inside)

    def term(self, value: np.ndarray, where: np.ndarray | Mask | None = None) -> Term | None:
        """``value * flag`` (5-D factors) as a :class:`Term` on the box of the flag's non-zero points; ``where``:
        the flag or its :class:`Mask`, ``None`` meaning everywhere. ``None`` when the product is zero everywhere."""
        value = np.asarray(value, dtype=np.int64)
        if where is None:
            return Term(tuple(slice(0, size) for size in self.shape), value)
        mask = where if isinstance(where, Mask) else self.mask(where)
        if mask.box is None:
            return None
        inside = crop(value, mask.box)
        return Term(mask.box, inside if mask.inside is None else inside * mask.inside)

    @cached_property
    def _regions(self) -> tuple[tuple[tuple[slice, ...], int, tuple[int, ...]], ...]:
        """The parts of the grid stored as one strided block of the execution-order sequence: (box, offset of the
        box's first tile within a repeat, element strides per axis). All of it, or, with a short last chunk, every
        chunk but the last, then the last chunk's tiles."""
        r, ch, nt, kt, ct = self.shape
        per_repeat = self.m_tiles * nt * kt
        full = (per_repeat, nt * kt * ct, kt * ct, ct, 1)
        if not self.ragged:
            return (((slice(0, r), slice(0, ch), slice(0, nt), slice(0, kt), slice(0, ct)), 0, full),)
        short = self.m_tiles - (ch - 1) * ct
        regions = [((slice(0, r), slice(ch - 1, ch), slice(0, nt), slice(0, kt), slice(0, short)),
                    (ch - 1) * nt * kt * ct, (per_repeat, 0, kt * short, short, 1))]
        if ch > 1:
            regions.insert(0, ((slice(0, r), slice(0, ch - 1), slice(0, nt), slice(0, kt), slice(0, ct)), 0, full))
        return tuple(regions)

    def _parts(self, term: Term):
        """(index of the first tile in the repeat-0 sequence, element strides, extent, value crop) of every region
        ``term`` touches."""
        if not self.ragged:  # one region, the whole grid: the value is already cropped to the box
            strides = self._regions[0][2]
            yield (sum(b.start * s for b, s in zip(term.box, strides)), strides,
                   [b.stop - b.start for b in term.box], term.value)
            return
        for region, offset, strides in self._regions:
            lo = [max(a.start, b.start) for a, b in zip(term.box, region)]
            hi = [min(a.stop, b.stop) for a, b in zip(term.box, region)]
            if any(h <= low for low, h in zip(lo, hi)):
                continue
            rel = tuple(slice(low - b.start, h - b.start) if n > 1 else slice(None)
                        for low, h, b, n in zip(lo, hi, term.box, term.value.shape))
            first = offset + sum((low - b.start) * s for low, b, s in zip(lo, region, strides))
            yield first, strides, [h - low for low, h in zip(lo, hi)], term.value[rel]

    def add(self, buffer: np.ndarray, start: int, term: Term) -> None:
        """Add ``term`` to ``buffer[start + j]`` for every tile ``j`` (execution order) in its box, in place
        (``buffer``: 1-D and contiguous, as the step buffers are; numpy refuses a view past its end)."""
        size = buffer.itemsize
        for first, strides, extent, value in self._parts(term):
            view = np.ndarray(extent, buffer.dtype, buffer, (start + first) * size, [s * size for s in strides])
            np.add(view, value, out=view)

    def term_total(self, term: Term) -> int:
        """Sum of ``term`` over the tiles of its box."""
        if not self.ragged:  # one region: the value times the box's extent along its broadcast axes
            copies = 1
            for b, n in zip(term.box, term.value.shape):
                copies *= b.stop - b.start if n == 1 else 1
            return copies * int(term.value.sum(dtype=np.int64))
        total = 0
        for _, _, extent, value in self._parts(term):
            copies = 1
            for n, e in zip(value.shape, extent):
                copies *= e if n == 1 else 1
            total += copies * int(value.sum(dtype=np.int64))
        return total


def crop(factor: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """The part of a 5-D factor inside ``box`` (broadcast axes stay length 1)."""
    return factor[tuple(b if n > 1 else slice(None) for b, n in zip(box, factor.shape))]
