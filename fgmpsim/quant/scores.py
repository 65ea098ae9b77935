"""Block scores and the global choice of which blocks stay in FP8.

FGMP's score of a block is the Fisher-weighted squared difference between its NVFP4 and FP8 versions,
``score[b] = sum_{i in b} F_i * (Q_fp4(x)_i - Q_fp8(x)_i)^2``: a second-order estimate of how much the loss moves if
the block is stored in FP4 rather than FP8. One threshold covers all weight blocks of all quantized linears and one
all activation blocks, so precision flows to where the model is sensitive.
"""

from __future__ import annotations

import numpy as np

from fgmpsim.errors import PolicyError
from fgmpsim.formats import fake_quant

FP4_FORMAT = "nvfp4"
"""Low precision: E2M1 elements, E4M3 scale per 16-block, FP32 tensor scale amax/2688."""
FP8_FORMAT = "fp8_e4m3_tensor"
"""High precision: E4M3 elements with an FP32 tensor scale amax/448 (unscaled E4M3 would flush small weights)."""
BLOCK_SIZE = 16


def blocked(x: np.ndarray, block_size: int) -> np.ndarray:
    """View ``x[..., K]`` as ``[..., K/block, block]`` (blocks along the last axis)."""
    return x.reshape(*x.shape[:-1], x.shape[-1] // block_size, block_size)


def fp4_fp8_candidates(x: np.ndarray, block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(NVFP4, FP8) fake-quantized ``x`` (float32, same shape); tensor scales come from all of ``x``."""
    return fake_quant(x, FP4_FORMAT, block_size), fake_quant(x, FP8_FORMAT)


def merge_blocks(fp4: np.ndarray, fp8: np.ndarray, fp8_map: np.ndarray, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """Blocks of ``fp8`` where ``fp8_map`` (``[..., K/block]``) is True, of ``fp4`` elsewhere; same shape as inputs."""
    mask = np.repeat(fp8_map, block_size, axis=-1)
    return np.where(mask, fp8, fp4)


def weighted_block_error(a: np.ndarray, b: np.ndarray, fisher: np.ndarray, block_size: int) -> np.ndarray:
    """``sum_{i in block} F_i * (a_i - b_i)^2`` per block, float64 ``[..., K/block]``.

    ``fisher`` broadcasts against ``a`` (``[N, K]`` for weights, ``[K]`` for activation channels).
    """
    diff = a.astype(np.float64) - b
    return blocked(np.broadcast_to(fisher, diff.shape) * diff * diff, block_size).sum(axis=-1)


def check_fraction(fp4_fraction: object, field: str = "fp4_fraction") -> float:
    """``fp4_fraction`` (share of blocks in NVFP4) as a float in [0, 1], else :class:`PolicyError` naming
    ``field``; booleans and non-numbers are refused rather than coerced."""
    if (isinstance(fp4_fraction, bool) or not isinstance(fp4_fraction, (int, float, np.integer, np.floating))
            or not 0.0 <= fp4_fraction <= 1.0):
        raise PolicyError(f"FP4 fraction must lie in [0, 1], got {fp4_fraction!r}", field,
                          "pass the share of blocks kept in NVFP4, e.g. 0.7")
    return float(fp4_fraction)


def fp8_block_count(total_blocks: int, fp4_fraction: float) -> int:
    """Blocks that stay in FP8 so that the FP4 share is ``fp4_fraction`` rounded to the nearest whole block."""
    return total_blocks - int(round(check_fraction(fp4_fraction) * total_blocks))


def select_fp8_blocks(scores: dict[str, np.ndarray], fp4_fraction: float) -> tuple[dict[str, np.ndarray], float]:
    """Keep the highest-scoring blocks of all tensors together in FP8; (maps with True = FP8, threshold).

    Exactly ``fp8_block_count`` blocks are chosen: every block scoring above the threshold, then blocks scoring equal
    to it in tensor order (then row-major) until the count is met, so ties (e.g. all-zero blocks) cannot move the
    achieved fraction. The threshold is the lowest FP8 score (``inf`` when no block is FP8).
    """
    names = list(scores)
    flat = np.concatenate([scores[n].ravel() for n in names])
    keep = fp8_block_count(flat.size, fp4_fraction)
    chosen = np.zeros(flat.size, dtype=bool)
    threshold = np.inf
    if keep:
        threshold = float(np.partition(flat, flat.size - keep)[flat.size - keep])
        chosen = flat > threshold
        ties = np.flatnonzero(flat == threshold)
        chosen[ties[: keep - int(chosen.sum())]] = True
    maps, start = {}, 0
    for n in names:
        size = scores[n].size
        maps[n] = chosen[start:start + size].reshape(scores[n].shape)
        start += size
    return maps, threshold


def random_fp8_blocks(shapes: dict[str, tuple[int, ...]], fp4_fraction: float,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Exactly ``fp8_block_count`` FP8 blocks drawn uniformly without replacement over all tensors together."""
    sizes = [int(np.prod(s)) for s in shapes.values()]
    total = sum(sizes)
    chosen = np.zeros(total, dtype=bool)
    chosen[rng.choice(total, size=fp8_block_count(total, fp4_fraction), replace=False)] = True
    return dict(zip(shapes, (part.reshape(s) for part, s in
                             zip(np.split(chosen, np.cumsum(sizes)[:-1]), shapes.values()))))


def quantile_threshold(samples: np.ndarray, fp4_fraction: float) -> float:
    """Online threshold from calibration scores: blocks scoring above it go to FP8.

    The smallest sample value ``v`` with at least ``fp4_fraction`` of the samples ``<= v``; ``-inf`` for a fraction
    of 0 (everything FP8).
    """
    fraction = check_fraction(fp4_fraction)
    if fraction == 0.0:
        return -np.inf
    return float(np.quantile(samples, fraction, method="inverted_cdf"))
