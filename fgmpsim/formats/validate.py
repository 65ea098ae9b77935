"""Checks at the edge of the formats package: input dtype, finiteness, block size, user-supplied scales."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from fgmpsim.errors import FormatError


def _is_real_number_dtype(dtype: np.dtype) -> bool:
    """numpy floats and integers, and ml_dtypes floats (bfloat16, float8_*), which numpy sees as kind 'V'."""
    if dtype.kind in "fiu":
        return True
    if dtype.kind != "V":
        return False
    try:
        ml_dtypes.finfo(dtype)
    except ValueError:
        return False
    return True


def as_finite_float32(x: np.ndarray, fmt: str) -> np.ndarray:
    """``x`` as a float32 array (no copy if it already is one); raise ``FormatError`` on non-finite values.

    Any real dtype is accepted (numpy floats and ints, ml_dtypes floats such as bfloat16). Casting float64 to float32
    rounds to nearest even; values beyond the float32 range are rejected rather than turned into ±inf.
    """
    arr = np.asarray(x)
    if not _is_real_number_dtype(arr.dtype):
        raise FormatError(f"input of dtype {arr.dtype} cannot be quantized to {fmt}", "x",
                          "pass a real-valued array (float32, float16, bfloat16, float64 or integers)")
    with np.errstate(over="ignore"):
        x32 = arr.astype(np.float32, copy=False)
    finite = np.isfinite(x32)
    if not finite.all():
        n_bad = x32.size - int(np.count_nonzero(finite))
        n_nonfinite = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if n_nonfinite:
            raise FormatError(f"{n_nonfinite} non-finite values (NaN or ±inf) in the input to {fmt}", "x",
                              "remove or replace them (e.g. np.nan_to_num) before quantizing")
        raise FormatError(f"{n_bad} values exceed the float32 range (|x| > 3.4e38) in the input to {fmt}", "x",
                          "rescale the input; quantization computes in float32")
    return x32


def check_block_size(fmt: str, block_size: object, shape: tuple[int, ...]) -> int:
    """Return ``block_size`` as an int after checking it is positive and divides the last axis of ``shape``."""
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise FormatError(f"block size must be a positive integer for {fmt}, got {block_size!r}", "block_size",
                          "pass e.g. 16 (NVFP4) or 32 (MX), or leave it out for the format's default")
    if not shape:
        raise FormatError(f"{fmt} quantizes blocks along the last axis, but the input is a 0-d scalar", "x",
                          "pass an array with at least one axis, e.g. np.atleast_1d(x)")
    axis_len = shape[-1]
    if axis_len % block_size:
        raise FormatError(f"block size {block_size} does not divide the last axis (length {axis_len}) for {fmt}",
                          "block_size", f"pad the last axis to a multiple of {block_size} or pass a block size "
                          f"that divides {axis_len}")
    return int(block_size)


def check_scale_array(name: str, fmt: str, scale: object, shape: tuple[int, ...]) -> np.ndarray:
    """A user-supplied scale as float64 with the expected ``shape``, finite and non-negative (else FormatError)."""
    arr = np.asarray(scale)
    if not _is_real_number_dtype(arr.dtype):
        raise FormatError(f"{name} of dtype {arr.dtype} for {fmt}", name, "pass real-valued scales")
    arr = arr.astype(np.float64)
    if arr.shape != shape:
        raise FormatError(f"{name} has shape {arr.shape} for {fmt}, expected {shape}", name,
                          "pass one scale per block: the input's shape with the last axis divided by the block size")
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        raise FormatError(f"{int(np.count_nonzero(bad))} {name} values are negative or non-finite for {fmt}", name,
                          "scales must be finite and >= 0")
    return arr
