"""NVFP4 (E2M1 elements, E4M3 scale per 16-block, FP32 tensor scale) against an independent per-block reference,
hand-computed values, the true error bound, idempotence and caller-chosen scales."""

from __future__ import annotations

import sys
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fgmpsim.errors import FormatError
from fgmpsim.formats import e4m3_values, encode, fake_quant, nvfp4_scales

F32 = np.float32


def cast(value, dtype) -> np.float32:
    return np.array(value, dtype=F32).astype(dtype).astype(F32)[()]


def nvfp4_reference(x, block=16, block_scale=None, tensor_scale=None):
    """The NVIDIA recipe element by element with float32 scalars and ml_dtypes casts (a Python loop)."""
    x = np.asarray(x, dtype=F32)
    amax = max((abs(v) for v in x.flat), default=F32(0))
    ts = F32(amax / F32(2688)) if tensor_scale is None else F32(tensor_scale)
    out = np.empty_like(x)
    scales = np.empty(x.shape[:-1] + (x.shape[-1] // block,), dtype=F32)
    for idx in np.ndindex(x.shape[:-1]):
        for b in range(x.shape[-1] // block):
            blk = x[idx][b * block:(b + 1) * block]
            if block_scale is None:
                ratio = (max(abs(v) for v in blk) / F32(6)) / ts if ts > 0 else F32(0)
                bs = cast(min(ratio, F32(448)), ml_dtypes.float8_e4m3fn)
            else:
                bs = F32(block_scale[idx + (b,)])
            s = F32(bs * ts)
            scales[idx + (b,)] = bs
            for i, v in enumerate(blk):
                q = cast(max(min(v / s, F32(6)), F32(-6)), ml_dtypes.float4_e2m1fn) if s > 0 else np.copysign(F32(0), v)
                out[idx + (b * block + i,)] = F32(q * s)
    return out, scales, ts


def bits(a):
    return np.asarray(a, dtype=F32).view(np.uint32)


def sample(seed, shape=(4, 64), spread=6.0, heavy=False):
    rng = np.random.default_rng(seed)
    base = rng.standard_t(2, shape) if heavy else rng.standard_normal(shape)
    return (base * 10.0 ** rng.uniform(-spread, spread)).astype(F32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("heavy", [False, True])
def test_nvfp4_bit_exact_against_per_block_reference(seed, heavy):
    x = sample(seed, heavy=heavy)
    want, want_bs, want_ts = nvfp4_reference(x)
    np.testing.assert_array_equal(bits(fake_quant(x, "nvfp4")), bits(want))
    bs, ts = nvfp4_scales(x)
    np.testing.assert_array_equal(bits(bs), bits(want_bs))
    assert bits(ts) == bits(want_ts)


def test_nvfp4_hand_computed_example():
    x = np.zeros((1, 48), dtype=F32)
    x[0, :6] = [2688, 1000, -1200, 100, 112, 336]   # amax 2688 -> tensor scale exactly 1; block scale 448
    x[0, 16:21] = [60, 25, 35, -7, 50]               # block scale E4M3(60 / 6) = 10
    x[0, 32:34] = [13, -1]                           # block scale E4M3(13 / 6 = 2.1667) = 2.25
    want = np.zeros_like(x)
    want[0, :6] = [2688, 896, -1344, 0, 0, 448]      # 6, 2.23->2, -2.68->-3, 0.22->0, tie 0.25->0, tie 0.75->1
    want[0, 16:21] = [60, 20, 40, -5, 40]            # 6, tie 2.5->2, tie 3.5->4, -0.7->-0.5, tie 5->4
    want[0, 32:34] = [13.5, -1.125]                  # 5.78->6, -0.44->-0.5
    np.testing.assert_array_equal(fake_quant(x, "nvfp4"), want)
    bs, ts = nvfp4_scales(x)
    assert ts == 1.0 and bs.tolist() == [[448.0, 10.0, 2.25]]


def test_all_zero_tensor_and_zero_or_underflowing_blocks_give_signed_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zeros = np.array([[0.0] * 8 + [-0.0] * 8], dtype=F32)
        y = fake_quant(zeros, "nvfp4")
        np.testing.assert_array_equal(bits(y), bits(zeros))
        bs, ts = nvfp4_scales(zeros)
        assert ts == 0 and bs.tolist() == [[0.0]]
        x = np.zeros((2, 32), dtype=F32)
        x[0, :16] = 1000.0
        x[1, 16:] = np.linspace(-1e-6, 1e-6, 16)     # block amax / 6 / ts ~ 4.5e-7 < 2^-10: E4M3 scale 0
        y = fake_quant(x, "nvfp4")
    np.testing.assert_array_equal(y[0, :16], 1000.0)
    assert not y[1].any() and not y[0, 16:].any()
    np.testing.assert_array_equal(np.signbit(y[1, 16:]), np.signbit(x[1, 16:]))
    np.testing.assert_array_equal(bits(y), bits(nvfp4_reference(x)[0]))


finite = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3).flatmap(lambda rows: st.integers(1, 3).flatmap(
    lambda blocks: arrays(F32, (rows, 16 * blocks), elements=finite))))
def test_nvfp4_bit_exact_on_generated_arrays(x):
    y = fake_quant(x, "nvfp4")
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(bits(y), bits(nvfp4_reference(x)[0]))


def half_ulp_e2m1(v):
    """Half the E2M1 grid spacing around magnitude v (spacing 0.5 below 2, 1 in [2, 4), 2 in [4, 6])."""
    return np.where(v < 2, 0.25, np.where(v < 4, 0.5, 1.0))


def test_error_bound_half_ulp_of_block_grid_with_bounded_overshoot():
    rng = np.random.default_rng(7)
    # blocks spanning 10 decades below the tensor amax: normal, subnormal and zero E4M3 block scales all occur
    x = (rng.standard_normal((64, 256)) * 10.0 ** rng.uniform(-10, 0, (64, 16)).repeat(16, axis=1)).astype(F32)
    y = fake_quant(x, "nvfp4").astype(np.float64)
    bs, ts = nvfp4_scales(x)
    s = (bs * ts).repeat(16, axis=1).astype(np.float64)
    normal = (bs >= 2.0 ** -6).repeat(16, axis=1)
    subnormal, zero = ((bs > 0) & (bs < 2.0 ** -6)).repeat(16, axis=1), (bs == 0).repeat(16, axis=1)
    assert normal.sum() and subnormal.sum() and zero.sum()
    mag, err = np.abs(x.astype(np.float64)), np.abs(x - y)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(s > 0, mag / s, 0.0)
    fp32_slack = 2.0 ** -22 * (mag + np.abs(y))
    # With a normal E4M3 block scale, RNE of the scale (relative error <= 2^-4) lets the block amax land at up to
    # 6 * (1 + 2^-4) = 6.375 grid units: elements are clipped, but by at most 0.375 s, under the top half-ulp (1 s).
    assert v[normal].max() <= 6.375 * (1 + 2.0 ** -20)
    assert (v[normal] > 6).any()
    assert (err <= half_ulp_e2m1(np.minimum(v, 6)) * s + fp32_slack)[normal].all()
    # Subnormal block scales round coarsely, so clipping can exceed the half-ulp: the bound gains the clip term.
    clip = np.maximum(mag - 6 * s, 0)
    assert (err <= half_ulp_e2m1(np.minimum(v, 6)) * s + clip + fp32_slack).all()
    assert (clip[subnormal] > half_ulp_e2m1(6) * s[subnormal]).any()
    assert not y[zero].any()


def test_requantizing_with_the_same_scales_is_bit_exact():
    for seed in range(4):
        x = sample(seed, shape=(8, 128))
        y = fake_quant(x, "nvfp4")
        bs, ts = nvfp4_scales(x)
        np.testing.assert_array_equal(bits(fake_quant(y, "nvfp4", block_scale=bs, tensor_scale=ts)), bits(y))


def test_requantizing_with_recomputed_scales_keeps_codes_but_tensor_scale_may_drift_an_ulp():
    # amax(y) = fl(6 * fl(448 * ts)) is not always 2688 * ts exactly, so fl(amax(y) / 2688) can differ from ts in
    # the last bit; every E4M3 block scale and E2M1 code is unchanged, values move by that ulp at most.
    drifted = 0
    for seed in range(40):
        x = sample(seed, shape=(4, 64))
        y = fake_quant(x, "nvfp4")
        first, second = encode(x, "nvfp4"), encode(y, "nvfp4")
        np.testing.assert_array_equal(first.codes, second.codes)
        np.testing.assert_array_equal(first.block_scales, second.block_scales)
        assert abs(second.tensor_scale / first.tensor_scale - 1) <= 2.0 ** -22
        np.testing.assert_allclose(fake_quant(y, "nvfp4"), y, rtol=2.0 ** -21, atol=0)
        drifted += second.tensor_scale != first.tensor_scale
    assert 0 < drifted < 40


def test_caller_chosen_e4m3_block_scales_follow_the_recipe():
    x = sample(3, shape=(4, 64), spread=2)
    bs, ts = nvfp4_scales(x)
    grid = e4m3_values()
    for candidate in (bs, grid[np.maximum(np.searchsorted(grid, bs) - 3, 0)],
                      grid[np.minimum(np.searchsorted(grid, bs) + 2, 126)]):
        got = fake_quant(x, "nvfp4", block_scale=candidate, tensor_scale=ts)
        np.testing.assert_array_equal(bits(got), bits(nvfp4_reference(x, block_scale=candidate, tensor_scale=ts)[0]))
    smaller = grid[np.maximum(np.searchsorted(grid, bs) - 3, 0)]
    clipped = fake_quant(x, "nvfp4", block_scale=smaller, tensor_scale=ts)
    assert np.all(np.abs(clipped) <= (6 * (smaller * ts)).repeat(16, axis=1))


def test_given_tensor_scale_saturates_block_scales():
    x = sample(4, shape=(2, 32), spread=0) * F32(100 / 3)
    ts = F32(0.001)                              # much smaller than amax / 2688: block scales saturate at 448
    y = fake_quant(x, "nvfp4", tensor_scale=ts)
    np.testing.assert_array_equal(bits(y), bits(nvfp4_reference(x, tensor_scale=ts)[0]))
    assert np.abs(y).max() == F32(6 * F32(F32(448) * ts))


@pytest.mark.parametrize("kwargs, field", [
    ({"block_scale": np.full((2, 2), 10.1), "tensor_scale": F32(1)}, "block_scale"),  # not an E4M3 value
    ({"block_scale": np.full((2, 2), 10.0)}, "tensor_scale"),                     # tensor scale missing
    ({"block_scale": np.full((2, 3), 10.0), "tensor_scale": F32(1)}, "block_scale"),  # wrong shape
    ({"block_scale": np.full((2, 2), -1.0), "tensor_scale": F32(1)}, "block_scale"),
    ({"block_scale": np.full((2, 2), 500.0), "tensor_scale": F32(1)}, "block_scale"),
    ({"tensor_scale": 0.1}, "tensor_scale"),                                       # not a float32 value
    ({"tensor_scale": -1.0}, "tensor_scale"),
    ({"tensor_scale": float("nan")}, "tensor_scale"),
])
def test_bad_caller_scales_raise_with_the_field(kwargs, field):
    with pytest.raises(FormatError) as err:
        fake_quant(np.ones((2, 32), dtype=F32), "nvfp4", **kwargs)
    assert err.value.field == field


def _python_calls(fn) -> int:
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_fake_quant_is_vectorized_python_call_count_does_not_grow_with_size():
    small = sample(0, shape=(16, 16), spread=0)
    large = np.random.default_rng(0).standard_normal((4096, 4096), dtype=F32)
    n_small = _python_calls(lambda: fake_quant(small, "nvfp4"))
    n_large = _python_calls(lambda: fake_quant(large, "nvfp4"))
    assert n_large == n_small < 500
