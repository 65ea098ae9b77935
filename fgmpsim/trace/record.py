"""The Trace record: every GEMM of a model's forward pass with its block-precision maps.

Conventions (see DESIGN.md, "Contracts"):

* A GEMM computes ``Y[M, N] = X[M, K] @ W[N, K]^T``, ``repeat`` times (heads x batch for attention).
* Blocks run along the reduction dimension K: ``KB = ceil(K / block_size)`` blocks; ``K`` may be any positive
  integer, the last block holding ``K - (KB - 1) * block_size`` real elements, zero-padded to a whole block (the block
  hardware has no partial format: storage, traffic and lane compute treat it as a whole block).
* A precision map is a ``bool`` array, ``True`` = high precision (FP8 E4M3), ``False`` = NVFP4.
  The weight-side map has shape ``[N, KB]`` (shared by all repeats) or ``[repeat, N, KB]``;
  the activation map ``[M, KB]`` or ``[repeat, M, KB]``.
* For attention (``static_weight=False``) the "weight side" is the dynamic second operand (K for ``attn_qk``,
  V^T for ``attn_pv``) whose map the AQU produced.
* ``consumer`` names the op that reads this op's output and ``consumer_operand`` which of its operands it becomes
  (``"act"`` or ``"weight"``, e.g. k_proj -> the K operand of attn_qk). The AQU quantizes the output blocks of an
  op that has a consumer; an op without one writes its output unquantized (BF16).
* ``causal`` (``attn_qk`` and ``attn_pv`` only): query row ``i`` of the op's ``M`` rows attends to the first
  ``keys - M + i + 1`` keys (``keys``: ``attn_qk``'s ``N``; for ``attn_pv`` the ``N`` of the ``attn_qk`` that
  feeds it, else its ``K``), the later ones are masked. Prefill traces set it; a trace of format version 1 or 2 has
  no such field and loads as dense (``causal=False``). How the simulator exploits it: :mod:`fgmpsim.sim.hw.causal`.
* ``weight_format`` / ``act_format`` (:mod:`fgmpsim.trace.formats`): how each operand is stored, ``mixed`` (the
  precision map above, versions 1-3) or a uniform format (``int4``, ``int8``, ``fp8``, ``fp4_pow2``, ``fp4_fp32``
  with a group size, format version 4) whose map is then constant (all True for 8-bit elements, all False for
  4-bit ones).
* A map may be *lazy* (a :class:`LazyMap`, e.g. a synthetic map stored as generator parameters and a seed) so that
  full-size traces (Llama-2-70B) never hold every map in memory at once; ``GemmOp.weight_map_array()`` materializes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from fgmpsim.errors import TraceError
from fgmpsim.trace.formats import MIXED, OperandFormat

OpKind = Literal["linear", "attn_qk", "attn_pv", "lm_head"]
OP_KINDS: tuple[str, ...] = ("linear", "attn_qk", "attn_pv", "lm_head")
TRACE_FORMAT_VERSION = 4
"""The newest trace format: version 4 records uniform operand formats (``weight_format``/``act_format``); version 3
records ``GemmOp.causal``; version 2 allows any K (a zero-padded partial last block); version 1 has whole blocks only.
Each is still read, and a trace is written with the lowest that holds it."""
WHOLE_BLOCKS_FORMAT_VERSION = 1
ANY_K_FORMAT_VERSION = 2
CAUSAL_FORMAT_VERSION = 3
OPERAND_FORMAT_VERSION = 4
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4)
"""Trace format versions the loader reads (1 and 2 have no ``causal`` field: every op loads dense; 1-3 have no
operand formats: every operand loads ``mixed``)."""
CAUSAL_KINDS = ("attn_qk", "attn_pv")


@runtime_checkable
class LazyMap(Protocol):
    """A precision map that is generated on demand. ``shape`` is known without generating it."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def materialize(self) -> np.ndarray:
        """The map as a ``bool`` array of ``shape``; deterministic (same object, same bits)."""
        ...

    def to_manifest(self) -> dict[str, Any]:
        """A YAML-safe description from which the trace loader can rebuild this map bit for bit."""
        ...


PrecisionMap = np.ndarray | LazyMap


