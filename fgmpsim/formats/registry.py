"""The named number formats (``FORMATS``) and their default block sizes (``BLOCK_SIZES``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from fgmpsim.errors import FormatError
from fgmpsim.formats.elements import E2M1, E4M3, INT4, INT8, ElementType
from fgmpsim.formats.scales import (E4M3_SCALE, E8M0_SCALE, FP32_SCALE, ScaleCodec, amax_ratio_scale, mx_scale,
                                    pow2_ceil_scale)

BlockScaleRule = Callable[[np.ndarray, ElementType, ScaleCodec, "np.float32 | None"], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Format:
    """A number format: elements, optional per-block scale, optional per-tensor FP32 scale.

    A value is ``element * block_scale * tensor_scale`` (missing factors are 1). Blocks run along the last axis.
    ``block_size`` is the default block length (``None`` for element-wise formats, which accept and ignore any
    ``block_size`` that divides the axis). ``has_tensor_scale`` formats pick ``tensor_scale = amax(|x|) /
    tensor_scale_divisor``, so that the tensor amax maps to the largest block scale times the largest element.
    """

    name: str
    element: ElementType
    summary: str
    block_size: int | None = None
    scale_codec: ScaleCodec | None = None
    block_scale_rule: BlockScaleRule | None = None
    has_tensor_scale: bool = False

    @property
    def tensor_scale_divisor(self) -> float:
        """448 * 6 = 2688 for NVFP4, 448 for per-tensor-scaled FP8."""
        return self.element.max_value * (self.scale_codec.max_value if self.scale_codec else 1.0)

    def storage_bits(self, n_elements: int, block_size: int | None = None) -> int:
        """Bits to store ``n_elements`` values: elements, one scale per block, and the FP32 tensor scale.

        ``block_size`` defaults to the format's default. NVFP4 on [4, 64]: 256 * 4 + 16 * 8 + 32 = 1184.
        """
        bits = n_elements * self.element.bits
        if self.scale_codec is not None:
            bits += (n_elements // (block_size or self.block_size)) * self.scale_codec.bits
        if self.has_tensor_scale:
            bits += 32
        return bits


FORMATS: MappingProxyType[str, Format] = MappingProxyType({f.name: f for f in (
    Format(name="fp8_e4m3", element=E4M3,
           summary="OCP FP8 E4M3FN element-wise, no scale (FGMP's high-precision blocks)"),
    Format(name="fp8_e4m3_tensor", element=E4M3, has_tensor_scale=True,
           summary="FP8 E4M3FN with an FP32 per-tensor scale amax/448"),
    Format(name="nvfp4", element=E2M1, block_size=16, scale_codec=E4M3_SCALE, block_scale_rule=amax_ratio_scale,
           has_tensor_scale=True,
           summary="NVFP4: E2M1 elements, E4M3 scale per 16-block, FP32 tensor scale amax/2688"),
    Format(name="mxfp4", element=E2M1, block_size=32, scale_codec=E8M0_SCALE, block_scale_rule=mx_scale,
           summary="OCP MXFP4: E2M1 elements, E8M0 scale per 32-block"),
    Format(name="mxfp8", element=E4M3, block_size=32, scale_codec=E8M0_SCALE, block_scale_rule=mx_scale,
           summary="OCP MXFP8 (E4M3): E4M3 elements, E8M0 scale per 32-block"),
    Format(name="int4", element=INT4, block_size=16, scale_codec=FP32_SCALE, block_scale_rule=amax_ratio_scale,
           summary="symmetric INT4 (-7..7), FP32 scale amax/7 per 16-block"),
    Format(name="int8", element=INT8, block_size=16, scale_codec=FP32_SCALE, block_scale_rule=amax_ratio_scale,
           summary="symmetric INT8 (-127..127), FP32 scale amax/127 per 16-block"),
    Format(name="fp4_fp32", element=E2M1, block_size=16, scale_codec=FP32_SCALE, block_scale_rule=amax_ratio_scale,
           summary="E2M1 elements, FP32 scale amax/6 per block (group-wise FP4 with unconstrained real scales)"),
    Format(name="fp8_e4m3_block", element=E4M3, block_size=16, scale_codec=FP32_SCALE,
           block_scale_rule=amax_ratio_scale,
           summary="E4M3 elements, FP32 scale amax/448 per block (per token or per channel: block = the row)"),
    Format(name="fp4_pow2", element=E2M1, block_size=16, scale_codec=E8M0_SCALE, block_scale_rule=pow2_ceil_scale,
           summary="ZeroQuant-FP W4 weights: E2M1 elements, power-of-two scale 2^ceil(log2(amax/6)) per 16-block"),
)})

BLOCK_SIZES: MappingProxyType[str, int | None] = MappingProxyType({n: f.block_size for n, f in FORMATS.items()})


def get_format(fmt: str) -> Format:
    """The ``Format`` named ``fmt``; ``FormatError`` listing the known names otherwise."""
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise FormatError(f"unknown number format {fmt!r}", "fmt", f"use one of: {', '.join(FORMATS)}") from None
