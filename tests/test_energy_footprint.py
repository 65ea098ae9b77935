"""fgmpsim.energy footprint: block bits and weight-memory bits per element, checked against hand numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fgmpsim.arch import BlockStorage, load_arch
from fgmpsim.energy import bits_per_element, block_bits, storage_precision_map, weight_footprint_bits
from fgmpsim.errors import TraceError

FGMP = load_arch("fgmp").storage          # FP4 blocks: 16 x 4 + 8-bit scale; FP8: 16 x 8; 1 metadata bit
FP8_BASELINE = load_arch("fp8_baseline").storage
VW = 16


def _map(n: int, kb: int, fp8_fraction: float, seed: int = 0) -> np.ndarray:
    """A [n, kb] map with exactly round(fp8_fraction * n * kb) FP8 blocks at random places."""
    flat = np.zeros(n * kb, dtype=bool)
    flat[: round(fp8_fraction * n * kb)] = True
    return np.random.default_rng(seed).permutation(flat).reshape(n, kb)


def test_block_bits_scalar_and_array() -> None:
    assert block_bits(False, FGMP, VW) == 16 * 4 + 8 == 72
    assert block_bits(True, FGMP, VW) == 16 * 8 == 128
    flags = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(block_bits(flags, FGMP, VW), [[128, 72], [72, 72]])


def test_seventy_percent_fp4_is_5_6125_bits_per_element_and_29_8_percent_below_fp8() -> None:
    weight_map = _map(1000, 250, 0.3)          # 75000 of 250000 blocks in FP8
    # 0.7 x (4 + 8/16) + 0.3 x 8 + 1/16 = 3.15 + 2.4 + 0.0625
    assert bits_per_element(weight_map, FGMP, VW, include_tensor_scale=False) == pytest.approx(5.6125, abs=1e-12)
    elements = 1000 * 250 * 16
    assert bits_per_element(weight_map, FGMP, VW) == pytest.approx(5.6125 + 32 / elements, abs=1e-12)
    fp8 = bits_per_element(storage_precision_map(weight_map, ("fp8",)), FP8_BASELINE, VW, include_tensor_scale=False)
    assert fp8 == 8.0
    assert 1 - 5.6125 / fp8 == pytest.approx(0.2984375)


@pytest.mark.parametrize("fp8, expected", [(True, 8 + 1 / 16), (False, 4.5 + 1 / 16)])
def test_uniform_maps_with_metadata(fp8: bool, expected: float) -> None:
    weight_map = np.full((64, 32), fp8)
    assert bits_per_element(weight_map, FGMP, VW, include_tensor_scale=False) == pytest.approx(expected)
    assert weight_footprint_bits(weight_map, FGMP, VW) == 64 * 32 * (16 * expected) + 32


def test_fp8_block_scale_bits_are_configurable() -> None:
    scaled = dataclasses.replace(FGMP, fp8_scale_bits=8)
    assert block_bits(True, scaled, VW) == 136
    assert bits_per_element(np.ones((8, 8), bool), scaled, VW, include_tensor_scale=False) == 8 + 8 / 16 + 1 / 16


def test_footprint_is_additive_over_blocks() -> None:
    """Flipping every block's precision: map + complement = all-FP8 + all-FP4 (block costs are independent)."""
    weight_map = _map(37, 11, 0.4, seed=3)
    lhs = weight_footprint_bits(weight_map, FGMP, VW) + weight_footprint_bits(~weight_map, FGMP, VW)
    rhs = weight_footprint_bits(np.ones_like(weight_map), FGMP, VW) + weight_footprint_bits(
        np.zeros_like(weight_map), FGMP, VW)
    assert lhs == rhs


def test_a_3d_map_is_repeat_tensors_each_with_a_tensor_scale() -> None:
    one = np.zeros((8, 4), bool)
    three = np.zeros((3, 8, 4), bool)
    assert weight_footprint_bits(three, FGMP, VW) == 3 * weight_footprint_bits(one, FGMP, VW)
    assert weight_footprint_bits(three, FGMP, VW) == 3 * (32 * 72 + 32 * 1 + 32)
    assert bits_per_element(three, FGMP, VW, include_tensor_scale=False) == 4.5 + 1 / 16


def test_storage_precision_map_promotes_or_demotes_for_single_precision_datapaths() -> None:
    weight_map = _map(4, 4, 0.25)
    assert storage_precision_map(weight_map, ("fp8",)).all()
    assert not storage_precision_map(weight_map, ("fp4",)).any()
    np.testing.assert_array_equal(storage_precision_map(weight_map, ("fp4", "fp8")), weight_map)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros(4, bool), np.zeros((1, 2, 3, 4), bool)])
def test_bad_maps_are_trace_errors(bad: np.ndarray) -> None:
    with pytest.raises(TraceError) as err:
        weight_footprint_bits(bad, FGMP, VW)
    assert err.value.field == "weight_map"


def test_storage_record_is_what_the_yaml_says() -> None:
    assert FGMP == BlockStorage(fp4_value_bits=4, fp8_value_bits=8, fp4_scale_bits=8, fp8_scale_bits=0,
                                metadata_bits_per_block=1, tensor_scale_bits=32, psum_bits=32,
                                unquantized_output_bits=16)