def is_immutable(pmap: PrecisionMap) -> bool:
    """True for a map no one can change in place: a lazy (synthetic) map, or a read-only array (what
    :func:`fgmpsim.trace.load_trace` returns). Consumers may cache what they derive from such maps."""
    return not isinstance(pmap, np.ndarray) or not pmap.flags.writeable


def materialize_map(pmap: PrecisionMap) -> np.ndarray:
    """``pmap`` as a ``bool`` array (a lazy map is generated, an array returned as it is)."""
    return pmap.materialize() if isinstance(pmap, LazyMap) else pmap


@dataclass(frozen=True, eq=False)
class GemmOp:
    """One GEMM of a trace. Sizes are element counts; MACs are multiply-accumulates of scalar elements."""

    name: str
    layer: int
    kind: str
    m: int
    k: int
    n: int
    repeat: int
    weight_map: PrecisionMap
    act_map: PrecisionMap
    static_weight: bool = True
    consumer: str | None = None
    consumer_operand: str = "act"
    causal: bool = False
    weight_format: OperandFormat = MIXED
    act_format: OperandFormat = MIXED

    @property
    def uniform(self) -> bool:
        """Either operand is in a uniform format (the trace needs format version 4)."""
        return self.weight_format.uniform or self.act_format.uniform

    @property
    def macs(self) -> int:
        """Scalar MACs of this op including repeats: ``M * K * N * repeat`` (real elements: a zero-padded last block
        adds none; the simulator's ``useful_macs``)."""
        return self.m * self.k * self.n * self.repeat

    def weight_map_array(self) -> np.ndarray:
        """The weight-side map, materialized, as ``bool`` ``[N, K/B]`` or ``[repeat, N, K/B]``."""
        return materialize_map(self.weight_map)

    def act_map_array(self) -> np.ndarray:
        """The activation map, materialized, as ``bool`` ``[M, K/B]`` or ``[repeat, M, K/B]``."""
        return materialize_map(self.act_map)

    def check(self, block_size: int) -> None:
        """Raise :class:`TraceError` naming this op and the field if shapes or values are inconsistent."""
        where = f"op {self.name!r}"
        if self.kind not in OP_KINDS:
            raise TraceError(f"{where}: unknown kind {self.kind!r}", "kind", f"use one of {', '.join(OP_KINDS)}")
        for dim in ("m", "k", "n", "repeat"):
            value = getattr(self, dim)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise TraceError(f"{where}: {dim.upper()} must be a positive integer, got {value!r}",
                                 dim, "fix the op table")
        if not isinstance(self.layer, (int, np.integer)) or self.layer < 0:
            raise TraceError(f"{where}: layer must be a non-negative integer, got {self.layer!r}", "layer",
                             "fix the op table")
        kb = -(-self.k // block_size)
        if not isinstance(self.causal, (bool, np.bool_)):
            raise TraceError(f"{where}: causal must be true or false, got {self.causal!r}", "causal",
                             "use causal: true for masked attention, false otherwise")
        if self.causal and self.kind not in CAUSAL_KINDS:
            raise TraceError(f"{where}: only attention ops can be causal, this one is {self.kind!r}", "causal",
                             f"set causal only on {' and '.join(CAUSAL_KINDS)}")
        keys = self.n if self.kind == "attn_qk" else self.k
        if self.causal and keys < self.m:
            raise TraceError(f"{where}: a causal op has at least as many keys as queries, got {keys} keys for "
                             f"M={self.m}", "causal", "drop causal or fix the op's M/K/N")
        if self.consumer_operand not in ("act", "weight"):
            raise TraceError(f"{where}: consumer_operand must be 'act' or 'weight', got {self.consumer_operand!r}",
                             "consumer_operand", "use 'act' or 'weight'")
        for label, pmap, rows in (("weight_map", self.weight_map, self.n), ("act_map", self.act_map, self.m)):
            shape = tuple(pmap.shape)
            ok2 = shape == (rows, kb)
            ok3 = shape == (self.repeat, rows, kb)
            if not (ok2 or ok3):
                want = f"({rows}, {kb}) or ({self.repeat}, {rows}, {kb})"
                raise TraceError(f"{where}: {label} has shape {shape}, expected {want} from M={self.m}, "
                                 f"K={self.k}, N={self.n}, repeat={self.repeat}, block={block_size}", label,
                                 "re-export the trace or fix the op's M/K/N")
            if isinstance(pmap, np.ndarray) and pmap.dtype != np.bool_:
                raise TraceError(f"{where}: {label} has dtype {pmap.dtype}, expected bool", label,
                                 "store maps as boolean arrays (True = FP8)")
        for label, fmt, rows, static in (("weight_format", self.weight_format, self.n, self.static_weight),
                                         ("act_format", self.act_format, self.m, False)):
            if not isinstance(fmt, OperandFormat):
                raise TraceError(f"{where}: {label} must be an OperandFormat, got {type(fmt).__name__}", label,
                                 "use fgmpsim.trace.formats.OperandFormat")
            fmt.check(where, label, self.k, rows, block_size, static)
            pmap = self.weight_map if label == "weight_format" else self.act_map
            if fmt.uniform and not _constant(pmap, fmt.spec.wide):
                raise TraceError(f"{where}: a {fmt.name} operand has a constant map (all "
                                 f"{fmt.spec.wide}: {fmt.spec.element_bits}-bit elements), this one is not",
                                 label.replace("format", "map"), "re-export the trace")


def _constant(pmap: PrecisionMap, value: bool) -> bool:
    """Whether every block of ``pmap`` is ``value`` (a lazy map by its exact FP8 count when it has one)."""
    count = getattr(pmap, "fp8_blocks", None) if isinstance(pmap, LazyMap) else None
    if isinstance(count, (int, np.integer)):
        return int(count) == (int(np.prod(pmap.shape)) if value else 0)
    bits = materialize_map(pmap)
    return bool(bits.all()) if value else not bits.any()


@dataclass(frozen=True, eq=False)
class Trace:
    """A model's GEMMs in execution order plus provenance.

    ``meta`` holds the manifest's descriptive head (model, source, policy and its settings, formats, target and
    achieved FP4 fractions per tensor class, perplexities measured at export); it is carried, not interpreted.
    """

    name: str
    ops: tuple[GemmOp, ...]
    block_size: int = 16
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    @property
    def macs(self) -> int:
        """Total scalar MACs over all ops and repeats."""
        return sum(op.macs for op in self.ops)

    def save(self, path: str | PathLike[str]) -> Path:
        """Write this trace to directory ``path`` (``manifest.yaml`` + ``maps.npz``) and return it; see
        :func:`fgmpsim.trace.io.save_trace`."""
        from fgmpsim.trace.io import save_trace

        return save_trace(self, path)

    def op(self, name: str) -> GemmOp:
        """The op called ``name`` (the first, if names repeat; :meth:`check` refuses that); :class:`TraceError` if
        there is none."""
        index = self.__dict__.get("_by_name")
        if index is None:  # ops is a tuple: the index never goes stale
            index = {}
            for op in self.ops:
                index.setdefault(op.name, op)
            object.__setattr__(self, "_by_name", index)
        if name not in index:
            raise TraceError(f"trace {self.name!r} has no op {name!r}", "ops", "check the op name")
        return index[name]

    def check(self) -> None:
        """Validate every op, unique names and that every consumer exists; raises :class:`TraceError`. A trace
        whose maps are all immutable (:func:`is_immutable`) is checked once: every design point of a sweep
        simulates the same trace object."""
        if self.__dict__.get("_checked"):
            return
        if not isinstance(self.block_size, int) or self.block_size <= 0:
            raise TraceError(f"block_size must be a positive integer, got {self.block_size!r}", "block_size",
                             "use 16 (the NVFP4 block)")
        if not self.ops:
            raise TraceError(f"trace {self.name!r} has no ops", "ops", "export or synthesize at least one GEMM")
        names: set[str] = set()
        for op in self.ops:
            if op.name in names:
                raise TraceError(f"duplicate op name {op.name!r}", "ops.name", "give every op a unique name")
            names.add(op.name)
            op.check(self.block_size)
        for op in self.ops:
            if op.consumer is not None and op.consumer not in names:
                raise TraceError(f"op {op.name!r}: consumer {op.consumer!r} is not an op of this trace",
                                 "consumer", "name an existing op or leave consumer empty")
        if all(is_immutable(op.weight_map) and is_immutable(op.act_map) for op in self.ops):
            object.__setattr__(self, "_checked", True)
