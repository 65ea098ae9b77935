"""MXFP4/MXFP8 (OCP MX v1.0), INT4/INT8, power-of-two-scaled FP4 and per-tensor-scaled FP8 against per-block
references written with Python floats, plus hand-computed values and idempotence."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fgmpsim.errors import FormatError
from fgmpsim.formats import BLOCK_SIZES, FORMATS, choose_scales, encode, fake_quant

F32 = np.float32
ELEMENT = {"mxfp4": (ml_dtypes.float4_e2m1fn, 6.0, 2), "mxfp8": (ml_dtypes.float8_e4m3fn, 448.0, 8),
           "fp4_pow2": (ml_dtypes.float4_e2m1fn, 6.0, 2), "int4": (None, 7.0, None), "int8": (None, 127.0, None)}


def round_element(v: float, fmt: str) -> float:
    dtype, max_value, _ = ELEMENT[fmt]
    v = max(min(v, max_value), -max_value)
    if dtype is None:
        return float(round(v)) + 0.0           # Python's round() is half-to-even
    return float(np.array([v], dtype=F32).astype(dtype).astype(F32)[0])


def block_exponent(amax: float, fmt: str) -> int:
    """MX: floor(log2 amax) - emax; fp4_pow2: smallest k with 6 * 2^k >= amax; clamped to E8M0, zero block -127."""
    if amax == 0:
        return -127
    if fmt.startswith("mx"):
        k = math.frexp(amax)[1] - 1 - ELEMENT[fmt][2]
    else:
        k = math.ceil(math.log2(amax / 6))
        while 6 * 2.0 ** k < amax:
            k += 1
        while 6 * 2.0 ** (k - 1) >= amax:
            k -= 1
    return min(max(k, -127), 127)


def reference(x: np.ndarray, fmt: str, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values, block scales) block by block with Python floats (float64, exact for power-of-two scalings)."""
    block = block or BLOCK_SIZES[fmt]
    out = np.empty_like(x)
    scales = np.empty(x.shape[:-1] + (x.shape[-1] // block,), dtype=F32)
    for idx in np.ndindex(scales.shape):
        blk = x[idx[:-1]][idx[-1] * block:(idx[-1] + 1) * block]
        amax = max(abs(float(v)) for v in blk)
        if fmt.startswith("int"):
            scale = F32(F32(amax) / F32(ELEMENT[fmt][1]))
            q = [round_element(float(F32(v) / scale), fmt) if scale > 0 else 0.0 for v in blk]
            vals = [F32(F32(qi) * scale) for qi in q]
        else:
            scale = 2.0 ** block_exponent(amax, fmt)
            vals = [round_element(float(v) / scale, fmt) * scale for v in blk]
        scales[idx] = scale
        out[idx[:-1]][idx[-1] * block:(idx[-1] + 1) * block] = vals
    return out, scales


def bits(a):
    return np.asarray(a, dtype=F32).view(np.uint32)


def sample(seed, shape=(3, 64), spread=8.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-spread, spread, (shape[0], 1))).astype(F32)


SCALED = ["mxfp4", "mxfp8", "int4", "int8", "fp4_pow2"]


@pytest.mark.parametrize("fmt", SCALED)
@pytest.mark.parametrize("seed", range(4))
def test_bit_exact_against_per_block_reference(fmt, seed):
    x = sample(seed)
    want, want_scales = reference(x, fmt)
    np.testing.assert_array_equal(bits(fake_quant(x, fmt)), bits(want))
    scales, tensor_scale = choose_scales(x, fmt)
    assert tensor_scale is None
    np.testing.assert_array_equal(bits(scales), bits(want_scales))


@pytest.mark.parametrize("fmt", SCALED)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bit_exact_on_generated_arrays(fmt, data):
    blocks = data.draw(st.integers(1, 2))
    x = data.draw(arrays(F32, (2, BLOCK_SIZES[fmt] * blocks),
                         elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
    with np.errstate(over="ignore"):
        want = reference(x, fmt)[0]
    if not np.isfinite(want).all():    # near float32 max: fp4_pow2 rounds up to 2^128, 127 * fl(amax / 127) > max
        with pytest.raises(FormatError, match="float32 range"):
            fake_quant(x, fmt)
        return
    np.testing.assert_array_equal(bits(fake_quant(x, fmt)), bits(want))


def test_mxfp4_hand_computed_with_clamp_to_max_normal():
    x = np.zeros((1, 64), dtype=F32)
    x[0, :5] = [7.5, 5, -3.1, 0.3, 0.25]   # amax 7.5: scale 2^(2 - 2) = 1; 7.5 clamps to 6, ties 5->4, 0.25->0
    x[0, 32] = 0.1                          # amax 0.1: scale 2^(-4 - 2) = 1/64; 6.4 clamps to 6
    want = np.zeros_like(x)
    want[0, :5] = [6, 4, -3, 0.5, 0]
    want[0, 32] = 6 / 64
    np.testing.assert_array_equal(fake_quant(x, "mxfp4"), want)
    enc = encode(x, "mxfp4")
    assert enc.block_scales.tolist() == [[127, 121]]   # E8M0 code = 127 + exponent


def test_mxfp8_hand_computed():
    x = np.zeros((1, 32), dtype=F32)
    x[0, :3] = [500, 300, -0.7]            # amax 500: scale 2^(8 - 8) = 1; 500 clamps to 448; 300 -> 288 (step 32)
    np.testing.assert_array_equal(fake_quant(x, "mxfp8")[0, :3], [448, 288, -0.6875])


def test_mx_scale_exponent_clamps_to_e8m0_range():
    x = np.zeros((1, 32), dtype=F32)
    x[0, 0] = 2.0 ** -140                  # floor(log2) - 2 = -142 < -127: scale 2^-127, the element rounds to 0
    assert encode(x, "mxfp4").block_scales.tolist() == [[0]]
    assert not fake_quant(x, "mxfp4").any()
    big = np.full((1, 32), 3e38, dtype=F32)  # floor(log2) = 127: scale 2^125, still finite
    assert encode(big, "mxfp4").block_scales.tolist() == [[127 + 125]]
    assert np.isfinite(fake_quant(big, "mxfp4")).all()


def test_int4_int8_hand_computed_round_half_even_symmetric_no_negative_zero():
    x = np.zeros((1, 16), dtype=F32)
    x[0, :7] = [7, -3.5, 2.5, 0.5, -0.3, 1.49, -7]   # scale 7 / 7 = 1
    y = fake_quant(x, "int4")
    np.testing.assert_array_equal(y[0, :7], [7, -4, 2, 0, 0, 1, -7])
    assert not np.signbit(y[y == 0]).any()
    x8 = np.zeros((1, 16), dtype=F32)
    x8[0, :4] = [254, 3, 5, -254]                       # scale 2: 1.5 -> 2, 2.5 -> 2
    np.testing.assert_array_equal(fake_quant(x8, "int8")[0, :4], [254, 4, 4, -254])
    # two's complement nibbles, element 2i low: (7, -4) -> 0xC7, (2, 0) -> 0x02, (0, 1) -> 0x10, (-7, 0) -> 0x09
    assert encode(x, "int4").codes[:4].tolist() == [0xC7, 0x02, 0x10, 0x09]


def test_fp4_pow2_scale_is_exact_ceiling_power_of_two_and_never_clips():
    x = np.zeros((4, 16), dtype=F32)
    x[0, 0], x[1, 0], x[2, 0], x[3, 0] = 6, np.nextafter(F32(6), F32(7)), 3, np.nextafter(F32(3), F32(4))
    scales, _ = choose_scales(x, "fp4_pow2")
    assert scales[:, 0].tolist() == [1, 2, 0.5, 1]
    y = fake_quant(x, "fp4_pow2")
    assert y[:, 0].tolist() == [6, 6, 3, 3]
    rng = np.random.default_rng(3)
    z = sample(5, shape=(32, 64), spread=3) * rng.uniform(0.5, 2, (32, 64)).astype(F32)
    s = choose_scales(z, "fp4_pow2")[0].repeat(16, axis=1).astype(np.float64)
    v = np.abs(z) / s
    assert v.max() <= 6
    half_ulp = np.where(v < 2, 0.25, np.where(v < 4, 0.5, 1.0)) * s
    assert (np.abs(z - fake_quant(z, "fp4_pow2")) <= half_ulp).all()   # power-of-two scaling: no fp32 slack needed


def test_rounding_beyond_float32_range_raises():
    x = np.full((1, 16), 1.9 * 2.0 ** 127, dtype=F32)   # scale 2^126, 3.8 rounds to 4: 2^128 is not a float32
    with pytest.raises(FormatError) as err:
        fake_quant(x, "fp4_pow2")
    assert err.value.field == "x"


def test_fp8_e4m3_tensor_scale_is_amax_over_448():
    x = np.array([[896, 300, -1, 0.01]], dtype=F32)      # ts = 2: 150 -> 144 (step 16), -0.5, 0.005 -> 2^-9 * 3
    assert choose_scales(x, "fp8_e4m3_tensor") == (None, F32(2))
    np.testing.assert_array_equal(fake_quant(x, "fp8_e4m3_tensor"), [[896, 288, -1, 2.0 ** -8 * 3]])
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((4, 32)) * 1e-3).astype(F32)
    ts = F32(np.abs(z).max() / F32(448))
    want = (np.clip(z / ts, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(F32) * ts).astype(F32)
    np.testing.assert_array_equal(bits(fake_quant(z, "fp8_e4m3_tensor")), bits(want))


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e4m3_tensor", "mxfp4", "mxfp8", "fp4_pow2", "int4", "int8"])
def test_fake_quant_is_idempotent_with_recomputed_scales(fmt):
    # Power-of-two scales keep the block's binade. For INT and FP8-tensor, fl(fl(q * fl(a / q)) / q) == fl(a / q)
    # (checked exhaustively over all float32 mantissas for q = 7, 127, 448), so the recomputed FP32 scale is the same.
    for seed in range(6):
        y = fake_quant(sample(seed, spread=4), fmt)
        np.testing.assert_array_equal(bits(fake_quant(y, fmt)), bits(y))


def test_zero_blocks_give_zeros_without_warnings():
    x = np.zeros((2, 32), dtype=F32)
    x[1, :16] = -0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fmt in FORMATS:
            assert not fake_quant(x, fmt).any(), fmt


def test_caller_chosen_scales_for_mx_and_int():
    x = sample(1, shape=(2, 64), spread=1)
    scales, _ = choose_scales(x, "mxfp4")
    doubled = scales * 2
    got = fake_quant(x, "mxfp4", block_scale=doubled)
    ref_scaled = (x / doubled.repeat(32, axis=1)).astype(F32)
    want = np.clip(ref_scaled, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(F32) * doubled.repeat(32, axis=1)
    np.testing.assert_array_equal(bits(got), bits(want))
    with pytest.raises(FormatError) as err:
        fake_quant(x, "mxfp4", block_scale=scales * 3)     # not a power of two: not an E8M0 value
    assert err.value.field == "block_scale"
    int_scales = choose_scales(x, "int8")[0]
    np.testing.assert_array_equal(fake_quant(x, "int8", block_scale=int_scales), fake_quant(x, "int8"))
    with pytest.raises(FormatError) as err:
        fake_quant(x, "mxfp4", tensor_scale=F32(1))
    assert err.value.field == "tensor_scale"
