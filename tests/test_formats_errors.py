"""Bad input gets a FormatError (a ValueError) that names the field and the fix, never a NaN or a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import FormatError
from fgmpsim.formats import (BLOCK_SIZES, FORMATS, choose_scales, encode, fake_quant, nvfp4_scales, quantize_e2m1,
                             quantize_e4m3)

ENTRY_POINTS = [
    lambda x: fake_quant(x, "nvfp4"), lambda x: fake_quant(x, "fp8_e4m3"), lambda x: encode(x, "mxfp4"),
    lambda x: nvfp4_scales(x), quantize_e4m3, quantize_e2m1,
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_non_finite_input_raises_with_the_count(entry):
    x = np.ones((2, 32), dtype=np.float32)
    x[0, 3], x[1, 5], x[1, 6] = np.nan, np.inf, -np.inf
    with pytest.raises(FormatError, match="3 non-finite values") as err:
        entry(x)
    assert isinstance(err.value, ValueError) and err.value.field == "x"


def test_float64_beyond_float32_range_is_not_silently_inf():
    x = np.ones((1, 16))
    x[0, 0] = 1e300
    with pytest.raises(FormatError, match="1 values exceed the float32 range"):
        fake_quant(x, "nvfp4")


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(FormatError) as err:
        fake_quant(np.ones(16), "nvfp8")
    assert err.value.field == "fmt"
    for name in FORMATS:
        assert name in str(err.value)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_block_size_that_does_not_divide_the_last_axis_names_format_axis_and_fix(fmt):
    with pytest.raises(FormatError) as err:
        fake_quant(np.ones((2, 40)), fmt, block_size=16 if fmt != "fp8_e4m3" else 3)
    message = str(err.value)
    assert err.value.field == "block_size" and fmt in message and "40" in message and "pad" in message


@pytest.mark.parametrize("block_size", [0, -16, 16.0, True, "16"])
def test_block_size_must_be_a_positive_integer(block_size):
    with pytest.raises(FormatError) as err:
        fake_quant(np.ones((2, 32)), "nvfp4", block_size=block_size)
    assert err.value.field == "block_size"


def test_default_block_sizes_must_divide_too():
    assert BLOCK_SIZES == {"fp8_e4m3": None, "fp8_e4m3_tensor": None, "nvfp4": 16, "mxfp4": 32, "mxfp8": 32,
                           "int4": 16, "int8": 16, "fp4_fp32": 16, "fp8_e4m3_block": 16, "fp4_pow2": 16}
    with pytest.raises(FormatError, match="block size 32 does not divide the last axis \\(length 48\\)"):
        fake_quant(np.ones((1, 48)), "mxfp4")
    fake_quant(np.ones((1, 48)), "mxfp4", block_size=16)   # settable


def test_scalar_input_needs_an_axis_for_block_formats_but_not_element_wise():
    with pytest.raises(FormatError) as err:
        fake_quant(np.float32(3.0), "nvfp4")
    assert err.value.field == "x"
    assert fake_quant(np.float32(500.0), "fp8_e4m3") == 448


@pytest.mark.parametrize("x", [np.ones(16, dtype=np.complex64), np.array(["a"] * 16), np.array([None] * 16)])
def test_non_real_input_raises(x):
    with pytest.raises(FormatError) as err:
        fake_quant(x, "nvfp4")
    assert err.value.field == "x"


def test_scales_for_formats_that_have_none_are_rejected():
    x = np.ones((1, 32), dtype=np.float32)
    with pytest.raises(FormatError) as err:
        fake_quant(x, "fp8_e4m3", block_scale=np.ones((1, 2)))
    assert err.value.field == "block_scale"
    with pytest.raises(FormatError) as err:
        fake_quant(x, "int4", tensor_scale=np.float32(1))
    assert err.value.field == "tensor_scale"


def test_empty_arrays_quantize_to_empty():
    for fmt in FORMATS:
        assert fake_quant(np.zeros((0, 32), dtype=np.float32), fmt).shape == (0, 32)
    assert choose_scales(np.zeros((3, 0)), "nvfp4")[1] == 0
