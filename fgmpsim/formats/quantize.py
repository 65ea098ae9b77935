"""Fake quantization: round a tensor to a format and back to float32, with the format's scales.

The order of float32 operations (each one rounds to nearest even) is, for a block ``b`` of ``x`` (cast to float32):

1. ``block_amax = max |x_b|`` (exact); tensor ``amax = max |x|`` (exact).
2. Tensor scale (NVFP4, FP8-tensor): ``ts = fl(amax / D)`` with ``D = 2688`` (NVFP4) or ``448`` (FP8).
3. Block scale ``bs`` by the format's rule (``scales.py``); NVFP4: ``bs = E4M3(fl(fl(block_amax / 6) / ts))``.
4. Combined scale ``s = fl(bs * ts)`` (or ``bs``, or ``ts``, whichever exist).
5. Elements ``q = E(fl(x / s))`` with ``E`` the element rounding (RNE, saturating); where ``s == 0`` the block is
   all ±0 (x / inf) instead of dividing by zero.
6. Result ``y = fl(q * s)``.

With power-of-two scales (MX, fp4_pow2) steps 5 and 6 are exact scalings. ``decode`` reuses step 6, so
``decode(encode(x)) == fake_quant(x)`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fgmpsim.errors import FormatError
from fgmpsim.formats.registry import Format, get_format
from fgmpsim.formats.validate import as_finite_float32, check_block_size, check_scale_array


@dataclass(frozen=True, eq=False)
class Quantized:
    """A tensor split into its format's parts, all float32 values (not codes).

    ``elements`` has shape ``[..., n_blocks, block_size]`` for block formats and the input's shape otherwise;
    ``block_scale`` is ``[..., n_blocks]`` or ``None``; ``tensor_scale`` is a float32 scalar or ``None``.
    """

    fmt: Format
    shape: tuple[int, ...]
    block_size: int | None
    elements: np.ndarray
    block_scale: np.ndarray | None
    tensor_scale: np.float32 | None

    def dequantize(self) -> np.ndarray:
        """``elements * s`` (step 6), float32 with the original shape.

        A value that rounds beyond the float32 range raises ``FormatError`` instead of becoming inf. That happens only
        near float32's max (fp4_pow2 rounds |x| > 1.75 * 2^127 up to 2^128; INT's fl(127 * fl(amax / 127)) can
        exceed amax = 3.4e38) or with caller-chosen scales that are too large.
        """
        scale = combined_scale(self.block_scale, self.tensor_scale)
        if scale is None:
            return self.elements.reshape(self.shape)
        try:
            with np.errstate(over="raise"):
                values = self.elements * scale
        except FloatingPointError:
            raise FormatError(f"{self.fmt.name} values round beyond the float32 range (|x| > 3.4e38)", "x",
                              "scale the tensor down before quantizing") from None
        return np.asarray(values).reshape(self.shape)  # 0-d products come back as numpy scalars


def combined_scale(block_scale: np.ndarray | None, tensor_scale: np.float32 | None) -> np.ndarray | None:
    """``s = fl(bs * ts)`` shaped to broadcast against the elements (a trailing axis per block), or None."""
    if block_scale is None:
        return None if tensor_scale is None else np.asarray(tensor_scale, dtype=np.float32)
    scale = block_scale if tensor_scale is None else block_scale * tensor_scale
    return scale[..., None]


def _prepare(x: np.ndarray, fmt: str, block_size: int | None,
             ) -> tuple[Format, tuple[int, ...], np.ndarray, int | None]:
    """(format, shape of ``x``, checked float32 ``x`` as a ``[..., n_blocks, block]`` view or as is, block or None).

    The block size is checked for every format, element-wise ones included.
    """
    spec = get_format(fmt)
    x32 = as_finite_float32(x, spec.name)
    size = spec.block_size if block_size is None else block_size
    if size is None:
        return spec, x32.shape, x32, None
    size = check_block_size(spec.name, size, x32.shape)
    if spec.scale_codec is None:
        return spec, x32.shape, x32, None
    return spec, x32.shape, x32.reshape(*x32.shape[:-1], x32.shape[-1] // size, size), size


def _given_tensor_scale(fmt: Format, tensor_scale: float) -> np.float32:
    if not fmt.has_tensor_scale:
        raise FormatError(f"{fmt.name} has no tensor scale", "tensor_scale",
                          "leave tensor_scale out, or use nvfp4 / fp8_e4m3_tensor")
    value = check_scale_array("tensor_scale", fmt.name, tensor_scale, ())
    ts = np.float32(value)
    if ts != value:
        raise FormatError(f"tensor_scale {float(value)!r} is not a float32 value for {fmt.name}", "tensor_scale",
                          "pass np.float32(scale)")
    return ts


def _given_block_scale(fmt: Format, block_scale: object, blocks: np.ndarray) -> np.ndarray:
    if fmt.scale_codec is None:
        raise FormatError(f"{fmt.name} has no block scale", "block_scale",
                          "leave block_scale out, or use a block-scaled format such as nvfp4")
    scale = check_scale_array("block_scale", fmt.name, block_scale, blocks.shape[:-1])
    bad = ~fmt.scale_codec.representable(scale)
    if bad.any():
        raise FormatError(f"{int(np.count_nonzero(bad))} block_scale values are not {fmt.scale_codec.name} values "
                          f"for {fmt.name}", "block_scale",
                          f"round candidate scales into {fmt.scale_codec.name} first (e.g. quantize_e4m3 for nvfp4)")
    return scale.astype(np.float32) + np.float32(0.0)  # -0.0 -> +0.0


def _scales(spec: Format, blocks: np.ndarray, size: int | None, block_scale: object, tensor_scale: object,
            ) -> tuple[np.ndarray | None, np.float32 | None]:
    """Steps 1-3: the given scales (checked) or the format's own choice."""
    if block_scale is not None and spec.has_tensor_scale and tensor_scale is None:
        raise FormatError(f"block_scale for {spec.name} is relative to a tensor scale that was not given",
                          "tensor_scale", "pass the tensor_scale the block scales were chosen with (see nvfp4_scales)")
    amax = None
    if (block_scale is None and size is not None) or (tensor_scale is None and spec.has_tensor_scale):
        # max |x| per block (of the whole tensor for element-wise formats), exact
        amax = np.max(np.abs(blocks), axis=-1 if size else None, initial=np.float32(0.0))
    ts = None
    if tensor_scale is not None:
        ts = _given_tensor_scale(spec, tensor_scale)
    elif spec.has_tensor_scale:
        ts = np.float32(np.max(amax, initial=np.float32(0.0)) / np.float32(spec.tensor_scale_divisor))
    bs = None
    if block_scale is not None:
        bs = _given_block_scale(spec, block_scale, blocks)
    elif size is not None:
        bs = spec.block_scale_rule(amax, spec.element, spec.scale_codec, ts)
    return bs, ts


