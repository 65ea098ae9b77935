"""Export: a quantized real model's forward pass (batch 1, ``tokens`` evaluation tokens) as a :class:`Trace`.

Per decoder layer, in execution order: ``q_proj, k_proj, v_proj`` (linear), ``attn_qk`` (per query head: Q times
K^T), ``attn_pv`` (per head: P times V), ``o_proj, gate_proj, up_proj, down_proj``; then ``lm_head``. Names are the
Hugging Face module names without the leading ``model.`` (``layers.3.self_attn.q_proj``), as in synthetic traces.

* Linears: ``M = tokens``, ``K = in`` (the module's input features: with ``K % 16 != 0`` the maps' last block is
  the zero-padded partial one), ``N = out``; weight map from the policy, activation map = the AQU decision on
  that pass's real input (q/k/v share one map object, gate/up another).
* ``attn_qk``: ``M = N = tokens``, ``K = head_dim``, ``repeat = heads``; act = Q's map, weight side = K's map
  ``[heads, tokens, head_dim/16]`` (KV heads repeated for grouped-query attention).
* ``attn_pv``: ``M = K = tokens``, ``N = head_dim``, ``repeat = heads``; act = softmax output P, all FP8 (the softmax
  unit writes it; it has no per-channel sensitivity); weight side = V^T ``[heads, head_dim, tokens/16]``.
* Attention is causal (``causal=True`` on ``attn_qk`` and ``attn_pv``, ``meta.attention.masking``): query ``i`` sees
  keys ``0..i``; the simulator skips the masked part (:mod:`fgmpsim.sim.hw.causal`).
* ``lm_head``: quantized by the policy with ``include_lm_head``; otherwise it runs unquantized in the perplexity
  evaluation and is recorded with all-FP8 maps (the highest precision of the FGMP datapath), a fixed role.
* Operand formats (:mod:`fgmpsim.trace.formats`, trace format version 4 when any is uniform): the block-choice
  policies (``fgmp``, ``fp8``, ``nvfp4``, ...) record ``mixed`` FP8/NVFP4 maps. The ZeroQuant-FP family records the
  format its recipe stores (:meth:`~fgmpsim.quant.policies.Policy.trace_formats`): weights ``fp4_pow2`` (M1; M2 adds the channel scale),
  ``fp4_fp32`` (no constraint), ``int4`` (group size as the policy's), ``fp8``/``int8`` (per output channel), with
  the LoRC rank; linear inputs and the Q, K, V^T attention operands in the 8-bit per-token activation format
  (``fp8`` or ``int8``, one scale per row of the operand as the matmul reads it). The softmax output P and an
  unquantized ``lm_head`` are in the datapath's highest precision (:func:`~fgmpsim.trace.formats.fixed_role_format`):
  ``mixed`` all FP8, or INT8 per row under an INT policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fgmpsim.errors import ModelError, PolicyError
from fgmpsim.quant.attention import OPERANDS, attention_projections, captured_attention, operand_fisher, operand_maps
from fgmpsim.quant.attention import sample_attention_scores
from fgmpsim.quant.model import KNOWN_MODELS
from fgmpsim.quant.defaults import DEFAULT_EVAL_TOKENS
from fgmpsim.quant.pipeline import ACT_CALIB_SEQUENCES, Calibrated, calibrate, evaluate_policy
from fgmpsim.quant.policies import Policy, activation_rules, activation_threshold, get_policy
from fgmpsim.quant.scores import BLOCK_SIZE, FP4_FORMAT, FP8_FORMAT, check_fraction
from fgmpsim.trace.formats import MIXED, OperandFormat, fixed_role_format, row_format
from fgmpsim.trace.models import ModelShape, from_config
from fgmpsim.trace.record import GemmOp, Trace

MASKING = ("causal: attn_qk and attn_pv carry causal=true (query i sees keys 0..i); the simulator skips the masked "
           "part unless told to count it dense")
LINEARS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
"""The Llama decoder linears and the submodule that holds each."""


def _check_tokens(tokens: Any) -> int:
    if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or tokens < BLOCK_SIZE \
            or tokens % BLOCK_SIZE:
        raise PolicyError(f"tokens must be a positive multiple of the block size {BLOCK_SIZE}, got {tokens!r}",
                          "tokens", "use e.g. --tokens 256 (attn_pv reduces over the tokens in 16-key blocks)")
    return int(tokens)


def _linear_names(cal: Calibrated, layers: int) -> list[dict[str, str]]:
    names = [{proj: f"model.layers.{i}.{block}.{proj}" for proj, block in LINEARS.items()} for i in range(layers)]
    missing = [n for layer in names for n in layer.values() if n not in cal.linears]
    if missing:
        raise ModelError(f"the model is not Llama-style: no quantized linear {missing[0]!r}", "model",
                         "export supports Llama-style decoders (q/k/v/o_proj, gate/up/down_proj)")
    return names


def _attention_maps(cal: Calibrated, policy: Policy, fraction: float, operands: dict[int, dict[str, np.ndarray]],
                    shape: ModelShape, seed: int, progress: bool) -> tuple[dict[int, dict[str, np.ndarray]], float]:
    """Per layer the FP8 maps of Q, K and V^T, and the operands' global threshold (nan without one)."""
    projections = attention_projections(cal.model)
    site_fisher = {f"{layer}.{op}": f for layer in sorted(operands)
                   for op, f in operand_fisher(cal.fisher, projections[layer]).items()}
    samples = None
    if policy.activations in ("fisher", "unweighted"):
        samples = sample_attention_scores(cal.model, cal.calib_windows[:ACT_CALIB_SEQUENCES], cal.fisher,
                                          progress=progress)
    rules = activation_rules(policy, fraction, site_fisher, samples, seed + 1)
    maps = {layer: operand_maps(rows, {op: rules[f"{layer}.{op}"] for op in OPERANDS}, shape.heads, shape.head_dim)
            for layer, rows in operands.items()}
    return maps, activation_threshold(policy, fraction, samples)


