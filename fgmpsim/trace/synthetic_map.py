"""Lazy synthetic precision maps: a seed and a few numbers instead of the bits.

Model (fitted to real FGMP maps, see ``docs/synthetic_traces.md``): block ``(h, r, c)`` of a map
``[heads, rows, cols]`` is FP8 with probability ``sigmoid(a[h, r] + b[h, c] + mu)``, where the row effects
``a ~ N(0, row_sigma^2)`` and column effects ``b ~ N(0, col_sigma^2)`` are drawn once per map (logit units).
Columns are block indices along K (input channels / outlier channels for activations), rows are output channels
(weights) or tokens (activations). Sampling that model and then fixing the count is the same as ranking the scores
``a + b + logistic noise`` and marking the top ``fp8_blocks`` as FP8, which makes the FP8 count exact and leaves
``mu`` implicit.

With ``group > 1`` only ``heads / group`` distinct leading slices are drawn (with ``fp8_blocks / group`` FP8 blocks
among them) and each is repeated ``group`` times (grouped-query attention: the query heads of one group read the
same K/V maps).
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from fgmpsim.errors import TraceError, closest_hint, excerpt

GENERATOR = "synthetic"

_NOISE_LEVELS = 1 << 16
_LOGISTIC_NOISE = np.log((np.arange(_NOISE_LEVELS) + 0.5) / (_NOISE_LEVELS - np.arange(_NOISE_LEVELS) - 0.5)
                         ).astype(np.float32)
"""Standard logistic noise at the midpoints of 2^16 equal-probability bins: a uint16 draw indexes it (twice as fast
as ``log(u / (1 - u))`` on float draws; ties at the top-k cut are rare and broken by index)."""

CACHE_BYTES = 1 << 30
"""Bytes of bit-packed maps kept by :meth:`SyntheticMap.materialize` (1 GiB: every Llama-2-7B map, or a quarter of
Llama-2-70B's weights)."""


class BytesLRU:
    """Least-recently-used store bounded by the total bytes of its values (bit-packed maps here, map counts in
    :mod:`fgmpsim.sim.vector.map_counts`). A value larger than the whole budget is not stored."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any) -> Any:
        """The value stored under ``key`` (now the most recently used), or ``None``."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Any, value: Any, nbytes: int | None = None) -> None:
        """Store ``value`` taking ``nbytes`` (default: ``value.nbytes``), evicting the least recently used."""
        nbytes = value.nbytes if nbytes is None else nbytes
        if nbytes > self.capacity_bytes or key in self._items:
            return
        self._items[key] = (value, nbytes)
        self._bytes += nbytes
        while self._bytes > self.capacity_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self._bytes -= evicted


_MANIFEST_KEYS = ("generator", "shape", "fp8_blocks", "seed", "stream", "row_sigma", "col_sigma", "group")


@dataclass(frozen=True)
class SyntheticMap:
    """A lazy ``bool`` map of ``shape`` (2-D ``[rows, cols]`` or 3-D ``[heads, rows, cols]``, True = FP8) with
    exactly ``fp8_blocks`` True entries. ``seed`` and ``stream`` (e.g. ``"layers.3.mlp.down_proj/weight"``) fix
    the bits; ``row_sigma``/``col_sigma`` are the standard deviations of the row/column effects in logit units."""

    shape: tuple[int, ...]
    fp8_blocks: int
    seed: int
    stream: str
    row_sigma: float = 0.0
    col_sigma: float = 0.0
    group: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def blocks(self) -> int:
        """Number of blocks in the map."""
        return math.prod(self.shape)

    @property
    def fp8_fraction(self) -> float:
        """Fraction of blocks in FP8 (exact: ``fp8_blocks / blocks``)."""
        return self.fp8_blocks / self.blocks

    def materialize(self) -> np.ndarray:
        """The map as a ``bool`` array of ``shape``; same fields give the same bits on every platform.

        Maps are memoized (bit-packed, least recently used first out, :data:`CACHE_BYTES` in all), so a trace
        simulated on many architectures, or many decode steps over the same weights, generates each map once."""
        packed = _CACHE.get(self)
        if packed is None:
            bits = self._generate()
            _CACHE.put(self, np.packbits(bits.reshape(-1)))
            return bits
        return np.unpackbits(packed, count=self.blocks).view(np.bool_).reshape(self.shape)

    def _generate(self) -> np.ndarray:
        total = self.blocks
        if self.fp8_blocks == 0:
            return np.zeros(self.shape, dtype=np.bool_)
        if self.fp8_blocks == total:
            return np.ones(self.shape, dtype=np.bool_)
        heads = self.shape[0] if len(self.shape) == 3 else 1
        rows, cols = self.shape[-2:]
        distinct = heads // self.group
        rng = np.random.default_rng([self.seed, zlib.crc32(self.stream.encode())])
        row_effect = rng.standard_normal((distinct, rows, 1), dtype=np.float32) * np.float32(self.row_sigma)
        col_effect = rng.standard_normal((distinct, 1, cols), dtype=np.float32) * np.float32(self.col_sigma)
        score = _LOGISTIC_NOISE[rng.integers(0, _NOISE_LEVELS, size=(distinct, rows, cols), dtype=np.uint16)]
        score += row_effect
        score += col_effect
        distinct_bits = _top_blocks(score.reshape(-1), self.fp8_blocks // self.group).reshape(distinct, rows, cols)
        return np.repeat(distinct_bits, self.group, axis=0).reshape(self.shape)

    def to_manifest(self) -> dict[str, Any]:
        """YAML-safe fields; :meth:`from_manifest` rebuilds the same map."""
        return {"generator": GENERATOR, "shape": list(self.shape), "fp8_blocks": self.fp8_blocks,
                "seed": self.seed, "stream": self.stream, "row_sigma": self.row_sigma,
                "col_sigma": self.col_sigma, "group": self.group}

    @classmethod
    def from_manifest(cls, spec: dict[str, Any]) -> SyntheticMap:
        """Rebuild from :meth:`to_manifest` output; :class:`TraceError` names the bad field (unknown keys too)."""
        for key in spec:
            if key not in _MANIFEST_KEYS:
                raise TraceError(f"synthetic map spec has an unknown key {excerpt(str(key))}", str(key)[:60],
                                 closest_hint(str(key), _MANIFEST_KEYS))

        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if key not in spec:
                raise TraceError(f"synthetic map spec lacks {key!r}", key, "re-create the trace with trace synth")
            value = spec[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TraceError(f"synthetic map field {key!r} has the wrong type ({type(value).__name__}: "
                                 f"{excerpt(value)})", key,
                                 "re-create the trace with trace synth")
            return value

        shape = need("shape", list)
        if len(shape) not in (2, 3) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                               for s in shape):
            raise TraceError(f"synthetic map shape must be 2 or 3 positive integers, got {excerpt(shape)}", "shape",
                             "re-create the trace with trace synth")
        smap = cls(shape=tuple(shape), fp8_blocks=need("fp8_blocks", int), seed=need("seed", int),
                   stream=need("stream", str), row_sigma=float(need("row_sigma", (int, float))),
                   col_sigma=float(need("col_sigma", (int, float))), group=spec.get("group", 1))
        smap.validate()
        return smap

    def validate(self) -> None:
        """Raise :class:`TraceError` if the fields cannot describe a map."""
        if not 0 <= self.seed < 2**128:
            raise TraceError(f"seed must be in [0, 2**128), got {excerpt(self.seed)}", "seed", "use e.g. seed 0")
        if not 0 <= self.fp8_blocks <= self.blocks:
            raise TraceError(f"fp8_blocks={self.fp8_blocks} outside [0, {self.blocks}] for shape {self.shape}",
                             "fp8_blocks", "use a count between 0 and the number of blocks")
        if not (math.isfinite(self.row_sigma) and math.isfinite(self.col_sigma)
                and self.row_sigma >= 0 and self.col_sigma >= 0):
            raise TraceError(f"row_sigma/col_sigma must be finite and >= 0, got {self.row_sigma}, "
                             f"{self.col_sigma}", "row_sigma", "use non-negative effect sizes")
        if not isinstance(self.group, int) or isinstance(self.group, bool) or self.group < 1:
            raise TraceError(f"group must be a positive integer, got {self.group!r}", "group", "use 1 or more")
        heads = self.shape[0] if len(self.shape) == 3 else 1
        if self.fp8_blocks % self.group:
            raise TraceError(f"fp8_blocks={self.fp8_blocks} is not a multiple of group={self.group}", "fp8_blocks",
                             "the query heads of a KV group share one map: use a multiple of group")
        if heads % self.group:
            raise TraceError(f"group={self.group} does not divide the {heads} leading slices", "group",
                             "use a divisor of the repeat count")


_CACHE = BytesLRU(CACHE_BYTES)


def _top_blocks(score: np.ndarray, count: int) -> np.ndarray:
    """``bool`` mask of the ``count`` highest scores; ties at the cut go to the lowest indices (deterministic)."""
    cut = np.partition(score, score.size - count)[score.size - count]
    out = score > cut
    missing = count - int(np.count_nonzero(out))
    out[np.flatnonzero(score == cut)[:missing]] = True
    return out
