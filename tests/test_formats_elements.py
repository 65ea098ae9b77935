"""Element rounding (FP8 E4M3, FP4 E2M1) is bit-exact: against ml_dtypes casts and against an independent
nearest-value table built from the formats' bit layouts."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from fgmpsim.formats import e2m1_values, e4m3_values, quantize_e2m1, quantize_e4m3, round_to_e4m3


def minifloat_table(exp_bits: int, man_bits: int, bias: int, n_codes: int) -> np.ndarray:
    """Non-negative values of codes 0..n_codes-1 from the bit layout (subnormals at exponent field 0)."""
    codes = np.arange(n_codes)
    exp_field, man_field = codes >> man_bits, codes & ((1 << man_bits) - 1)
    frac = man_field / 2.0 ** man_bits
    return np.where(exp_field == 0, frac * 2.0 ** (1 - bias), (1 + frac) * 2.0 ** (exp_field - bias))


E4M3_TABLE = minifloat_table(4, 3, 7, 127)   # code 0x7F is NaN
E2M1_TABLE = minifloat_table(2, 1, 1, 8)


def nearest_even(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Round to the nearest table value, ties to the even code, saturating at the table's max; sign kept."""
    mag = np.minimum(np.abs(x.astype(np.float64)), table[-1])
    hi = np.clip(np.searchsorted(table, mag), 1, len(table) - 1)
    lo = hi - 1
    d_lo, d_hi = mag - table[lo], table[hi] - mag
    pick = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.copysign(table[pick], x).astype(np.float32)


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def random_normals_many_scales(seed: int, n: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)).astype(np.float32)


E4M3_ADVERSARIAL = np.array([
    0.0, -0.0,
    2.0 ** -9, -(2.0 ** -9), 3 * 2.0 ** -9, 7 * 2.0 ** -9,            # subnormals
    2.0 ** -10, 3 * 2.0 ** -10, 5 * 2.0 ** -10, 2.0 ** -10 * 1.0001,  # ties between subnormals, just above a tie
    15 * 2.0 ** -10,                                                  # tie between largest subnormal and 2^-6
    2.0 ** -6, 1.0625, 1.1875, -1.0625, 1.0625 * (1 + 2 ** -23),      # ties between normals and just above
    240.0, 232.0, 416.0, 432.0,                                       # ties in the top binade
    447.9, 448.0, 448.1, 464.0, 465.0, -464.0, 479.9, 480.0, 1e30, -3.4e38,  # at, above and far above the max
    1e-30, -1e-30, 1e-45,                                             # tiny, float32 subnormal
], dtype=np.float32)


def test_e4m3_matches_saturating_ml_dtypes_cast_and_table_on_normals_at_many_scales():
    x = random_normals_many_scales(0)
    ours = quantize_e4m3(x)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    via_ml_dtypes = np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    np.testing.assert_array_equal(bits(ours), bits(via_ml_dtypes))
    np.testing.assert_array_equal(bits(ours), bits(nearest_even(x, E4M3_TABLE)))


def test_e4m3_adversarial_ties_subnormals_and_saturation():
    ours = round_to_e4m3(E4M3_ADVERSARIAL)
    np.testing.assert_array_equal(bits(ours), bits(nearest_even(E4M3_ADVERSARIAL, E4M3_TABLE)))
    np.testing.assert_array_equal(
        bits(ours), bits(np.clip(E4M3_ADVERSARIAL, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)))
    expected = {0.0: 0.0, 2.0 ** -10: 0.0, 3 * 2.0 ** -10: 2.0 ** -8, 5 * 2.0 ** -10: 2.0 ** -8,
                15 * 2.0 ** -10: 2.0 ** -6, 1.0625: 1.0, 1.1875: 1.25, 240.0: 240.0, 232.0: 224.0, 416.0: 416.0,
                432.0: 448.0, 464.0: 448.0, 465.0: 448.0, 480.0: 448.0, 1e30: 448.0, 1e-30: 0.0}
    got = dict(zip(E4M3_ADVERSARIAL.tolist(), ours.tolist()))
    for value, want in expected.items():
        assert got[np.float32(value).item()] == want, value
    assert np.signbit(ours[1]) and ours[1] == 0  # -0.0 stays -0.0
    assert ours[E4M3_ADVERSARIAL.tolist().index(np.float32(-3.4e38).item())] == -448.0


def test_e2m1_values_ties_and_saturation():
    x = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -5.0, 0.2499, 0.2501, 5.0001, 6.0, 6.5, 7.0, 1e30,
                  -1e30, -0.0, 0.1], dtype=np.float32)
    want = np.array([0, 1, 1, 2, 2, 4, 4, -4, 0, 0.5, 6, 6, 6, 6, 6, -6, -0.0, 0], dtype=np.float32)
    np.testing.assert_array_equal(bits(quantize_e2m1(x)), bits(want))


def test_e2m1_matches_table_and_ml_dtypes_on_normals_at_many_scales():
    x = (random_normals_many_scales(1) / 1e4).astype(np.float32)
    ours = quantize_e2m1(x)
    np.testing.assert_array_equal(bits(ours), bits(nearest_even(x, E2M1_TABLE)))
    np.testing.assert_array_equal(
        bits(ours), bits(np.clip(x, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float32)))


def test_value_tables_match_bit_layouts():
    np.testing.assert_array_equal(e2m1_values(), E2M1_TABLE.astype(np.float32))
    np.testing.assert_array_equal(e2m1_values(), [0, 0.5, 1, 1.5, 2, 3, 4, 6])
    np.testing.assert_array_equal(e4m3_values(), E4M3_TABLE.astype(np.float32))
    assert e4m3_values()[-1] == 448 and e4m3_values()[1] == 2.0 ** -9 and len(e4m3_values()) == 127


def test_inputs_are_rounded_to_float32_first():
    # 1.0625 + 2^-40 is above the 1 / 1.125 tie in float64 but *is* the tie in float32: the quantizers compute in
    # float32 (as ml_dtypes does for float64 input), so it rounds to even (1.0).
    assert quantize_e4m3(np.array([1.0625 + 2.0 ** -40]))[0] == 1.0
    values = [1.0625, 3.0, -200.0, 0.3]
    want = bits(quantize_e4m3(np.array(values, dtype=np.float32)))
    for dtype in (np.float16, ml_dtypes.bfloat16):  # exact in float32, so same result as float32 input
        x = np.array(values, dtype=np.float32).astype(dtype)
        np.testing.assert_array_equal(bits(quantize_e4m3(x)), bits(quantize_e4m3(x.astype(np.float32))))
    np.testing.assert_array_equal(bits(quantize_e4m3(np.array(values, dtype=np.float64))), want)
    assert quantize_e4m3(np.array([3, -500], dtype=np.int32)).tolist() == [3.0, -448.0]


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, array_shapes(max_dims=3, max_side=8), elements=finite_f32))
def test_e4m3_and_e2m1_bit_exact_on_generated_arrays(x):
    np.testing.assert_array_equal(bits(quantize_e4m3(x)), bits(nearest_even(x, E4M3_TABLE)))
    np.testing.assert_array_equal(bits(quantize_e2m1(x)), bits(nearest_even(x, E2M1_TABLE)))


@pytest.mark.parametrize("quantizer", [quantize_e4m3, quantize_e2m1])
def test_quantized_values_are_fixed_points(quantizer):
    x = random_normals_many_scales(2)
    once = quantizer(x)
    np.testing.assert_array_equal(bits(quantizer(once)), bits(once))