def _linear_k(name: str, weight_map: np.ndarray, linears: dict[str, object]) -> int:
    """K of a real linear: its input features (any integer; its last block zero-padded in the maps, whose
    ``ceil(K / 16)`` blocks are checked)."""
    module = linears.get(name)
    k = int(module.weight.shape[1]) if module is not None else weight_map.shape[1] * BLOCK_SIZE
    if -(-k // BLOCK_SIZE) != weight_map.shape[1]:
        raise ModelError(f"linear {name!r} has K={k} input features but its weight map has {weight_map.shape[1]} "
                         f"blocks, not ceil(K / {BLOCK_SIZE})", "model", "re-run the policy on this model")
    return k


def _ops(shape: ModelShape, t: int, names: list[dict[str, str]], weight_maps: dict[str, np.ndarray],
         act_maps: dict[str, np.ndarray], attn: dict[int, dict[str, np.ndarray]],
         head_maps: tuple[np.ndarray, np.ndarray], linears: dict[str, object] | None = None,
         formats: tuple[OperandFormat, OperandFormat] = (MIXED, MIXED), head_quantized: bool = False) -> list[GemmOp]:
    ops, linears = [], linears or {}
    wf, af = formats
    operand, fixed = row_format(af), fixed_role_format(af)
    for i, layer in enumerate(names):
        at, mlp = f"layers.{i}.self_attn", f"layers.{i}.mlp"
        nxt = f"layers.{i + 1}.self_attn.q_proj" if i + 1 < shape.layers else "lm_head"

        def linear(proj: str, consumer: str | None, operand_of: str = "act") -> GemmOp:
            w = weight_maps[layer[proj]]
            return GemmOp(name=layer[proj].removeprefix("model."), layer=i, kind="linear", m=t,
                          k=_linear_k(layer[proj], w, linears), n=w.shape[0], repeat=1, weight_map=w,
                          act_map=act_maps[layer[proj]], consumer=consumer, consumer_operand=operand_of,
                          weight_format=wf, act_format=af)

        ops += [
            linear("q_proj", f"{at}.attn_qk"),
            linear("k_proj", f"{at}.attn_qk", "weight"),
            linear("v_proj", f"{at}.attn_pv", "weight"),
            GemmOp(name=f"{at}.attn_qk", layer=i, kind="attn_qk", m=t, k=shape.head_dim, n=t, repeat=shape.heads,
                   weight_map=attn[i]["k"], act_map=attn[i]["q"], static_weight=False, consumer=f"{at}.attn_pv",
                   causal=True, weight_format=operand, act_format=operand),
            GemmOp(name=f"{at}.attn_pv", layer=i, kind="attn_pv", m=t, k=t, n=shape.head_dim, repeat=shape.heads,
                   weight_map=attn[i]["v"], act_map=np.ones((shape.heads, t, t // BLOCK_SIZE), dtype=bool),
                   static_weight=False, consumer=f"{at}.o_proj", causal=True, weight_format=operand,
                   act_format=fixed),
            linear("o_proj", f"{mlp}.gate_proj"),
            linear("gate_proj", None),
            linear("up_proj", f"{mlp}.down_proj"),
            linear("down_proj", nxt),
        ]
    head = formats if head_quantized else (fixed, fixed)
    ops.append(GemmOp(name="lm_head", layer=shape.layers, kind="lm_head", m=t, k=shape.hidden, n=shape.vocab,
                      repeat=1, weight_map=head_maps[0], act_map=head_maps[1], weight_format=head[0],
                      act_format=head[1]))
    return ops


def _fp4_share(maps: list[np.ndarray]) -> float:
    return 1.0 - sum(int(np.count_nonzero(m)) for m in maps) / sum(m.size for m in maps)


def export_trace(cal: Calibrated, policy: str | Policy, fp4_fraction: float, tokens: np.ndarray, *, seed: int = 0,
                 model_name: str = "model", name: str | None = None, progress: bool = True) -> Trace:
    """Trace of ``cal.model`` under ``policy`` at ``fp4_fraction`` running on the token ids ``tokens`` (1-D).

    ``meta.perplexity`` is the same configuration's perplexity on ``cal.eval_windows``.
    """
    policy = get_policy(policy) if isinstance(policy, str) else policy
    fraction = check_fraction(fp4_fraction)
    t = _check_tokens(len(tokens))
    shape = from_config(cal.model.config.to_dict(), f"{model_name} config", model_name)
    names = _linear_names(cal, shape.layers)
    operands: dict[int, dict[str, np.ndarray]] = {}
    with captured_attention(cal.model, lambda layer, rows: operands.setdefault(layer, rows)):
        traced = evaluate_policy(cal, policy, fraction, seed=seed, progress=False, record_maps=True,
                                 windows=np.asarray(tokens, dtype=np.int64)[None])
    attn, attn_threshold = _attention_maps(cal, policy, fraction, operands, shape, seed, progress)
    act_maps = {linear: traced.sites[site].maps[0] for linear, site in cal.fisher.site.items()}
    head = next(n for n, m in cal.model.named_modules() if m is cal.model.get_output_embeddings())
    head_quantized = head in cal.linears
    head_maps = ((traced.weight_plan.fp8_maps[head], act_maps[head]) if head_quantized else
                 (np.ones((shape.vocab, -(-shape.hidden // BLOCK_SIZE)), bool),
                  np.ones((t, -(-shape.hidden // BLOCK_SIZE)), bool)))   # any hidden size: last block padded
    formats = policy.trace_formats()
    ops = _ops(shape, t, names, traced.weight_plan.fp8_maps, act_maps, attn, head_maps, cal.linears, formats,
               head_quantized)
    linear_inputs = [op.act_map for op in ops if op.kind == "linear"] + ([head_maps[1]] if head_quantized else [])
    operands = [op.act_map for op in ops if op.kind == "attn_qk"]
    operands += [op.weight_map for op in ops if op.kind in ("attn_qk", "attn_pv")]
    evaluated = evaluate_policy(cal, policy, fraction, seed=seed, progress=progress)
    meta = {
        "model": shape.as_dict(),
        "provenance": cal.settings.get("provenance", "a torch model passed to export_trace"),
        "policy": {"name": policy.name, "summary": policy.summary, "seed": seed},
        "settings": {**{k: v for k, v in cal.settings.items() if k != "provenance"}, "tokens": t},
        "formats": ({"low": FP4_FORMAT, "high": FP8_FORMAT, "block_size": BLOCK_SIZE} if policy.recipe is None else
                    {"weight": formats[0].label(), "act": formats[1].label(), "block_size": BLOCK_SIZE,
                     "weight_storage": dict(traced.weight_plan.storage)}),
        "fp4_fraction_target": _targets(policy, fraction),
        "fp4_fraction_achieved": {"weight": traced.weight_plan.fp4_fraction,
                                  "act": _fp4_share(linear_inputs + operands)},
        "fp4_fraction_scope": "weight: quantized linears; act: linear inputs (once per op: the q/k/v input counts "
                              "three times) and the Q, K, V^T attention operands; fixed roles excluded",
        "fp4_fraction_detail": {"act_linear_input_tensors": traced.act_fp4_fraction,
                                "act_linear_inputs_per_op": _fp4_share(linear_inputs),
                                "act_attention_operands": _fp4_share(operands),
                                "note": "the policy's activation target applies per tensor (each linear input "
                                        "once) on calibration data; attention operands have their own threshold"},
        "fixed_roles": {"pv_p": 1.0, **({} if head_quantized else {"lm_head": 1.0, "lm_head_in": 1.0})},
        "thresholds": {key: None if np.isnan(value) else value for key, value in (
            ("weight", traced.weight_plan.threshold), ("act", activation_threshold(policy, fraction, cal.samples)),
            ("attention", attn_threshold))},
        "perplexity": {"value": evaluated.perplexity, "eval_tokens": int(cal.eval_windows.size),
                       "act_fp4_fraction": evaluated.act_fp4_fraction,
                       "scope": "linear layers quantized (weights and inputs); attention matmuls, softmax, norms "
                                "and an unquantized lm_head in float32"},
        "attention": {"masking": MASKING, "kv_len": t, "softmax_output": f"P kept in {'INT8 per row' if formats[1].name == 'int8' else 'FP8'} (all True)",
                      "operand_fisher": "per channel of the q/k/v_proj outputs (stand-in for post-RoPE Q, K)"},
    }
    return Trace(name=name or _trace_name(model_name, policy, fraction), ops=tuple(ops), block_size=BLOCK_SIZE,
                 meta=meta)


def _targets(policy: Policy, fraction: float) -> dict[str, float]:
    def target(choice: str) -> float:
        return {"fp8": 0.0, "fp4": 1.0}.get(choice, fraction)
    return {"weight": target(policy.weights), "act": target(policy.activations)}


def _trace_name(model_name: str, policy: Policy, fraction: float) -> str:
    """``<model>-<policy>[<percent FP4>]``; a family policy's options joined by ``-`` (``zqfp_w4a8-m2-gptq-g64``),
    so the name is also a plain directory name."""
    label = policy.name.replace(":", "-").replace("+", "-")
    return f"{model_name}-{label}{round(fraction * 100)}" if policy.uses_fraction else f"{model_name}-{label}"


def export_many(model: str = "smollm2-135m", policies: Sequence[str] = ("fgmp",),
                fp4_fractions: Sequence[float] = (0.7,), tokens: int = 256, text: str | Path | None = None, *,
                calib_sequences: int = 32, seq_len: int = 256, eval_tokens: int | None = DEFAULT_EVAL_TOKENS,
                seed: int = 0, include_lm_head: bool = False, progress: bool = True) -> tuple[Trace, ...]:
    """Calibrate ``model`` once (Fisher, activation scores), then trace its forward pass over the first ``tokens``
    evaluation tokens under every policy x FP4 fraction (a policy without a fraction, e.g. ``fp8``, once)."""
    chosen = [get_policy(name) for name in policies]
    fractions = [check_fraction(f) for f in fp4_fractions]
    t = _check_tokens(tokens)
    cal = calibrate(model, text, calib_sequences=calib_sequences, seq_len=seq_len, eval_tokens=eval_tokens,
                    include_lm_head=include_lm_head, progress=progress, policies=chosen)
    if len(cal.eval_stream) < t:
        raise ModelError(f"the evaluation stream has {len(cal.eval_stream)} tokens, {t} needed", "tokens",
                         "use fewer --tokens or a longer --text")
    label = model if model in KNOWN_MODELS else Path(model).stem
    points = dict.fromkeys((policy, fraction if policy.uses_fraction else fractions[0])
                           for policy in chosen for fraction in fractions)
    return tuple(export_trace(cal, policy, fraction, cal.eval_stream[:t], seed=seed, model_name=label,
                              progress=progress) for policy, fraction in points)


def export(model: str = "smollm2-135m", policy: str = "fgmp", fp4_fraction: float = 0.7, tokens: int = 256,
           text: str | Path | None = None, **options: Any) -> Trace:
    """Quantize ``model`` with ``policy`` and trace its forward pass over the first ``tokens`` evaluation tokens
    (options as :func:`export_many`)."""
    (trace,) = export_many(model, (policy,), (fp4_fraction,), tokens, text, **options)
    return trace
