"""AQU decisions for the attention operands Q, K and V^T (used by trace export; perplexity leaves attention alone).

The operands are captured after RoPE, as the attention matmuls read them, through a pass-through entry in
transformers' attention-function registry. Each operand is laid out with its blocks along the reduction dimension
of the matmul that reads it: Q and K as ``[tokens, heads * head_dim]`` (QK^T reduces over head_dim), V^T as
``[kv_heads * head_dim, tokens]`` (PV reduces over keys). Their per-channel Fisher is that of the q/k/v_proj outputs
(RoPE rotates channel pairs after the projection; the projection's Fisher stands in for the rotated channel);
a V^T block spans 16 keys of one channel, so its weight is that channel's Fisher. The softmax output P has no
per-channel sensitivity and stays FP8. The operands get one global threshold of their own, calibrated like the
linear inputs' on the unquantized model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fgmpsim.errors import ModelError
from fgmpsim.quant.aqu_policy import ActivationRule, activation_block_scores
from fgmpsim.quant.calibration import WEIGHTINGS, ActivationSamples
from fgmpsim.quant.fisher import Fisher
from fgmpsim.quant.scores import BLOCK_SIZE, fp4_fp8_candidates

CAPTURE_IMPLEMENTATION = "fgmpsim_capture"
OPERANDS = ("q", "k", "v")

OperandHook = Callable[[int, dict[str, np.ndarray]], None]


def attention_projections(model: Any) -> dict[int, dict[str, str]]:
    """``{layer: {"q": name, "k": name, "v": name}}`` of every attention module's q/k/v_proj linears."""
    found = {}
    for name, mod in model.named_modules():
        if all(hasattr(mod, f"{p}_proj") for p in OPERANDS) and hasattr(mod, "layer_idx"):
            found[int(mod.layer_idx)] = {p: f"{name}.{p}_proj" for p in OPERANDS}
    if not found:
        raise ModelError("the model has no attention modules with q_proj/k_proj/v_proj", "model",
                         "use a Llama-style causal LM")
    return found


def operand_rows(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Q ``[heads, T, d]``, K and V ``[kv_heads, T, d]`` of one sequence as AQU rows (see the module doc)."""
    return {"q": q.transpose(1, 0, 2).reshape(q.shape[1], -1),
            "k": k.transpose(1, 0, 2).reshape(k.shape[1], -1),
            "v": v.transpose(0, 2, 1).reshape(-1, v.shape[1])}


def operand_fisher(fisher: Fisher, projections: dict[str, str]) -> dict[str, np.ndarray]:
    """Per-block-element Fisher of one layer's operand rows: q/k over channels ``[C]``, V^T per row ``[C, 1]``."""
    return {"q": fisher.output[projections["q"]], "k": fisher.output[projections["k"]],
            "v": fisher.output[projections["v"]][:, None]}


@contextlib.contextmanager
def captured_attention(model: Any, hook: OperandHook) -> Iterator[None]:
    """Within the block, every attention call of ``model`` hands ``hook(layer, operand_rows)`` one sequence at a
    time (float32 numpy) before attending as before."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.llama.modeling_llama import eager_attention_forward

    original = model.config._attn_implementation
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(original, eager_attention_forward)

    def capture(module: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        q, k, v = (t.detach().float().numpy() for t in (query, key, value))
        for b in range(q.shape[0]):
            hook(int(module.layer_idx), operand_rows(q[b], k[b], v[b]))
        return attend(module, query, key, value, *args, **kwargs)

    AttentionInterface.register(CAPTURE_IMPLEMENTATION, capture)
    ALL_MASK_ATTENTION_FUNCTIONS.register(CAPTURE_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS[original])
    model.config._attn_implementation = CAPTURE_IMPLEMENTATION
    try:
        yield
    finally:
        model.config._attn_implementation = original


def sample_attention_scores(model: Any, windows: np.ndarray, fisher: Fisher, *, block_size: int = BLOCK_SIZE,
                            progress: bool = True) -> ActivationSamples:
    """Block scores of Q, K and V^T of every layer on the unquantized model over ``windows`` (``[S, T]``)."""
    import torch
    from rich.progress import track

    projections = attention_projections(model)
    collected: dict[str, list[np.ndarray]] = {w: [] for w in WEIGHTINGS}

    def hook(layer: int, rows: dict[str, np.ndarray]) -> None:
        weights = operand_fisher(fisher, projections[layer])
        for operand, x in rows.items():
            candidates = fp4_fp8_candidates(x, block_size)
            for weighting, f in (("fisher", weights[operand]), ("unweighted", 1.0)):
                scores = activation_block_scores(x, f, block_size, candidates)
                collected[weighting].append(scores.astype(np.float32).ravel())

    with captured_attention(model, hook), torch.no_grad():
        for seq in track(windows, description="attention thresholds", disable=not progress):
            model(input_ids=torch.from_numpy(seq[None]), use_cache=False)
    return ActivationSamples(scores={w: np.concatenate(parts) for w, parts in collected.items()},
                             sequences=len(windows))


def operand_maps(rows: dict[str, np.ndarray], rules: dict[str, ActivationRule], heads: int, head_dim: int,
                 block_size: int = BLOCK_SIZE) -> dict[str, np.ndarray]:
    """FP8 maps of one layer's operands, per query head (KV heads repeated for grouped-query attention).

    ``q``/``k``: ``[heads, tokens, head_dim/block]``; ``v`` (V^T): ``[heads, head_dim, tokens/block]``.
    """
    maps = {}
    for operand, x in rows.items():
        _, fp8_map = rules[operand].quantize(x)
        if operand == "v":
            per_head = fp8_map.reshape(-1, head_dim, fp8_map.shape[-1])
        else:
            per_head = fp8_map.reshape(fp8_map.shape[0], -1, head_dim // block_size).transpose(1, 0, 2)
        maps[operand] = np.repeat(per_head, heads // per_head.shape[0], axis=0)
    return maps