def quantize(x: np.ndarray, fmt: str, block_size: int | None = None, *, block_scale: np.ndarray | None = None,
             tensor_scale: float | None = None) -> Quantized:
    """Split ``x`` into ``fmt``'s elements and scales (steps 1-5); see the module doc for the arithmetic.

    ``tensor_scale``/``block_scale`` replace the computed ones (they must be float32 / codec values, >= 0). A
    ``block_scale`` needs the ``tensor_scale`` it was chosen against for formats that have one.
    """
    spec, shape, blocks, size = _prepare(x, fmt, block_size)
    bs, ts = _scales(spec, blocks, size, block_scale, tensor_scale)
    scale = combined_scale(bs, ts)
    if scale is None:
        elements = spec.element.quantize(blocks)
    else:
        with np.errstate(over="ignore"):
            elements = spec.element.quantize(blocks / np.where(scale > 0, scale, np.float32(np.inf)))
    return Quantized(spec, shape, size, elements, bs, ts)


def fake_quant(x: np.ndarray, fmt: str, block_size: int | None = None, *, block_scale: np.ndarray | None = None,
               tensor_scale: float | None = None) -> np.ndarray:
    """Quantize ``x`` to ``fmt`` and dequantize: float32, same shape, blocks along the last axis.

    ``block_size`` defaults to ``BLOCK_SIZES[fmt]`` and must divide the last axis. ``block_scale`` (shape
    ``x.shape[:-1] + (n_blocks,)``) and ``tensor_scale`` override the scales the format would pick, e.g. candidate
    E4M3 block scales in a clipping search: ``fake_quant(w, "nvfp4", block_scale=bs, tensor_scale=ts)``.
    """
    return quantize(x, fmt, block_size, block_scale=block_scale, tensor_scale=tensor_scale).dequantize()


def choose_scales(x: np.ndarray, fmt: str, block_size: int | None = None,
                  ) -> tuple[np.ndarray | None, np.float32 | None]:
    """The scales ``fake_quant`` would use: (block scale values ``[..., n_blocks]`` or None, tensor scale or None)."""
    spec, _, blocks, size = _prepare(x, fmt, block_size)
    return _scales(spec, blocks, size, None, None)


def nvfp4_scales(x: np.ndarray, block_size: int = 16) -> tuple[np.ndarray, np.float32]:
    """NVFP4 scales of ``x``: (E4M3-rounded block scales ``[..., n_blocks]`` float32, FP32 tensor scale).

    ``tensor_scale = fl(amax / 2688)``, ``block_scale = E4M3(fl(fl(block_amax / 6) / tensor_scale))``.
    """
    return choose_scales(x, "nvfp4", block_size)
