"""Full-size synthetic traces of Llama-style models from their shape and the fitted map model.

The op list and consumer wiring are those of the real export (:mod:`fgmpsim.trace.export`): per decoder layer
``q_proj, k_proj, v_proj, attn_qk, attn_pv, o_proj, gate_proj, up_proj, down_proj`` and finally ``lm_head``.

* **prefill**: linears have ``M = tokens * batch``; attention runs per sequence and head (``repeat = heads *
  batch``) with ``M = tokens`` queries over ``kv_len`` keys (default ``tokens``; more for a chunk appended to a
  cache). Attention is causal (``GemmOp.causal``): query ``i`` attends to the first ``kv_len - tokens + i + 1``
  keys; the simulator skips the masked part (:mod:`fgmpsim.sim.hw.causal`).
* **decode** (one step, one new token per sequence): linears have ``M = batch``; attention ``M = 1`` over
  ``kv_len`` keys (required); the one query sees every key, so nothing is masked (``causal`` is not set).
* ``attn_pv`` reduces over the keys: its ``K`` is ``kv_len``, and when that is not a multiple of the block size its
  last block is partial (zero-padded: the array computes the whole block, ``useful_macs`` counts the real keys);
  ``attn_qk``'s ``N = kv_len`` needs no padding.
* lm_head covers every row the linears do (``tokens * batch`` in prefill), as in a perplexity evaluation.

Maps are lazy :class:`~fgmpsim.trace.synthetic_map.SyntheticMap` objects: building a Llama-2-70B trace costs
milliseconds and each map is generated only when a consumer materializes it. Per-map FP8 counts come from the role
parameters (:mod:`fgmpsim.trace.synth_model`): inside each class (weights, activations) all free maps share one
scale factor chosen so the class's FP8 fraction equals ``1 - fp4_fraction`` (each map then rounds to whole
blocks, so the achieved fraction is the target to within half a block per map).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from fgmpsim.errors import TraceError
from fgmpsim.quant.scores import check_fraction
from fgmpsim.trace.budget import MAX_OP_MAP_BLOCKS, check_op_size
from fgmpsim.trace.checks import positive_int, seed_value
from fgmpsim.trace.formats import OperandFormat, fixed_role_format, row_format
from fgmpsim.trace.models import ModelShape, resolve_model
from fgmpsim.trace.record import GemmOp, Trace
from fgmpsim.trace.synth_model import ROLE_CLASS, SynthParams, load_synth_params
from fgmpsim.trace.synthetic_map import SyntheticMap

PHASES = ("prefill", "decode")
_MAP_KEYS = ("weight_map", "act_map")
DEFAULT_PREFILL_TOKENS = 2048
MASKING = {"prefill": "causal: attn_qk and attn_pv carry causal=true (query i sees the first kv_len - tokens + i + 1 "
                      "keys); the simulator skips the masked part unless told to count it dense",
           "decode": "none: the step's one query attends to every cached key and itself"}


@dataclass(frozen=True)
class _Slot:
    """One distinct map to generate: ``stream`` names it (and seeds it), ``uses`` = ops that read it."""

    stream: str
    role: str
    layer: int
    shape: tuple[int, ...]
    group: int = 1
    uses: int = 1

    @property
    def blocks(self) -> int:
        return math.prod(self.shape)


def synth_trace(model: str | ModelShape, tokens: int | None = None, batch: int = 1, phase: str = "prefill",
                kv_len: int | None = None, fp4_fraction: float = 0.7, seed: int = 0,
                params: SynthParams | None = None, block_size: int = 16,
                act_fp4_fraction: float | None = None, max_op_map_blocks: int = MAX_OP_MAP_BLOCKS,
                formats: tuple[OperandFormat, OperandFormat] | None = None) -> Trace:
    """A synthetic trace of ``model`` (known name, ``config.json`` path or :class:`ModelShape`).

    ``tokens`` (prefill only; default 2048) per sequence, ``batch`` sequences, ``kv_len`` keys per sequence
    (decode: required; prefill: default ``tokens``), ``fp4_fraction`` the target NVFP4 fraction of the weight
    class and, unless ``act_fp4_fraction`` is given, of the activation class; ``params`` the map model (default:
    the shipped fit). An op larger than ``max_op_map_blocks`` (:mod:`fgmpsim.trace.budget`) is refused before any
    map is generated. ``formats`` (weight, activation; e.g. :meth:`fgmpsim.quant.policies.Policy.trace_formats`)
    stores every linear's operands in those uniform formats instead of drawing FP8/NVFP4 maps, and the Q, K and V^T
    attention operands in the activation format with one scale per row, as the real export records a
    ZeroQuant-FP policy (their maps are constant; P and lm_head keep their fixed all-FP8 maps).
    """
    shape = resolve_model(model)
    rows, queries, keys = _check_sizes(shape, tokens, batch, phase, kv_len, block_size)
    targets = {"weight": check_fraction(fp4_fraction),
               "act": check_fraction(fp4_fraction if act_fp4_fraction is None else act_fp4_fraction,
                                         "act_fp4_fraction")}
    seed = seed_value(seed)
    params = params or load_synth_params()
    plans = _plan_ops(shape, rows, queries, keys, batch, block_size, causal=phase == "prefill")
    for plan in plans:
        check_op_size(plan["m"], plan["k"], plan["n"], plan["repeat"], block_size, f"op {plan['name']!r}",
                      max_op_map_blocks, math.prod(plan["weight_map"].shape[:-2]),
                      math.prod(plan["act_map"].shape[:-2]))
    uniform = _apply_formats(plans, formats) if formats is not None else {}
    slots = list({id(plan[key]): plan[key] for plan in plans for key in _MAP_KEYS}.values())
    counts = [(slot.blocks if uniform[id(slot)].spec.wide else 0) if id(slot) in uniform else count
              for slot, count in zip(slots, _fp8_counts(slots, params, targets, shape.layers, seed))]
    maps = {id(slot): SyntheticMap(slot.shape, count, seed, slot.stream, params.role(slot.role).row_sigma,
                                   params.role(slot.role).col_sigma, slot.group)
            for slot, count in zip(slots, counts)}
    ops = tuple(GemmOp(**{**plan, **{key: maps[id(plan[key])] for key in _MAP_KEYS}}) for plan in plans)
    tail = keys % block_size
    meta = {
        "model": shape.as_dict(),
        "provenance": "synthetic (fgmpsim.trace.synth): shapes from the model config, precision maps drawn from "
                      "the statistical map model fitted to a real FGMP export",
        "synth": {"phase": phase, "tokens": queries if phase == "prefill" else None, "batch": batch,
                  "kv_len": keys, "seed": seed, "params_source": params.source},
        "fp4_fraction_target": targets,
        "fp4_fraction_achieved": {cls: _achieved_fp4(slots, counts, params, cls) for cls in targets},
        "fp4_fraction_scope": "blocks of the maps the policy decides (fixed roles excluded), once per op",
        "fixed_roles": {role: p.fixed_fp8_fraction for role, p in params.roles.items()
                        if p.fixed_fp8_fraction is not None},
        "attention": {"masking": MASKING[phase], "kv_len": keys, "attn_pv_k": keys,
                      "padding": "none" if not tail else f"attn_pv's last K block holds {tail} of {block_size} keys "
                                                         "(zero-padded: the array computes the whole block)"},
        "formats": ({"low": "nvfp4", "high": "fp8_e4m3", "block_size": block_size} if formats is None else
                    {"weight": formats[0].label(), "act": formats[1].label(), "block_size": block_size}),
    }
    size = f"b{batch}-kv{keys}" if phase == "decode" else f"t{queries}-b{batch}" + (f"-kv{keys}" * (keys != queries))
    fractions = f"fp4_{targets['weight']:g}" + ("" if act_fp4_fraction is None else f"-act{targets['act']:g}")
    if formats is not None:
        fractions = "-".join(f.label().replace(" +", "-").replace(" ", "-") for f in formats)
    return Trace(name=f"{shape.name}-{phase}-{size}-{fractions}-s{seed}", ops=ops, block_size=block_size,
                 meta=meta)


def _apply_formats(plans: list[dict[str, Any]], formats: tuple[OperandFormat, OperandFormat]) -> dict[int, OperandFormat]:
    """Set the operand formats of every plan (``synth_trace``'s ``formats``); the uniform format of each map slot
    by its id."""
    weight, act = formats
    row, fixed = row_format(act), fixed_role_format(act)
    by_kind = {"linear": (weight, act), "attn_qk": (row, row), "attn_pv": (row, fixed), "lm_head": (fixed, fixed)}
    uniform = {}
    for plan in plans:
        plan["weight_format"], plan["act_format"] = by_kind[plan["kind"]]
        for key, fmt in zip(_MAP_KEYS, by_kind[plan["kind"]]):
            if fmt.uniform:
                uniform[id(plan[key])] = fmt
    return uniform


def _achieved_fp4(slots: list[_Slot], counts: list[int], params: SynthParams, cls: str) -> float | None:
    """FP4 fraction of the class's free maps, each counted once per op that reads it (``None`` if it has none)."""
    free = [(slot, count) for slot, count in zip(slots, counts)
            if ROLE_CLASS[slot.role] == cls and params.role(slot.role).fixed_fp8_fraction is None]
    blocks = sum(slot.blocks * slot.uses for slot, _ in free)
    return 1.0 - sum(count * slot.uses for slot, count in free) / blocks if blocks else None


def _check_sizes(shape: ModelShape, tokens: int | None, batch: int, phase: str, kv_len: int | None,
                 block: int) -> tuple[int, int, int]:
    """(rows of the linears, queries per sequence, keys per sequence) after validation."""
    if phase not in PHASES:
        raise TraceError(f"unknown phase {phase!r}", "phase", f"use one of {', '.join(PHASES)}")
    batch = positive_int(batch, "batch", "give at least one sequence, e.g. --batch 1")
    if phase == "decode":
        if tokens is not None:
            raise TraceError("tokens applies to prefill; a decode step has one new token per sequence", "tokens",
                             "drop --tokens and give the cache length with --kv-len")
        if kv_len is None:
            raise TraceError("decode needs the number of keys per sequence", "kv_len", "give e.g. --kv-len 2048")
        return batch, 1, positive_int(kv_len, "kv_len", "give e.g. --kv-len 2048")
    tokens = positive_int(DEFAULT_PREFILL_TOKENS if tokens is None else tokens, "tokens", "give e.g. --tokens 2048")
    keys = tokens if kv_len is None else positive_int(kv_len, "kv_len", "omit it or give at least --tokens")
    if keys < tokens:
        raise TraceError(f"kv_len={keys} is less than tokens={tokens}: prefill queries also attend to themselves",
                         "kv_len", "omit --kv-len or give at least --tokens")
    return tokens * batch, tokens, keys


def _plan_ops(shape: ModelShape, rows: int, queries: int, keys: int, batch: int, block: int,
              causal: bool) -> list[dict[str, Any]]:
    """Every op of the forward pass, in execution order, as :class:`GemmOp` fields whose maps are still slots;
    ``causal``: the attention ops are causally masked (prefill)."""
    h, hd, kb = shape.hidden, shape.head_dim, lambda k: -(-k // block)  # any K: a zero-padded last block
    q_out, kv_out = shape.heads * hd, shape.kv_heads * hd
    repeat, group = shape.heads * batch, shape.heads // shape.kv_heads
    plans: list[dict[str, Any]] = []
    for i in range(shape.layers):
        at = f"layers.{i}.self_attn"
        mlp = f"layers.{i}.mlp"
        nxt = f"layers.{i + 1}.self_attn.q_proj" if i + 1 < shape.layers else "lm_head"
        attn_in = _Slot(f"{at}.input/act", "attn_in", i, (rows, kb(h)), uses=3)
        mlp_in = _Slot(f"{mlp}.input/act", "mlp_in", i, (rows, kb(h)), uses=2)

        def linear(name: str, k: int, n: int, act: _Slot, consumer: str | None, operand: str = "act") -> dict[str, Any]:
            weight = _Slot(f"{name}/weight", name.rsplit(".", 1)[-1], i, (n, kb(k)))
            return dict(name=name, layer=i, kind="linear", m=rows, k=k, n=n, repeat=1, weight_map=weight,
                        act_map=act, consumer=consumer, consumer_operand=operand)

        def attention(kind: str, k: int, n: int, roles: tuple[str, str], consumer: str) -> dict[str, Any]:
            name = f"{at}.{kind}"
            return dict(name=name, layer=i, kind=kind, m=queries, k=k, n=n, repeat=repeat,
                        weight_map=_Slot(f"{name}/weight", roles[0], i, (repeat, n, kb(k)), group),
                        act_map=_Slot(f"{name}/act", roles[1], i, (repeat, queries, kb(k))), static_weight=False,
                        consumer=consumer, causal=causal)

        plans += [
            linear(f"{at}.q_proj", h, q_out, attn_in, f"{at}.attn_qk"),
            linear(f"{at}.k_proj", h, kv_out, attn_in, f"{at}.attn_qk", "weight"),
            linear(f"{at}.v_proj", h, kv_out, attn_in, f"{at}.attn_pv", "weight"),
            attention("attn_qk", hd, keys, ("qk_k", "qk_q"), f"{at}.attn_pv"),
            attention("attn_pv", keys, hd, ("pv_v", "pv_p"), f"{at}.o_proj"),
            linear(f"{at}.o_proj", q_out, h, _Slot(f"{at}.o_proj/act", "o_in", i, (rows, kb(q_out))),
                   f"{mlp}.gate_proj"),
            linear(f"{mlp}.gate_proj", h, shape.intermediate, mlp_in, None),
            linear(f"{mlp}.up_proj", h, shape.intermediate, mlp_in, f"{mlp}.down_proj"),
            linear(f"{mlp}.down_proj", shape.intermediate, h,
                   _Slot(f"{mlp}.down_proj/act", "down_in", i, (rows, kb(shape.intermediate))), nxt),
        ]
    last = shape.layers
    plans.append(dict(name="lm_head", layer=last, kind="lm_head", m=rows, k=h, n=shape.vocab, repeat=1,
                      weight_map=_Slot("lm_head/weight", "lm_head", last, (shape.vocab, kb(h))),
                      act_map=_Slot("lm_head/act", "lm_head_in", last, (rows, kb(h))), consumer=None))
    return plans


def _fp8_counts(slots: list[_Slot], params: SynthParams, fp4_targets: dict[str, float], layers: int,
                seed: int) -> list[int]:
    """FP8 blocks of every slot: fixed roles at their fraction, free roles scaled per class so the class's FP4
    fraction is ``fp4_targets[class]``."""
    profiles = {role: _layer_weights(params, role, layers, seed) for role in {s.role for s in slots}}
    weights = np.array([params.role(s.role).fp8_scale * (profiles[s.role][s.layer] if s.layer < layers else 1.0)
                        for s in slots])
    fixed = np.array([params.role(s.role).fixed_fp8_fraction for s in slots], dtype=float)  # None -> nan
    sizes = np.array([s.blocks * s.uses for s in slots], dtype=np.float64)
    classes = np.array([ROLE_CLASS[s.role] for s in slots])
    fractions = np.where(np.isnan(fixed), 0.0, fixed)
    for cls, fp4 in fp4_targets.items():
        free = (classes == cls) & np.isnan(fixed)
        fractions[free] = _water_fill(weights[free], sizes[free], 1.0 - fp4)
    # a grouped (GQA) map repeats each KV head's slice for its query heads, so its count is a multiple of group
    return [int(round(f * s.blocks / s.group)) * s.group for f, s in zip(fractions, slots)]


def _water_fill(weights: np.ndarray, sizes: np.ndarray, target: float) -> np.ndarray:
    """Fractions ``min(1, c * weights)`` with ``c`` such that the size-weighted mean fraction is ``target``."""
    if target <= 0.0 or not sizes.size:
        return np.zeros_like(weights)
    if target >= 1.0:
        return np.ones_like(weights)
    full = np.zeros(weights.shape, dtype=bool)
    while True:
        open_ = ~full
        scale = (target * sizes.sum() - sizes[full].sum()) / (sizes[open_] * weights[open_]).sum()
        newly_full = open_ & (scale * weights >= 1.0)
        if not newly_full.any():
            return np.where(full, 1.0, scale * weights)
        full |= newly_full


def _layer_weights(params: SynthParams, role: str, layers: int, seed: int) -> np.ndarray:
    """Relative FP8 fraction of ``role`` per layer: the fitted depth profile times a seeded log-normal scatter of
    the inner layers, normalized to mean 1 over the model's layers."""
    role_params = params.role(role)
    scatter = np.random.default_rng([seed, zlib.crc32(role.encode())]).standard_normal(layers)
    scatter[[0, -1]] = 0.0  # the first and last layer have their own fitted values
    log_weight = role_params.log_layer_profile(layers) + role_params.layer_sigma * scatter
    weight = np.exp(log_weight - log_weight.max())
    return weight / weight.mean()
