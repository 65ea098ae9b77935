"""The storage format of one operand of a traced GEMM: today's mixed FP8/NVFP4 block map, or one uniform format.

An operand (``GemmOp.weight_format`` / ``GemmOp.act_format``) is either

* ``mixed``: every block of its precision map is FP8 E4M3 (``True``) or NVFP4 (``False``, E2M1 with an E4M3 block
  scale), as in trace format versions 1-3; or
* a **uniform** format (trace format version 4): every element in one element type with one scale per
  ``group_size`` consecutive elements along K (``group_size: null``: one scale per row, i.e. per output channel of a
  weight or per token of an activation). Its precision map is then constant: all ``True`` for 8-bit elements, all
  ``False`` for 4-bit ones (checked on load).

========== ========= =========================== ==========================================================
format     elements  scale per group              what exports it
========== ========= =========================== ==========================================================
fp8        E4M3      FP32 (32 b)                  ``w8a8_fp8`` weights (per channel), FP8 per-token activations
int8       INT8      FP32 (32 b)                  ``w8a8_int8`` weights, INT8 per-token activations
int4       INT4      FP32 (32 b)                  ``int_w4a8`` weights
fp4_pow2   E2M1      power of two, E8M0 (8 b)     ``zqfp_w4a8`` under M1; under M2 with ``channel_scale``
fp4_fp32   E2M1      FP32 (32 b)                  ``zqfp_w4a8:none`` (no scale constraint)
========== ========= =========================== ==========================================================

``channel_scale`` (``fp4_pow2`` only, ZeroQuant-FP's M2): one more FP32 scale per row, multiplied into the row's
accumulated output. ``lorc_rank`` (static weights only): the rank of the LoRC factors ``A [N, r]``, ``B [r, K]``
stored beside the weight (8-bit elements, an FP32 scale per factor row: :func:`lorc_storage_bits`).
Only ``fp4_pow2`` reaches an FP8 datapath losslessly (``E2M1 x 2^e`` is an E4M3 value for ``e`` in [-8, 6],
:mod:`fgmpsim.quant.groupwise`); which formats an architecture accepts, and how, its ``pe_array.storage_formats``
says (:mod:`fgmpsim.arch.record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fgmpsim.errors import TraceError, closest_hint, excerpt

MIXED_NAME = "mixed"


@dataclass(frozen=True)
class FormatSpec:
    """One uniform format: ``element_bits`` per element, ``scale_bits`` per group scale, ``element`` the datapath
    precision class its elements belong to (``fp8``, ``fp4``, ``int8`` or ``int4``) and what it is, in words."""

    element_bits: int
    scale_bits: int
    element: str
    description: str

    @property
    def integer(self) -> bool:
        """INT elements (``int4``, ``int8``): they run on an INT8 datapath only."""
        return self.element.startswith("int")

    @property
    def wide(self) -> bool:
        """8-bit elements: the operand's precision map is all ``True`` (all ``False`` for 4-bit ones)."""
        return self.element_bits == 8


UNIFORM_FORMATS: dict[str, FormatSpec] = {
    "fp8": FormatSpec(8, 32, "fp8", "FP8 E4M3, FP32 scale per group"),
    "int8": FormatSpec(8, 32, "int8", "INT8, FP32 scale per group"),
    "int4": FormatSpec(4, 32, "int4", "INT4, FP32 scale per group"),
    "fp4_pow2": FormatSpec(4, 8, "fp4", "FP4 E2M1, power-of-two (E8M0) scale per group"),
    "fp4_fp32": FormatSpec(4, 32, "fp4", "FP4 E2M1, FP32 scale per group"),
}
FORMAT_NAMES: tuple[str, ...] = (MIXED_NAME, *UNIFORM_FORMATS)
CHANNEL_SCALE_BITS = 32
"""Bits of M2's per-row channel scale (FP32)."""
_KEYS = ("name", "group_size", "channel_scale", "lorc_rank")
_FIX = "re-export the trace (see fgmpsim.trace.formats for the vocabulary)"


