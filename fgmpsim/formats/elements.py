"""Element formats: the value each code stands for, and rounding into them.

Every element format here is a signed grid of values with a largest magnitude ``max_value``. Rounding is
round-to-nearest, ties-to-even, and *saturating*: magnitudes above ``max_value`` (±inf included) become
``±max_value``.

Minifloat rounding is done arithmetically, because it is several times faster than a round trip through the
``ml_dtypes`` types: within a binade of the format the grid is ``step = 2^(max(e, emin) - man_bits)`` with ``e`` the
float32 exponent of ``|x|``, so ``rint(x / step) * step`` is exact RNE (``x / step`` and ``* step`` are power-of-two
scalings; ``np.rint`` rounds ties to even, and even multiples of ``step`` are the even codes). The tests check it bit
for bit against the ``ml_dtypes`` casts. Codes do go through ``ml_dtypes`` (``float8_e4m3fn``, ``float4_e2m1fn``,
``int4``): their bit pattern is the element code in the low ``bits`` bits of a ``uint8``. ``ml_dtypes`` itself is *not*
saturating for ``float8_e4m3fn`` (overflow becomes NaN) and *wraps* integers, which is why rounding clamps first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from fgmpsim.formats.validate import as_finite_float32

_F32_BIAS = 127


@dataclass(frozen=True)
class ElementType:
    """One element format.

    ``storage`` is the numpy/ml_dtypes type whose bit pattern is the element code. Minifloats give ``man_bits``
    (mantissa bits) and ``emin`` (exponent of the smallest normal binade; subnormals share its step); integer
    formats leave them ``None``, are symmetric (``-max_value .. max_value``; INT4 never uses the code for -8) and
    have no negative zero.
    """

    name: str
    bits: int
    max_value: float
    storage: type
    man_bits: int | None = None
    emin: int | None = None

    @property
    def emax(self) -> int:
        """Exponent of the largest binade, floor(log2(max_value)): 2 for E2M1 (6 = 1.5 * 2^2), 8 for E4M3."""
        return math.frexp(self.max_value)[1] - 1

    @property
    def code_mask(self) -> int:
        return (1 << self.bits) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Round float32 ``x`` to this format (RNE, saturating); float32 values out, same shape.

        No input checks (the public entry points do them): ±inf saturates, NaN would stay NaN.
        """
        # a new array we may overwrite; at least 1-d because ufuncs turn 0-d results into scalars
        clipped = np.clip(np.atleast_1d(x), -self.max_value, self.max_value)
        if self.man_bits is None:
            rounded = np.rint(clipped, out=clipped)
            rounded += np.float32(0.0)  # -0.0 + 0.0 = +0.0: two's complement has no negative zero
            return rounded.reshape(np.shape(x))
        biased_exp = clipped.view(np.int32) >> 23  # float32 exponent field (the sign lands above bit 7)
        biased_exp &= 0xFF
        np.maximum(biased_exp, self.emin + _F32_BIAS, out=biased_exp)
        biased_exp -= self.man_bits
        biased_exp <<= 23
        step = biased_exp.view(np.float32)  # 2^(max(e, emin) - man_bits)
        rounded = np.rint(np.divide(clipped, step, out=clipped), out=clipped)
        rounded *= step
        return rounded.reshape(np.shape(x))

    def to_codes(self, values: np.ndarray) -> np.ndarray:
        """Codes (``uint8``, low ``bits`` bits) of float32 ``values`` that are already on this format's grid."""
        return values.astype(self.storage).view(np.uint8) & np.uint8(self.code_mask)

    def from_codes(self, codes: np.ndarray) -> np.ndarray:
        """Float32 values of ``uint8`` codes (only the low ``bits`` bits are read)."""
        return (codes & np.uint8(self.code_mask)).view(self.storage).astype(np.float32)


E4M3 = ElementType("e4m3", 8, 448.0, ml_dtypes.float8_e4m3fn, man_bits=3, emin=-6)
"""OCP FP8 E4M3FN: bias 7, no inf, one NaN code per sign (0x7F/0xFF, never produced), max 448, min subnormal 2^-9."""
E2M1 = ElementType("e2m1", 4, 6.0, ml_dtypes.float4_e2m1fn, man_bits=1, emin=0)
"""OCP FP4 E2M1: values 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (0.5 is the one subnormal)."""
INT4 = ElementType("int4", 4, 7.0, ml_dtypes.int4)
INT8 = ElementType("int8", 8, 127.0, np.int8)


def quantize_e4m3(x: np.ndarray) -> np.ndarray:
    """Round to OCP FP8 E4M3FN: RNE, saturating (|x| > 448 -> ±448); float32 out, same shape.

    ``x`` may be any real dtype; it is cast to float32 first. Non-finite input raises ``FormatError``.
    """
    return E4M3.quantize(as_finite_float32(x, "fp8_e4m3"))


round_to_e4m3 = quantize_e4m3


def quantize_e2m1(x: np.ndarray) -> np.ndarray:
    """Round to FP4 E2M1 {0, 0.5, 1, 1.5, 2, 3, 4, 6}: RNE, saturating at ±6; float32 out, same shape."""
    return E2M1.quantize(as_finite_float32(x, "e2m1"))


def _nonnegative_values(element: ElementType, n_codes: int) -> np.ndarray:
    values = element.from_codes(np.arange(n_codes, dtype=np.uint8))
    values.setflags(write=False)
    return values


def e2m1_values() -> np.ndarray:
    """The 8 non-negative E2M1 values in ascending order (code order 0..7), float32."""
    return _nonnegative_values(E2M1, 8)


def e4m3_values() -> np.ndarray:
    """The 127 non-negative finite E4M3 values in ascending order (codes 0x00..0x7E), float32.

    These are the candidate NVFP4 block scales for a clipping search.
    """
    return _nonnegative_values(E4M3, 127)
