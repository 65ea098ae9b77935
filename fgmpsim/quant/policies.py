"""Quantization policies: which weight and activation blocks stay in FP8, through one interface.

Every policy names a block *choice* for weights (made offline, globally over all quantized linears) and one for
activations (made online per block by the AQU rule, with a threshold calibrated offline):

``fp8``/``fp4`` (all blocks), ``fisher`` (FGMP score: Fisher-weighted FP4-FP8 difference), ``unweighted`` (the same
without Fisher, i.e. plain squared error), ``random`` (uniformly random blocks, seeded). Mixed choices hit the same
target FP4 fraction, so baselines differ from FGMP only in *which* blocks they pick.

The ZeroQuant-FP family (``zqfp_w4a8``, ``int_w4a8``, ``w8a8_fp8``, ``w8a8_int8``) is uniform (every weight block in
its 4- or 8-bit format, every activation 8-bit) and carries a :class:`WeightRecipe` (group-wise scales, scale
constraint, RTN or GPTQ, LoRC rank) and a per-token activation format. Its options follow the name after a colon,
joined by ``+`` in any order: ``zqfp_w4a8:m2+gptq+lorc8+g64`` (constraint ``none``/``m1``/``m2``, solver
``rtn``/``gptq``, ``lorc<rank>``, ``g<group size>``); a policy's ``name`` spells all of them out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from fgmpsim.errors import PolicyError
from fgmpsim.formats import fake_quant
from fgmpsim.quant.aqu_policy import ActivationRule
from fgmpsim.quant.calibration import ActivationSamples
from fgmpsim.quant.clipping import clipped_block_scales
from fgmpsim.quant.gptq import gptq
from fgmpsim.quant.groupwise import CONSTRAINTS, GroupQuantizer
from fgmpsim.quant.lorc import lorc_factors, lorc_storage_bits
from fgmpsim.trace.formats import MIXED, OperandFormat
from fgmpsim.quant.scores import (BLOCK_SIZE, FP4_FORMAT, FP8_FORMAT, check_fraction, merge_blocks,
                                  random_fp8_blocks, select_fp8_blocks, weighted_block_error)

MIXED_CHOICES = ("fisher", "unweighted", "random")
CHOICES = ("fp8", "fp4", *MIXED_CHOICES)
SOLVERS = ("rtn", "gptq")
DEFAULT_GROUP_SIZE = 256
"""ZeroQuant-FP's weight group size: fine-grained (group-wise) weight quantization with 256 input channels per scale
(Wu, Yao, He 2023, experimental setup, following ZeroQuant-V2's fine-grained quantization). SmolLM2-135M's 576
input channels are not a multiple of it: use e.g. ``g64`` there."""
DEFAULT_LORC_RANK = 8
"""The LoRC rank of ZeroQuant-FP's tables (and the rank ``lorc`` without a number means)."""


@dataclass(frozen=True)
class WeightRecipe:
    """How a uniform policy quantizes every weight: ``quantizer`` (elements, group size, scale constraint),
    ``solver`` (``rtn`` or ``gptq``), ``lorc_rank`` (0: no LoRC) with factors stored in ``lorc_format``."""

    quantizer: GroupQuantizer
    solver: str = "rtn"
    lorc_rank: int = 0
    lorc_format: str | None = None

    def check(self, shapes: dict[str, tuple[int, int]], policy: str) -> None:
        """:class:`PolicyError` when the group size does not divide a linear's input channels or the LoRC rank
        exceeds a weight's smaller side (``shapes`` are ``[N, K]`` by linear name)."""
        g = self.quantizer.group_size
        for name, (n, k) in shapes.items():
            if g is not None and k % g:
                common = math.gcd(*(kk for _, kk in shapes.values()))
                raise PolicyError(f"group size {g} of {policy} does not divide the {k} input channels of {name}",
                                  "group_size", f"use a group size that divides {common}, e.g. "
                                  f"g{common & -common} (largest power of two)")
            if self.lorc_rank > min(n, k):
                raise PolicyError(f"LoRC rank {self.lorc_rank} of {policy} exceeds the {n}x{k} weight {name}",
                                  "lorc_rank", f"use a rank of at most {min(min(s) for s in shapes.values())}")


@dataclass(frozen=True)
class Policy:
    """A named quantization policy.

    ``weights``/``activations`` are block choices from ``CHOICES``; ``clip`` enables sensitivity-weighted clipping of
    NVFP4 weight blocks. Uniform policies of the ZeroQuant-FP family set ``recipe`` (how every weight is quantized;
    its blocks are "fp4" when 4-bit, "fp8" when 8-bit) and ``act_format`` (a per-row scaled 8-bit format, applied
    per token: ``fp8_e4m3_block`` or ``int8``).
    """

    name: str
    summary: str
    weights: str
    activations: str
    clip: bool = False
    recipe: WeightRecipe | None = None
    act_format: str | None = None

    @property
    def uses_fraction(self) -> bool:
        """Whether the target FP4 fraction changes this policy (it mixes precisions)."""
        return self.weights in MIXED_CHOICES or self.activations in MIXED_CHOICES

    def trace_formats(self) -> tuple[OperandFormat, OperandFormat]:
        """(weight, activation) trace formats (:mod:`fgmpsim.trace.formats`) of this policy's linears: ``mixed``
        FP8/NVFP4 maps for the block-choice policies; for the ZeroQuant-FP family the format its recipe stores
        (M1 ``fp4_pow2``, M2 ``fp4_pow2`` with the channel scale, no constraint ``fp4_fp32``, ``int4``, per-channel
        ``fp8``/``int8``; its group size and LoRC rank) and its per-token activation format."""
        recipe = self.recipe
        if recipe is None:
            return MIXED, MIXED
        q = recipe.quantizer
        weight = OperandFormat(_TRACE_WEIGHT_FORMATS[(q.element, q.constraint)], q.group_size, q.constraint == "m2",
                               recipe.lorc_rank)
        return weight, OperandFormat(_TRACE_ACT_FORMATS[self.act_format])


_TRACE_WEIGHT_FORMATS = {("fp4", "m1"): "fp4_pow2", ("fp4", "m2"): "fp4_pow2", ("fp4", "none"): "fp4_fp32",
                         ("int4", "none"): "int4", ("fp8", "none"): "fp8", ("int8", "none"): "int8"}
"""The trace format of each (recipe element, scale constraint) of :mod:`fgmpsim.quant.groupwise`."""
_TRACE_ACT_FORMATS = {"fp8_e4m3_block": "fp8", "int8": "int8"}
"""The trace format of each per-token activation format of the ZeroQuant-FP family."""


@dataclass(frozen=True)
class _Family:
    """A uniform policy with options: weight elements, their default group size, activation and LoRC formats."""

    name: str
    summary: str
    element: str
    group_size: int | None
    act_format: str
    lorc_format: str
    constraint: str | None = None

    def policy(self, constraint: str | None, solver: str, group_size: int | None, lorc_rank: int) -> Policy:
        parts = ([constraint] if constraint else []) + [solver] + ([f"g{group_size}"] if group_size else [])
        parts += [f"lorc{lorc_rank}"] if lorc_rank else []
        recipe = WeightRecipe(GroupQuantizer(self.element, group_size, constraint or "none"), solver, lorc_rank,
                              self.lorc_format)
        bits = "fp4" if recipe.quantizer.bits == 4 else "fp8"
        return Policy(f"{self.name}:{'+'.join(parts)}", self.summary, bits, "fp8", recipe=recipe,
                      act_format=self.act_format)


_FAMILIES = {f.name: f for f in (
    _Family("zqfp_w4a8", "ZeroQuant-FP W4A8: FP4 (E2M1) weights with group scales, FP8 E4M3 per-token activations",
            "fp4", DEFAULT_GROUP_SIZE, "fp8_e4m3_block", "fp8_e4m3_block", constraint="m1"),
    _Family("int_w4a8", "INT4 weights with FP32 group scales, INT8 per-token activations", "int4",
            DEFAULT_GROUP_SIZE, "int8", "int8"),
    _Family("w8a8_fp8", "FP8 E4M3 weights (per output channel), FP8 E4M3 per-token activations", "fp8", None,
            "fp8_e4m3_block", "fp8_e4m3_block"),
    _Family("w8a8_int8", "INT8 weights (per output channel), INT8 per-token activations", "int8", None, "int8",
            "int8"),
)}
_OPTIONS_FIX = "options are none/m1/m2 (scale constraint, zqfp_w4a8 only), rtn/gptq, lorc<rank>, g<group size>"


def _family_policy(spec: str, family: _Family, options: str) -> Policy:
    """``family`` with ``options`` (``+``-joined, any order) parsed; :class:`PolicyError` on a bad option."""
    constraint, solver, group, rank = family.constraint, "rtn", family.group_size, 0
    seen: set[str] = set()
    for option in options.split("+") if options else []:
        if option in CONSTRAINTS or re.fullmatch(r"m\d+", option):
            kind = "constraint"
            if family.constraint is None or option not in CONSTRAINTS:
                raise PolicyError(f"unknown scale constraint {option!r} in policy {spec!r}", "policy",
                                  "zqfp_w4a8 takes none, m1 or m2; the other policies have no scale constraint")
            constraint = option
        elif option in SOLVERS:
            kind, solver = "solver", option
        elif match := re.fullmatch(r"lorc(\d*)", option):
            kind, rank = "lorc", int(match[1]) if match[1] else DEFAULT_LORC_RANK
        elif (match := re.fullmatch(r"g(\d+)", option)) and int(match[1]) > 0:
            kind, group = "group", int(match[1])
        else:
            raise PolicyError(f"unknown option {option!r} in policy {spec!r}", "policy", _OPTIONS_FIX)
        if kind in seen:
            raise PolicyError(f"policy {spec!r} sets its {kind} twice", "policy", "give each option once")
        seen.add(kind)
    return family.policy(constraint, solver, group, rank)


POLICIES: MappingProxyType[str, Policy] = MappingProxyType({p.name: p for p in (
    Policy("fp8", "all weights and activations FP8 E4M3 (per-tensor scale): the baseline", "fp8", "fp8"),
    Policy("nvfp4", "all weights and activations NVFP4 (amax block scales)", "fp4", "fp4"),
    Policy("fgmp", "FGMP: Fisher-weighted block choice + sensitivity-weighted clipping", "fisher", "fisher",
           clip=True),
    Policy("fgmp_no_clip", "FGMP block choice, amax NVFP4 scales (clipping ablation)", "fisher", "fisher"),
    Policy("mse", "unweighted FP4-FP8 error as block score, same fractions", "unweighted", "unweighted"),
    Policy("random", "uniformly random FP8 blocks (seeded), same fractions", "random", "random"),
)} | {f.name: f.policy(f.constraint, "rtn", f.group_size, 0) for f in _FAMILIES.values()})
"""Every policy by its base name (the ZeroQuant-FP family with its default options, named in full)."""


def get_policy(name: str) -> Policy:
    """The policy called ``name`` (a base name, or a family name with options such as ``zqfp_w4a8:m2+gptq+g64``);
    :class:`PolicyError` naming the known ones or the bad option otherwise."""
    if not isinstance(name, str):
        raise PolicyError(f"unknown policy {name!r}", "policy", f"use one of {', '.join(POLICIES)}")
    base, colon, options = name.partition(":")
    if base in _FAMILIES:
        return _family_policy(name, _FAMILIES[base], options)
    if base in POLICIES and colon:
        raise PolicyError(f"policy {base!r} takes no options, got {name!r}", "policy",
                          f"options apply to {', '.join(_FAMILIES)}")
    try:
        return POLICIES[name]
    except KeyError:
        raise PolicyError(f"unknown policy {name!r}", "policy", f"use one of {', '.join(POLICIES)}") from None


@dataclass(frozen=True, eq=False)
class WeightPlan:
    """Dequantized weights (float32 ``[N, K]``) and FP8 maps (bool ``[N, K/block]``) of every quantized linear.

    ``threshold`` is the lowest FP8 block score of a score-based choice (nan otherwise).
    """

    weights: dict[str, np.ndarray]
    fp8_maps: dict[str, np.ndarray]
    threshold: float
    lorc: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """LoRC factors ``(A [N, r], B [r, K])`` by linear, added in the forward pass (uniform recipes only)."""
    storage: dict[str, int] = field(default_factory=dict)
    """Recipe policies: ``weights``, ``element_bits``, ``scale_bits``, ``lorc_bits``, ``lorc_parameters``,
    ``groups`` and ``clamped_groups`` summed over the quantized linears."""

    @property
    def fp4_fraction(self) -> float:
        """Achieved share of weight blocks in low precision over all quantized linears."""
        fp8 = sum(int(np.count_nonzero(m)) for m in self.fp8_maps.values())
        return 1.0 - fp8 / sum(m.size for m in self.fp8_maps.values())


class WeightQuantizer:
    """Weight candidates of one model: FP8, amax NVFP4, clipped NVFP4 (scales cached) and the uniform recipes of the
    ZeroQuant-FP family (cached per quantizer and solver).

    ``site_of`` names the activation site of each linear and ``hessians`` computes the calibration Hessians of the
    sites (called once, on the first GPTQ recipe).
    """

    def __init__(self, weights: dict[str, np.ndarray], fisher: dict[str, np.ndarray],
                 block_size: int = BLOCK_SIZE, *, site_of: dict[str, str] | None = None,
                 hessians: Callable[[], dict[str, np.ndarray]] | None = None) -> None:
        self.weights = weights
        self.fisher = fisher
        self.block_size = block_size
        self.site_of = site_of or {}
        self._hessian_source = hessians
        self._hessians: dict[str, np.ndarray] | None = None
        self._clipped: dict[str, tuple[np.ndarray, np.float32]] = {}
        self._recipes: dict[tuple[GroupQuantizer, str], dict[str, np.ndarray]] = {}

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """``[N, K]`` of every quantized weight."""
        return {n: tuple(w.shape) for n, w in self.weights.items()}

    def hessian(self, name: str) -> np.ndarray:
        """The calibration Hessian ``X^T X`` of linear ``name``'s input (its site's)."""
        if self._hessians is None:
            if self._hessian_source is None:
                raise PolicyError("GPTQ needs calibration Hessians, and this quantizer has none", "solver",
                                  "build it through calibrate_model, or use rtn")
            self._hessians = self._hessian_source()
        return self._hessians[self.site_of.get(name, name)]

    def recipe_weight(self, name: str, recipe: WeightRecipe) -> np.ndarray:
        """``name``'s weight quantized by ``recipe``'s quantizer and solver (without LoRC), cached.

        GPTQ runs once per site on the readers' weights stacked along N (q/k/v, gate/up share one input Hessian and
        GPTQ treats output rows independently), which saves the per-column work of the separate runs.
        """
        cache = self._recipes.setdefault((recipe.quantizer, recipe.solver), {})
        if name in cache:
            return cache[name]
        if recipe.solver == "rtn":
            cache[name] = recipe.quantizer.rtn(self.weights[name])
            return cache[name]
        site = self.site_of.get(name, name)
        readers = [n for n in self.weights if self.site_of.get(n, n) == site]
        stacked = gptq(np.concatenate([self.weights[n] for n in readers]), self.hessian(name), recipe.quantizer)
        cuts = np.cumsum([self.weights[n].shape[0] for n in readers])[:-1]
        cache.update(zip(readers, np.split(stacked, cuts)))
        return cache[name]

    def _recipe_plan(self, policy: Policy) -> WeightPlan:
        recipe = policy.recipe
        recipe.check(self.shapes, policy.name)
        quantizer = recipe.quantizer
        weights, lorc = {}, {}
        storage = dict.fromkeys(("weights", "element_bits", "scale_bits", "lorc_bits", "lorc_parameters", "groups",
                                 "clamped_groups"), 0)
        for name, w in self.weights.items():
            n, k = w.shape
            weights[name] = self.recipe_weight(name, recipe)
            if recipe.lorc_rank:
                lorc[name] = lorc_factors(w - weights[name], recipe.lorc_rank, recipe.lorc_format)
                storage["lorc_bits"] += lorc_storage_bits(n, k, recipe.lorc_rank)
                storage["lorc_parameters"] += recipe.lorc_rank * (n + k)
            storage["weights"] += n * k
            storage["element_bits"] += n * k * quantizer.bits
            storage["scale_bits"] += quantizer.scale_bits(n, k)
            storage["groups"] += n * (k // quantizer.group(k))
            storage["clamped_groups"] += quantizer.clamped_groups(w)
        maps = {n: np.full((w.shape[0], w.shape[1] // self.block_size), quantizer.bits == 8)
                for n, w in self.weights.items()}
        return WeightPlan(weights=weights, fp8_maps=maps, threshold=float("nan"), lorc=lorc, storage=storage)

    def fp8(self, name: str) -> np.ndarray:
        return fake_quant(self.weights[name], FP8_FORMAT)

    def fp4(self, name: str, policy: Policy) -> np.ndarray:
        w = self.weights[name]
        if not policy.clip:
            return fake_quant(w, FP4_FORMAT, self.block_size)
        if name not in self._clipped:
            self._clipped[name] = clipped_block_scales(w, self.fisher[name], self.block_size)
        scale, tensor_scale = self._clipped[name]
        return fake_quant(w, FP4_FORMAT, self.block_size, block_scale=scale, tensor_scale=tensor_scale)

    def plan(self, policy: Policy, fp4_fraction: float, seed: int = 0) -> WeightPlan:
        """Weights of every linear under ``policy`` at ``fp4_fraction`` (ignored by uniform policies)."""
        fraction = check_fraction(fp4_fraction)
        if policy.recipe is not None:
            return self._recipe_plan(policy)
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
    if policy.act_format is not None:
        return {site: ActivationRule("token", token_format=policy.act_format, block_size=block_size)
                for site in site_fisher}
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
