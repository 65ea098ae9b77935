"""Quantization policies: which weight and activation blocks stay in FP8, through one interface.

Every policy names a block *choice* for weights (made offline, globally over all quantized linears) and one for
activations (made online per block by the AQU rule, with a threshold calibrated offline):

``fp8``/``fp4`` (all blocks), ``fisher`` (FGMP score: Fisher-weighted FP4-FP8 difference), ``unweighted`` (the same
without Fisher, i.e. plain squared error), ``random`` (uniformly random blocks, seeded). Mixed choices hit the same
target FP4 fraction, so baselines differ from FGMP only in *which* blocks they pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from fgmpsim.errors import PolicyError
from fgmpsim.formats import fake_quant
from fgmpsim.quant.aqu_policy import ActivationRule
from fgmpsim.quant.calibration import ActivationSamples
from fgmpsim.quant.clipping import clipped_block_scales
from fgmpsim.quant.scores import (BLOCK_SIZE, FP4_FORMAT, FP8_FORMAT, check_fraction, merge_blocks,
                                  random_fp8_blocks, select_fp8_blocks, weighted_block_error)

MIXED_CHOICES = ("fisher", "unweighted", "random")
CHOICES = ("fp8", "fp4", *MIXED_CHOICES)


@dataclass(frozen=True)
class Policy:
    """A named quantization policy.

    ``weights``/``activations`` are block choices from ``CHOICES``; ``clip`` enables sensitivity-weighted clipping of
    NVFP4 weight blocks; ``weight_fp4_format`` is the low-precision weight format.
    """

    name: str
    summary: str
    weights: str
    activations: str
    clip: bool = False
    weight_fp4_format: str = FP4_FORMAT

    @property
    def uses_fraction(self) -> bool:
        """Whether the target FP4 fraction changes this policy (it mixes precisions)."""
        return self.weights in MIXED_CHOICES or self.activations in MIXED_CHOICES


POLICIES: MappingProxyType[str, Policy] = MappingProxyType({p.name: p for p in (
    Policy("fp8", "all weights and activations FP8 E4M3 (per-tensor scale): the baseline", "fp8", "fp8"),
    Policy("nvfp4", "all weights and activations NVFP4 (amax block scales)", "fp4", "fp4"),
    Policy("fgmp", "FGMP: Fisher-weighted block choice + sensitivity-weighted clipping", "fisher", "fisher",
           clip=True),
    Policy("fgmp_no_clip", "FGMP block choice, amax NVFP4 scales (clipping ablation)", "fisher", "fisher"),
    Policy("mse", "unweighted FP4-FP8 error as block score, same fractions", "unweighted", "unweighted"),
    Policy("random", "uniformly random FP8 blocks (seeded), same fractions", "random", "random"),
    Policy("zqfp_w4a8", "ZeroQuant-FP W4A8: FP4 weights with power-of-two block scales, FP8 activations", "fp4",
           "fp8", weight_fp4_format="fp4_pow2"),
)})


def get_policy(name: str) -> Policy:
    """The policy called ``name``; :class:`PolicyError` listing the known ones otherwise."""
    try:
        return POLICIES[name]
    except (KeyError, TypeError):
        raise PolicyError(f"unknown policy {name!r}", "policy", f"use one of {', '.join(POLICIES)}") from None


@dataclass(frozen=True, eq=False)
class WeightPlan:
    """Dequantized weights (float32 ``[N, K]``) and FP8 maps (bool ``[N, K/block]``) of every quantized linear.

    ``threshold`` is the lowest FP8 block score of a score-based choice (nan otherwise).
    """

    weights: dict[str, np.ndarray]
    fp8_maps: dict[str, np.ndarray]
    threshold: float

    @property
    def fp4_fraction(self) -> float:
        """Achieved share of weight blocks in low precision over all quantized linears."""
        fp8 = sum(int(np.count_nonzero(m)) for m in self.fp8_maps.values())
        return 1.0 - fp8 / sum(m.size for m in self.fp8_maps.values())


class WeightQuantizer:
    """Weight candidates of one model: FP8, amax NVFP4, clipped NVFP4 (scales cached) and other FP4 formats."""

    def __init__(self, weights: dict[str, np.ndarray], fisher: dict[str, np.ndarray],
                 block_size: int = BLOCK_SIZE) -> None:
        self.weights = weights
        self.fisher = fisher
        self.block_size = block_size
        self._clipped: dict[str, tuple[np.ndarray, np.float32]] = {}

    def fp8(self, name: str) -> np.ndarray:
        return fake_quant(self.weights[name], FP8_FORMAT)

    def fp4(self, name: str, policy: Policy) -> np.ndarray:
        w = self.weights[name]
        if not policy.clip:
            return fake_quant(w, policy.weight_fp4_format, self.block_size)
        if name not in self._clipped:
            self._clipped[name] = clipped_block_scales(w, self.fisher[name], self.block_size)
        scale, tensor_scale = self._clipped[name]
        return fake_quant(w, FP4_FORMAT, self.block_size, block_scale=scale, tensor_scale=tensor_scale)

    def plan(self, policy: Policy, fp4_fraction: float, seed: int = 0) -> WeightPlan:
        """Weights of every linear under ``policy`` at ``fp4_fraction`` (ignored by uniform policies)."""
        fraction = check_fraction(fp4_fraction)
        shapes = {n: (w.shape[0], w.shape[1] // self.block_size) for n, w in self.weights.items()}
        threshold = float("nan")
        if policy.weights in ("fp8", "fp4"):
            maps = {n: np.full(s, policy.weights == "fp8") for n, s in shapes.items()}
        elif policy.weights == "random":
            maps = random_fp8_blocks(shapes, fraction, np.random.default_rng(seed))
        else:
            scores = {n: weighted_block_error(self.fp4(n, policy), self.fp8(n),
                                              self.fisher[n] if policy.weights == "fisher" else 1.0,
                                              self.block_size) for n in self.weights}
            maps, threshold = select_fp8_blocks(scores, fraction)
        return WeightPlan(weights={n: self._mixed(n, policy, m) for n, m in maps.items()}, fp8_maps=maps,
                          threshold=threshold)

    def _mixed(self, name: str, policy: Policy, fp8_map: np.ndarray) -> np.ndarray:
        if fp8_map.all():
            return self.fp8(name)
        if not fp8_map.any():
            return self.fp4(name, policy)
        return merge_blocks(self.fp4(name, policy), self.fp8(name), fp8_map, self.block_size)


def activation_rules(policy: Policy, fp4_fraction: float, site_fisher: dict[str, np.ndarray],
                     samples: ActivationSamples | None, seed: int = 0,
                     block_size: int = BLOCK_SIZE) -> dict[str, ActivationRule]:
    """The online rule of every activation site under ``policy`` at ``fp4_fraction``.

    Score-based choices share one global threshold from the calibration ``samples`` (required for them).
    """
    fraction = check_fraction(fp4_fraction)
    choice = policy.activations
    if choice in ("fp8", "fp4"):
        return {site: ActivationRule(choice, block_size=block_size) for site in site_fisher}
    if choice == "random":
        return {site: ActivationRule("random", fp4_fraction=fraction, block_size=block_size,
                                     rng=np.random.default_rng([seed, i]))
                for i, site in enumerate(site_fisher)}
    threshold = activation_threshold(policy, fraction, samples)
    return {site: ActivationRule("score", fisher=f if choice == "fisher" else np.ones_like(f), threshold=threshold,
                                 block_size=block_size) for site, f in site_fisher.items()}


def activation_threshold(policy: Policy, fp4_fraction: float, samples: ActivationSamples | None) -> float:
    """The global online threshold of a score-based activation choice (nan for other choices)."""
    if policy.activations not in ("fisher", "unweighted"):
        return float("nan")
    return samples.threshold(policy.activations, check_fraction(fp4_fraction))
