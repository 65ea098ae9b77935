"""The activation precision decision the hardware AQU makes online (pure numpy, no torch).

For each 16-element block of an activation row the AQU computes both candidate quantizations and the block score
``sum_i F_i * (Q_fp4(x)_i - Q_fp8(x)_i)^2`` with the per-channel Fisher ``F`` of that activation tensor (stored on
chip), then keeps the block in FP8 when the score exceeds a threshold calibrated offline. Passing ``fisher`` of ones
gives the unweighted (MSE) variant. Tensor scales are those of the array passed in (one sequence's activations in
fgmpsim's evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fgmpsim.formats import fake_quant
from fgmpsim.quant.scores import (BLOCK_SIZE, FP4_FORMAT, FP8_FORMAT, fp4_fp8_candidates, merge_blocks,
                                  weighted_block_error)


def activation_block_scores(x: np.ndarray, fisher: np.ndarray, block_size: int = BLOCK_SIZE,
                            candidates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Block scores (float64 ``[..., K/block]``) of activations ``x[..., K]`` with channel Fisher ``fisher[K]``.

    ``candidates`` are ``fp4_fp8_candidates(x)`` when the caller already has them.
    """
    fp4, fp8 = candidates if candidates is not None else fp4_fp8_candidates(x, block_size)
    return weighted_block_error(fp4, fp8, fisher, block_size)


def aqu_decide(x: np.ndarray, fisher: np.ndarray, threshold: float, block_size: int = BLOCK_SIZE,
               candidates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Precision map of ``x[..., K]``: bool ``[..., K/block]``, True (FP8) where the block score exceeds
    ``threshold``."""
    return activation_block_scores(x, fisher, block_size, candidates) > threshold


def aqu_quantize(x: np.ndarray, fisher: np.ndarray, threshold: float,
                 block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(fake-quantized ``x`` with each block in its chosen precision, precision map) as the AQU emits them."""
    candidates = fp4_fp8_candidates(x, block_size)
    fp8_map = aqu_decide(x, fisher, threshold, block_size, candidates)
    return merge_blocks(*candidates, fp8_map, block_size), fp8_map


@dataclass(frozen=True, eq=False)
class ActivationRule:
    """How one activation tensor's blocks get their precision online.

    ``kind``: ``"fp8"`` (all FP8), ``"fp4"`` (all NVFP4), ``"score"`` (AQU: score with ``fisher`` against
    ``threshold``), ``"random"`` (each block FP8 with probability ``1 - fp4_fraction``, drawn from ``rng``) or
    ``"token"`` (every row in the 8-bit ``token_format`` with its own dynamic FP32 scale: per-token quantization; the
    map marks every block high precision).
    """

    kind: str
    fisher: np.ndarray | None = None
    threshold: float = float("nan")
    fp4_fraction: float = float("nan")
    rng: np.random.Generator | None = None
    block_size: int = BLOCK_SIZE
    token_format: str | None = None

    def quantize(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fake-quantized ``x[..., K]``, FP8 map ``[..., K/block]``) for one tensor (its tensor scales)."""
        map_shape = (*x.shape[:-1], x.shape[-1] // self.block_size)
        if self.kind == "fp8":
            return fake_quant(x, FP8_FORMAT), np.ones(map_shape, dtype=bool)
        if self.kind == "token":
            return fake_quant(x, self.token_format, x.shape[-1]), np.ones(map_shape, dtype=bool)
        if self.kind == "fp4":
            return fake_quant(x, FP4_FORMAT, self.block_size), np.zeros(map_shape, dtype=bool)
        if self.kind == "score":
            return aqu_quantize(x, self.fisher, self.threshold, self.block_size)
        fp8_map = self.rng.random(map_shape) >= self.fp4_fraction
        return merge_blocks(*fp4_fp8_candidates(x, self.block_size), fp8_map, self.block_size), fp8_map
