"""Sensitivity-weighted clipping of NVFP4 weight blocks (numpy only)."""

from __future__ import annotations

import numpy as np

from fgmpsim.formats import e4m3_values, fake_quant, nvfp4_scales
from fgmpsim.quant.clipping import clipped_block_scales, clipped_nvfp4
from fgmpsim.quant.scores import weighted_block_error


def _weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = (rng.standard_t(3, (96, 64)) * 0.02).astype(np.float32)  # heavy tails: outliers worth clipping
    w[5, :16] = 0.0  # an all-zero block
    fisher = rng.random((96, 64)) ** 4
    return w, fisher


def test_clipping_never_increases_any_blocks_fisher_weighted_error():
    w, fisher = _weights()
    clipped = weighted_block_error(clipped_nvfp4(w, fisher), w, fisher, 16)
    amax = weighted_block_error(fake_quant(w, "nvfp4"), w, fisher, 16)
    assert (clipped <= amax).all()
    assert (clipped < amax).mean() > 0.2  # and it helps often on heavy-tailed weights
    assert clipped.sum() < 0.9 * amax.sum()


def test_chosen_scales_are_e4m3_values_between_half_and_all_of_the_amax_scale():
    w, fisher = _weights(1)
    scale, tensor_scale = clipped_block_scales(w, fisher)
    amax_scale, amax_tensor_scale = nvfp4_scales(w)
    assert tensor_scale == amax_tensor_scale
    assert np.isin(scale, e4m3_values()).all()
    assert (scale <= amax_scale).all() and (scale >= 0.5 * amax_scale).all()
    assert scale[5, 0] == 0.0  # the all-zero block keeps its zero scale


def test_insensitive_outlier_is_clipped_in_favour_of_sensitive_neighbours():
    block = np.full((1, 16), 0.9, dtype=np.float32)
    block[0, 0] = 6.0  # amax scale 1: 0.9 rounds to 1.0 (error 0.1 on 15 elements)
    fisher = np.ones((1, 16))
    fisher[0, 0] = 0.0  # the outlier does not matter to the loss
    scale, _ = clipped_block_scales(block, fisher)
    amax_scale, _ = nvfp4_scales(block)
    assert scale[0, 0] < amax_scale[0, 0]
    error = weighted_block_error(clipped_nvfp4(block, fisher), block, fisher, 16)
    np.testing.assert_array_less(error, weighted_block_error(fake_quant(block, "nvfp4"), block, fisher, 16))
