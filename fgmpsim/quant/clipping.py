"""Sensitivity-weighted clipping of NVFP4 weight blocks.

The amax rule maps each block's largest magnitude onto E2M1's 6, which wastes resolution on one outlier. For every
block this module instead tries each E4M3-representable block scale from the amax scale down to half of it (the
8 E4M3 steps of one binade, 9 candidates with the amax scale itself) and keeps the one with the least
Fisher-weighted error ``sum_i F_i * (w_i - Q(w_i; s))^2``; elements beyond ``6 * s`` saturate. The amax scale is
candidate 0 and ties go to the lowest candidate, so the chosen scale never does worse than amax scaling.
"""

from __future__ import annotations

import numpy as np

from fgmpsim.formats import e4m3_values, fake_quant, nvfp4_scales
from fgmpsim.quant.scores import BLOCK_SIZE, FP4_FORMAT, weighted_block_error

CANDIDATES = 9
"""Scales tried per block: the amax scale and the 8 E4M3 values below it (down to 0.5x for normal scales)."""
MIN_SCALE_RATIO = 0.5
_CHUNK_ELEMENTS = 1 << 22  # rows per step chosen so that candidates x rows x K stays near 4M elements


def clipped_block_scales(w: np.ndarray, fisher: np.ndarray,
                         block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.float32]:
    """(E4M3 block scales ``[N, K/block]`` minimizing the Fisher-weighted error, the NVFP4 tensor scale of ``w``)."""
    amax_scale, tensor_scale = nvfp4_scales(w, block_size)
    grid = e4m3_values()
    steps = np.arange(CANDIDATES)[:, None, None]
    best = np.empty_like(amax_scale)
    rows = max(1, _CHUNK_ELEMENTS // (CANDIDATES * w.shape[-1]))
    for start in range(0, w.shape[0], rows):
        part = slice(start, start + rows)
        code = np.searchsorted(grid, amax_scale[part])[None] - steps
        scale = grid[np.maximum(code, 0)]
        valid = (code >= 0) & (scale >= MIN_SCALE_RATIO * amax_scale[part][None])
        candidates = fake_quant(np.broadcast_to(w[part], (CANDIDATES, *w[part].shape)), FP4_FORMAT, block_size,
                                block_scale=scale, tensor_scale=tensor_scale)
        error = np.where(valid, weighted_block_error(candidates, w[part], fisher[part], block_size), np.inf)
        best[part] = np.take_along_axis(scale, error.argmin(axis=0)[None], axis=0)[0]
    return best, tensor_scale


def clipped_nvfp4(w: np.ndarray, fisher: np.ndarray, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """NVFP4 fake quantization of ``w[N, K]`` with sensitivity-weighted clipped block scales (float32)."""
    scale, tensor_scale = clipped_block_scales(w, fisher, block_size)
    return fake_quant(w, FP4_FORMAT, block_size, block_scale=scale, tensor_scale=tensor_scale)
