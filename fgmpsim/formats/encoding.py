"""Encoding to bits: element codes, scale codes and the tensor scale, and decoding them back.

``decode(encode(x, ...)) == fake_quant(x, ...)`` bit for bit: both end in ``Quantized.dequantize``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fgmpsim.errors import FormatError
from fgmpsim.formats.packing import pack_nibbles, unpack_nibbles
from fgmpsim.formats.quantize import Quantized, quantize
from fgmpsim.formats.registry import get_format


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Encoded:
    """A tensor stored in a format.

    ``codes``: element codes as flat ``uint8`` bytes in C order (4-bit formats: two per byte, low nibble first;
    8-bit formats: one per byte). ``block_scales``: scale codes of shape ``shape[:-1] + (n_blocks,)`` — E4M3 bytes
    (nvfp4), E8M0 bytes (MX, fp4_pow2; value 2^(code - 127)), FP32 bit patterns as ``uint32`` (int4/int8) — or
    ``None``. ``tensor_scale``: FP32 per-tensor scale or ``None``. ``block_size`` is ``None`` for element-wise formats.
    """

    fmt: str
    shape: tuple[int, ...]
    block_size: int | None
    codes: np.ndarray
    block_scales: np.ndarray | None
    tensor_scale: np.float32 | None

    def __post_init__(self) -> None:
        spec = get_format(self.fmt)
        n = math.prod(self.shape)
        n_bytes = (n + 1) // 2 if spec.element.bits == 4 else n
        if self.codes.dtype != np.uint8 or self.codes.shape != (n_bytes,):
            raise FormatError(f"codes must be {n_bytes} uint8 bytes for {self.fmt} of shape {self.shape}, got "
                              f"{self.codes.dtype} {self.codes.shape}", "codes", "build Encoded with encode()")
        object.__setattr__(self, "codes", _frozen(self.codes))
        scaled = spec.scale_codec is not None
        if scaled != (self.block_size is not None and self.block_scales is not None):
            raise FormatError(f"block_size and block_scales must both be {'given' if scaled else 'None'} for "
                              f"{self.fmt}", "block_scales", "build Encoded with encode()")
        if scaled:
            expected = (*self.shape[:-1], self.shape[-1] // self.block_size)
            if (self.shape[-1] % self.block_size or self.block_scales.dtype != spec.scale_codec.code_dtype
                    or self.block_scales.shape != expected):
                raise FormatError(f"block_scales must be {np.dtype(spec.scale_codec.code_dtype)} of shape {expected} "
                                  f"for {self.fmt} of shape {self.shape} with blocks of {self.block_size}",
                                  "block_scales", "build Encoded with encode()")
            object.__setattr__(self, "block_scales", _frozen(self.block_scales))
        if spec.has_tensor_scale != (self.tensor_scale is not None):
            raise FormatError(f"tensor_scale must be {'given' if spec.has_tensor_scale else 'None'} for {self.fmt}",
                              "tensor_scale", "build Encoded with encode()")

    @property
    def bits(self) -> int:
        """Storage bits: elements, block scales and the FP32 tensor scale (a pad nibble is not counted)."""
        return get_format(self.fmt).storage_bits(math.prod(self.shape), self.block_size)


def encode(x: np.ndarray, fmt: str, block_size: int | None = None, *, block_scale: np.ndarray | None = None,
           tensor_scale: float | None = None) -> Encoded:
    """Quantize ``x`` like ``fake_quant`` (same arguments) and return its codes."""
    q = quantize(x, fmt, block_size, block_scale=block_scale, tensor_scale=tensor_scale)
    element = q.fmt.element
    codes = element.to_codes(q.elements).reshape(-1)
    if element.bits == 4:
        codes = pack_nibbles(codes)
    scales = None if q.block_scale is None else q.fmt.scale_codec.to_codes(q.block_scale)
    return Encoded(q.fmt.name, q.shape, q.block_size, codes, scales, q.tensor_scale)


def decode(enc: Encoded) -> np.ndarray:
    """Values of an ``Encoded`` tensor, float32 of ``enc.shape``."""
    spec = get_format(enc.fmt)
    n = math.prod(enc.shape)
    codes = unpack_nibbles(enc.codes, n) if spec.element.bits == 4 else enc.codes
    elements = spec.element.from_codes(codes)
    block_scale = None
    if enc.block_scales is not None:
        elements = elements.reshape(*enc.shape[:-1], enc.shape[-1] // enc.block_size, enc.block_size)
        block_scale = spec.scale_codec.from_codes(enc.block_scales)
    else:
        elements = elements.reshape(enc.shape)
    n_bad = n - int(np.count_nonzero(np.isfinite(elements)))
    if block_scale is not None:
        n_bad += int(np.count_nonzero(~spec.scale_codec.representable(block_scale.astype(np.float64))))
    if n_bad:
        raise FormatError(f"{n_bad} codes of this {enc.fmt} tensor are NaN or invalid scales", "codes",
                          "the encoding is corrupt; re-encode the tensor")
    return Quantized(spec, enc.shape, enc.block_size, elements, block_scale, enc.tensor_scale).dequantize()
