"""Block scales: how each format picks a block's scale from the block's amax, and how a scale is stored.

All arithmetic is float32 (each operation rounds to nearest even). ``block_amax`` is ``max |x|`` over a block, exact.
Scales are never negative; a block whose scale is 0 dequantizes to (signed) zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from fgmpsim.formats.elements import ElementType

E8M0_EXP_MIN = -127
"""Exponent of the smallest E8M0 scale (code 0x00, 2^-127); E8M0 has no zero."""
E8M0_EXP_MAX = 127
"""Exponent of the largest E8M0 scale (code 0xFE, 2^127; 0xFF is NaN)."""


@dataclass(frozen=True)
class ScaleCodec:
    """How one block scale is stored: ``bits`` per scale, as the bit pattern of ``storage`` in a ``code_dtype``.

    ``min_value``/``max_value`` bound the representable scales.
    """

    name: str
    bits: int
    storage: type
    code_dtype: type
    min_value: float
    max_value: float

    def round(self, values: np.ndarray) -> np.ndarray:
        """Clamp float32 ``values`` to [min_value, max_value] and round them into this codec (RNE); float32 out."""
        return np.clip(values, self.min_value, self.max_value).astype(self.storage).astype(np.float32)

    def representable(self, values: np.ndarray) -> np.ndarray:
        """Elementwise: is each (float64) value exactly a scale this codec stores?"""
        in_range = np.isfinite(values) & (values >= self.min_value) & (values <= self.max_value)
        with np.errstate(over="ignore", invalid="ignore"):
            exact = self.round(values.astype(np.float32)).astype(np.float64) == values
        return in_range & exact

    def to_codes(self, values: np.ndarray) -> np.ndarray:
        """Codes of float32 scales that are already representable."""
        return values.astype(self.storage).view(self.code_dtype)

    def from_codes(self, codes: np.ndarray) -> np.ndarray:
        """Float32 scales of codes."""
        return codes.view(self.storage).astype(np.float32)


E4M3_SCALE = ScaleCodec("e4m3", 8, ml_dtypes.float8_e4m3fn, np.uint8, 0.0, 448.0)
E8M0_SCALE = ScaleCodec("e8m0", 8, ml_dtypes.float8_e8m0fnu, np.uint8, 2.0 ** E8M0_EXP_MIN, 2.0 ** E8M0_EXP_MAX)
FP32_SCALE = ScaleCodec("fp32", 32, np.float32, np.uint32, 0.0, float(np.finfo(np.float32).max))


def amax_ratio_scale(block_amax: np.ndarray, element: ElementType, codec: ScaleCodec,
                     tensor_scale: np.float32 | None) -> np.ndarray:
    """Scale that maps the block amax onto the element max, rounded into the codec (NVFP4, INT).

    ``r = fl(block_amax / element.max_value)``; with a tensor scale ``r = fl(r / tensor_scale)`` (0 when the tensor
    scale is 0); then ``codec.round(r)`` (E4M3: RNE, saturating at 448; FP32: unchanged).
    NVFP4: ``E4M3(block_amax / 6 / tensor_scale)``; INT: ``block_amax / qmax``.
    """
    ratio = block_amax / np.float32(element.max_value)
    if tensor_scale is not None:
        with np.errstate(over="ignore"):
            ratio = ratio / tensor_scale if tensor_scale > 0 else np.zeros_like(ratio)
    return codec.round(ratio)


def _floor_log2(block_amax: np.ndarray) -> np.ndarray:
    """Exact floor(log2(a)) for a > 0 (frexp: a = m * 2^e with m in [0.5, 1))."""
    _, exponent = np.frexp(block_amax)
    return exponent.astype(np.int32) - 1


def _pow2_from_exponents(exponents: np.ndarray, block_amax: np.ndarray) -> np.ndarray:
    """2^k as float32, k clamped to the E8M0 range; all-zero blocks get the smallest scale 2^-127."""
    k = np.clip(np.where(block_amax > 0, exponents, E8M0_EXP_MIN), E8M0_EXP_MIN, E8M0_EXP_MAX)
    return np.ldexp(np.float32(1.0), k).astype(np.float32, copy=False)


def mx_scale(block_amax: np.ndarray, element: ElementType, codec: ScaleCodec,
             tensor_scale: np.float32 | None) -> np.ndarray:
    """OCP MX v1.0 shared scale: 2^(floor(log2(block_amax)) - emax_elem), exact, clamped to E8M0.

    The block amax then lands in [2^emax, 2^(emax+1)) after scaling, which can exceed the element max (E2M1: up to
    7.99 > 6): those elements clamp to the max normal, as the spec prescribes.
    """
    return _pow2_from_exponents(_floor_log2(block_amax) - element.emax, block_amax)


def pow2_ceil_exponent(block_amax: np.ndarray, unit: np.ndarray | float) -> np.ndarray:
    """Smallest integer k with ``unit * 2^k >= block_amax`` (int32), for ``block_amax > 0`` and ``unit > 0``.

    Computed exactly: ``floor(log2(a / unit))`` from the float64 ratio (it can only round up onto a power of two,
    which the check keeps), then one step up when ``unit * 2^k`` (exact in float64 for float32 inputs) is still
    below ``a``. Entries with ``block_amax == 0`` are meaningless; callers replace them.
    """
    a = np.asarray(block_amax, dtype=np.float64)
    u = np.broadcast_to(np.asarray(unit, dtype=np.float64), a.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((a > 0) & (u > 0), a / np.where(u > 0, u, 1.0), 1.0)
    k = _floor_log2(ratio)
    return (k + (np.ldexp(u, k) < a)).astype(np.int32)


def pow2_ceil_scale(block_amax: np.ndarray, element: ElementType, codec: ScaleCodec,
                    tensor_scale: np.float32 | None) -> np.ndarray:
    """Smallest power of two 2^k with element.max_value * 2^k >= block_amax, i.e. 2^ceil(log2(block_amax / max)).

    Exact (see :func:`pow2_ceil_exponent`). Nothing clips.
    """
    return _pow2_from_exponents(pow2_ceil_exponent(block_amax, element.max_value), block_amax)
