"""encode/decode: the round trip equals fake_quant bit for bit, storage bits are counted exactly, codes are laid
out as documented, and corrupt encodings are rejected."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fgmpsim.errors import FormatError
from fgmpsim.formats import BLOCK_SIZES, FORMATS, Encoded, decode, encode, fake_quant, nvfp4_scales

F32 = np.float32


def bits(a):
    return np.asarray(a, dtype=F32).view(np.uint32)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("shape", [(4, 64), (2, 3, 32), (64,)])
def test_decode_of_encode_equals_fake_quant_bit_for_bit(fmt, shape):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape[:-1] + (1,))).astype(F32)
    x.flat[::7] = 0.0
    x.flat[1::11] = -0.0
    enc = encode(x, fmt)
    assert enc.shape == shape and enc.fmt == fmt
    np.testing.assert_array_equal(bits(decode(enc)), bits(fake_quant(x, fmt)))


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(sorted(FORMATS)), data=st.data())
def test_round_trip_on_generated_arrays(fmt, data):
    width = BLOCK_SIZES[fmt] or 8
    x = data.draw(arrays(F32, (data.draw(st.integers(1, 3)), width * data.draw(st.integers(1, 2))),
                         elements=st.floats(-2.0 ** 100, 2.0 ** 100, width=32)))
    np.testing.assert_array_equal(bits(decode(encode(x, fmt))), bits(fake_quant(x, fmt)))


@pytest.mark.parametrize("fmt, want", [
    ("nvfp4", 256 * 4 + 16 * 8 + 32),       # E2M1 elements, one E4M3 per 16, FP32 tensor scale
    ("mxfp4", 256 * 4 + 8 * 8),             # one E8M0 per 32
    ("mxfp8", 256 * 8 + 8 * 8),
    ("int4", 256 * 4 + 16 * 32),            # FP32 scale per 16
    ("int8", 256 * 8 + 16 * 32),
    ("fp4_pow2", 256 * 4 + 16 * 8),
    ("fp8_e4m3", 256 * 8),
    ("fp8_e4m3_tensor", 256 * 8 + 32),
])
def test_bits_count_elements_scales_and_tensor_scale(fmt, want):
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(F32)
    enc = encode(x, fmt)
    assert enc.bits == want == FORMATS[fmt].storage_bits(256)
    assert enc.codes.nbytes * 8 + (0 if enc.block_scales is None else enc.block_scales.nbytes * 8) + \
        (32 if enc.tensor_scale is not None else 0) == want


def test_nvfp4_block_size_changes_the_scale_count():
    x = np.ones((4, 64), dtype=F32)
    assert encode(x, "nvfp4", 32).bits == 256 * 4 + 8 * 8 + 32


def test_nvfp4_code_layout_low_nibble_first_e4m3_scale_bytes_fp32_tensor_scale():
    x = np.zeros((1, 32), dtype=F32)
    x[0, :4] = [2688, 1000, -1200, 336]      # tensor scale 1, block scale 448: elements 6, 2, -3, 1
    enc = encode(x, "nvfp4")
    # E2M1 codes: 6 = 0b0111, 2 = 0b0100, -3 = 0b1101, 1 = 0b0010
    assert enc.codes[:2].tolist() == [0x47, 0x2D]
    assert enc.codes.shape == (16,) and enc.codes.dtype == np.uint8
    assert enc.block_scales.tolist() == [[0x7E, 0x00]]      # E4M3 448 = 0 1111 110; empty block -> 0
    assert enc.tensor_scale == F32(1) and isinstance(enc.tensor_scale, np.float32)
    bs, ts = nvfp4_scales(x)
    assert bs.tolist() == [[448, 0]] and ts == enc.tensor_scale


def test_fp8_codes_are_e4m3fn_bytes_and_int8_codes_twos_complement():
    x = np.array([[448, -448, 1, -0.0, 2.0 ** -9, 0.0, 1.125, -2]], dtype=F32)
    assert encode(x, "fp8_e4m3").codes.tolist() == [0x7E, 0xFE, 0x38, 0x80, 0x01, 0x00, 0x39, 0xC0]
    y = np.zeros((1, 16), dtype=F32)
    y[0, :3] = [127, -127, -1]
    assert encode(y, "int8").codes[:3].tolist() == [0x7F, 0x81, 0xFF]
    assert encode(y, "int8").block_scales.view(F32).tolist() == [[1.0]]   # FP32 scale bits as uint32


def test_odd_element_count_pads_one_nibble():
    x = np.array([6.0, -6.0, 3.0], dtype=F32)
    enc = encode(x, "nvfp4", block_size=1)
    assert enc.codes.tolist() == [0xF7, 0x07] and enc.bits == 3 * 4 + 3 * 8 + 32
    np.testing.assert_array_equal(decode(enc), fake_quant(x, "nvfp4", 1))


def test_encoded_is_immutable():
    enc = encode(np.ones((2, 16), dtype=F32), "nvfp4")
    with pytest.raises(ValueError):
        enc.codes[0] = 1
    with pytest.raises(ValueError):
        enc.block_scales[0, 0] = 1
    with pytest.raises(AttributeError):
        enc.fmt = "mxfp4"


def test_inconsistent_or_corrupt_encodings_raise():
    enc = encode(np.ones((2, 32), dtype=F32), "mxfp4")
    with pytest.raises(FormatError) as err:
        Encoded("mxfp4", (2, 32), 32, enc.codes[:-1], enc.block_scales, None)
    assert err.value.field == "codes"
    with pytest.raises(FormatError) as err:
        Encoded("mxfp4", (2, 32), 16, enc.codes, enc.block_scales, None)
    assert err.value.field == "block_scales"
    with pytest.raises(FormatError) as err:
        Encoded("mxfp4", (2, 32), 32, enc.codes, enc.block_scales, F32(1))
    assert err.value.field == "tensor_scale"
    with pytest.raises(FormatError) as err:
        Encoded("nvfp5", (2, 32), 32, enc.codes, enc.block_scales, None)
    assert err.value.field == "fmt"
    nan_scale = Encoded("mxfp4", (2, 32), 32, enc.codes, np.full((2, 1), 0xFF, np.uint8), None)  # E8M0 NaN
    with pytest.raises(FormatError, match="invalid"):
        decode(nan_scale)
    nan_element = Encoded("fp8_e4m3", (2,), None, np.array([0x7F, 0x00], np.uint8), None, None)  # E4M3 NaN
    with pytest.raises(FormatError, match="NaN"):
        decode(nan_element)
