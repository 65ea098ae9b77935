"""The tiles of one op as a 5-D grid whose C order is the execution order.

Axes ``(r, ch, nt, kt, i)``: repeat, M-chunk, n-tile, k-tile, m-tile within the chunk (m-tile
``mt = ch * chunk_tiles + i``). Weight stationary iterates exactly this way; output stationary is the same grid with
one m-tile per chunk (``ch = mt``, ``i = 0``). A short last chunk leaves grid points with ``mt >= m_tiles``: they
are masked out of sums and dropped when the grid is flattened.

Per-tile quantities are kept as small *factors* broadcastable to the grid (e.g. weight-tile bits ``[r, nt, kt]``),
so op totals are sums of factor products computed without materializing the grid (:meth:`Grid.total`); only the
per-tile cycle arrays the schedule needs are materialized (:meth:`Grid.flat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fgmpsim.sim.mapping import Tiling

AXES = ("r", "ch", "nt", "kt", "i")


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

    def flat(self, factor: np.ndarray | int) -> np.ndarray:
        """A factor materialized over every tile, int64, in execution order."""
        full = np.broadcast_to(np.asarray(factor, dtype=np.int64), self.shape)
        if self.ragged:
            return full[np.broadcast_to(self.valid.astype(bool), self.shape)]
        return np.ascontiguousarray(full).reshape(-1)