@dataclass(frozen=True)
class OperandFormat:
    """How one operand is stored: ``name`` (one of :data:`FORMAT_NAMES`), ``group_size`` (elements along K per
    scale, a multiple of the trace's block size dividing K; ``None`` = one scale per row), ``channel_scale`` (M2's
    per-row FP32 scale, ``fp4_pow2`` only) and ``lorc_rank`` (LoRC factors stored with a static weight, 0 = none).
    ``mixed`` takes none of the options."""

    name: str = MIXED_NAME
    group_size: int | None = None
    channel_scale: bool = False
    lorc_rank: int = 0

    @property
    def uniform(self) -> bool:
        """Every element in one format (not a mixed FP8/NVFP4 map)."""
        return self.name != MIXED_NAME

    @property
    def spec(self) -> FormatSpec:
        """The uniform format's widths (:class:`KeyError` for ``mixed``)."""
        return UNIFORM_FORMATS[self.name]

    def group(self, k: int) -> int:
        """Elements per scale for a reduction of ``k`` elements."""
        return self.group_size or k

    def scale_bits(self, rows: int, k: int) -> int:
        """Bits of the group scales (and M2 channel scales) of ``rows`` rows of ``k`` elements."""
        bits = rows * (k // self.group(k)) * self.spec.scale_bits
        return bits + (rows * CHANNEL_SCALE_BITS if self.channel_scale else 0)

    def label(self) -> str:
        """Short text: ``fp4_pow2 g64 +channel +lorc8``, ``fp8 per-row``, ``mixed``."""
        if not self.uniform:
            return self.name
        parts = [self.name, f"g{self.group_size}" if self.group_size else "per-row"]
        parts += ["+channel"] if self.channel_scale else []
        parts += [f"+lorc{self.lorc_rank}"] if self.lorc_rank else []
        return " ".join(parts)

    def to_manifest(self) -> dict[str, Any]:
        """The manifest entry (only for uniform formats: ``mixed`` is written by leaving the key out)."""
        return {"name": self.name, "group_size": self.group_size, "channel_scale": bool(self.channel_scale),
                "lorc_rank": int(self.lorc_rank)}

    def check(self, where: str, field: str, k: int, rows: int, block_size: int, static: bool) -> None:
        """:class:`TraceError` naming ``field`` when the format does not fit an operand of ``rows`` x ``k``."""
        if self.name not in FORMAT_NAMES:
            raise TraceError(f"{where}: unknown {field} {excerpt(self.name)}", f"{field}.name",
                             closest_hint(str(self.name), FORMAT_NAMES))
        if not self.uniform:
            if self.group_size is not None or self.channel_scale or self.lorc_rank:
                raise TraceError(f"{where}: the mixed FP8/NVFP4 format takes no group size, channel scale or LoRC",
                                 field, "drop the options or name a uniform format")
            return
        g = self.group_size
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g <= 0 or g % block_size or k % g):
            raise TraceError(f"{where}: {field} group_size {excerpt(g)} must be a positive multiple of the block size "
                             f"{block_size} that divides K={k}", f"{field}.group_size",
                             "use a group size that divides K (e.g. 64), or null for one scale per row")
        if not isinstance(self.channel_scale, bool) or (self.channel_scale and self.name != "fp4_pow2"):
            raise TraceError(f"{where}: {field} channel_scale {excerpt(self.channel_scale)} is only for fp4_pow2 (M2)",
                             f"{field}.channel_scale", "set channel_scale: false")
        rank = self.lorc_rank
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise TraceError(f"{where}: {field} lorc_rank must be a non-negative integer, got {excerpt(rank)}",
                             f"{field}.lorc_rank", "use 0 (no LoRC) or the rank of the stored factors")
        if rank and not static:
            raise TraceError(f"{where}: {field} lorc_rank {rank}, but only a static weight carries LoRC factors",
                             f"{field}.lorc_rank", "use lorc_rank 0 here")
        if rank > min(rows, k):
            raise TraceError(f"{where}: {field} lorc_rank {rank} exceeds the weight's smaller side "
                             f"({rows} rows x K={k})", f"{field}.lorc_rank", f"use a rank of at most {min(rows, k)}")


MIXED = OperandFormat()


def row_format(act: OperandFormat) -> OperandFormat:
    """The format of the attention operands (Q, K, V^T) under a policy whose linear inputs are in ``act``: its 8-bit
    element with one scale per row of the operand as the matmul reads it, or ``mixed`` for block-choice policies."""
    return OperandFormat(act.name) if act.uniform else MIXED


def fixed_role_format(act: OperandFormat) -> OperandFormat:
    """The format of the operands no policy chooses (the softmax output P; an unquantized ``lm_head``'s weight and
    input), recorded in the highest precision of the datapath the policy targets: INT8 per row under an INT policy
    (``act`` ``int8``: an INT8 array has no FP lanes), else ``mixed`` all-FP8 maps. Their maps are all ``True``."""
    return OperandFormat("int8") if act.name == "int8" else MIXED


def lorc_storage_bits(n: int, k: int, rank: int, element_bits: int = 8) -> int:
    """Bits of the LoRC factors of an ``[n, k]`` weight: ``rank * (n + k)`` elements plus one FP32 scale per factor
    row (``n`` rows of A, ``rank`` rows of B); 0 for rank 0. The one formula the quantizer's storage report
    (:mod:`fgmpsim.quant.lorc`) and the simulator's footprint (:mod:`fgmpsim.energy.footprint`) use."""
    return rank * (n + k) * element_bits + (n + rank) * CHANNEL_SCALE_BITS if rank else 0


def format_from_manifest(entry: Any, where: str, field: str) -> OperandFormat:
    """The :class:`OperandFormat` of a manifest entry (checked for keys and types; sizes by :meth:`~OperandFormat.check`)."""
    if not isinstance(entry, dict):
        raise TraceError(f"{where}: {field.rsplit('.', 1)[-1]} must be a mapping {{name: ..., group_size: ...}}, "
                         f"got {excerpt(entry)}", field, _FIX)
    for key in entry:
        if key not in _KEYS:
            raise TraceError(f"{where}: unknown key {excerpt(str(key))} in {field.rsplit('.', 1)[-1]}",
                             f"{field}.{str(key)[:60]}",
                             closest_hint(str(key), _KEYS))
    name = entry.get("name")
    if not isinstance(name, str) or name not in FORMAT_NAMES:
        raise TraceError(f"{where}: unknown {field.rsplit('.', 1)[-1]} name {excerpt(name)}", f"{field}.name",
                         closest_hint(str(name), FORMAT_NAMES))
    return OperandFormat(name=name, group_size=entry.get("group_size"), channel_scale=entry.get("channel_scale", False),
                         lorc_rank=entry.get("lorc_rank", 0))
