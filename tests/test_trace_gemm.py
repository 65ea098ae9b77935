"""One-GEMM traces: exact FP4 counts, uniform extremes, seeding, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import PolicyError, TraceError
from fgmpsim.trace import gemm_trace, load_trace


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.7, 0.9999, 1.0])
def test_each_map_has_exactly_round_fraction_times_blocks_fp4_blocks(fraction):
    trace = gemm_trace(96, 208, 40, fp4_fraction=fraction, seed=3)
    op = trace.ops[0]
    weight, act = op.weight_map_array(), op.act_map_array()
    assert weight.shape == (40, 13) and act.shape == (96, 13)
    assert np.count_nonzero(~weight) == round(fraction * 40 * 13)
    assert np.count_nonzero(~act) == round(fraction * 96 * 13)
    assert (op.m, op.k, op.n, op.repeat, op.kind, op.consumer) == (96, 208, 40, 1, "linear", None)


def test_random_maps_are_seeded_and_spread_over_the_whole_map():
    a = gemm_trace(512, 512, 512, fp4_fraction=0.5, seed=1).ops[0].weight_map_array()
    b = gemm_trace(512, 512, 512, fp4_fraction=0.5, seed=1).ops[0].weight_map_array()
    c = gemm_trace(512, 512, 512, fp4_fraction=0.5, seed=2).ops[0].weight_map_array()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # uniform positions: every row and column near half FP8 (binomial sd of a row of 32 blocks is 0.088)
    assert np.abs(a.mean(axis=1) - 0.5).max() < 0.35 and np.abs(a.mean(axis=0) - 0.5).max() < 0.1


def test_repeat_and_macs_round_trip(tmp_path):
    trace = gemm_trace(64, 128, 32, fp4_fraction=0.7, repeat=4)
    assert trace.macs == 64 * 128 * 32 * 4
    trace.save(tmp_path / "g")
    loaded = load_trace(tmp_path / "g")
    np.testing.assert_array_equal(loaded.ops[0].act_map_array(), trace.ops[0].act_map_array())
    assert loaded.meta["fp4_fraction_achieved"] == trace.meta["fp4_fraction_achieved"]


@pytest.mark.parametrize("kwargs, error, field", [
    ({"k": 0}, TraceError, "k"),
    ({"m": 0}, TraceError, "m"),
    ({"n": -2}, TraceError, "n"),
    ({"repeat": 0}, TraceError, "repeat"),
    ({"fp4_fraction": 1.01}, PolicyError, "fp4_fraction"),
    ({"seed": -1}, TraceError, "seed"),
])
def test_bad_gemm_settings_name_the_field(kwargs, error, field):
    settings = {"m": 16, "k": 64, "n": 16, **kwargs}
    with pytest.raises(error) as err:
        gemm_trace(**settings)
    assert err.value.field == field
