"""Bit-exact number formats: FP8 E4M3, NVFP4, MXFP4/MXFP8, INT4/INT8 and power-of-two-scaled FP4.

``fake_quant(x, fmt)`` rounds a tensor to a format and back (float32, blocks along the last axis);
``encode``/``decode`` go to and from the stored bits. ``FORMATS`` names the formats, ``BLOCK_SIZES`` their default
blocks. Knows nothing about models or hardware.
"""

from fgmpsim.formats.elements import (E2M1, E4M3, INT4, INT8, ElementType, e2m1_values, e4m3_values,
                                      quantize_e2m1, quantize_e4m3, round_to_e4m3)
from fgmpsim.formats.encoding import Encoded, decode, encode
from fgmpsim.formats.quantize import Quantized, choose_scales, fake_quant, nvfp4_scales, quantize
from fgmpsim.formats.registry import BLOCK_SIZES, FORMATS, Format, get_format
from fgmpsim.formats.scales import E4M3_SCALE, E8M0_SCALE, FP32_SCALE, ScaleCodec

__all__ = ["BLOCK_SIZES", "E2M1", "E4M3", "E4M3_SCALE", "E8M0_SCALE", "FORMATS", "FP32_SCALE", "INT4", "INT8",
           "ElementType", "Encoded", "Format", "Quantized", "ScaleCodec", "choose_scales", "decode", "e2m1_values",
           "e4m3_values", "encode", "fake_quant", "get_format", "nvfp4_scales", "quantize", "quantize_e2m1",
           "quantize_e4m3", "round_to_e4m3"]
