"""Attention operands for the AQU: capture after RoPE, layout, and per-head maps."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.quant.aqu_policy import ActivationRule
from fgmpsim.quant.attention import operand_maps, operand_rows


def test_operand_rows_put_blocks_along_each_matmuls_reduction():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((4, 32, 16)), rng.standard_normal((2, 32, 16)), rng.standard_normal((2, 32, 16))
    rows = operand_rows(q, k, v)
    assert rows["q"].shape == (32, 64) and rows["k"].shape == (32, 32) and rows["v"].shape == (32, 32)
    np.testing.assert_array_equal(rows["q"][5, 16:32], q[1, 5])  # token 5, head 1: head_dim contiguous
    np.testing.assert_array_equal(rows["v"][16 + 3], v[1, :, 3])  # V^T row = one channel over all keys


def test_operand_maps_repeat_kv_heads_for_grouped_query_attention():
    rng = np.random.default_rng(1)
    rows = operand_rows(*(rng.standard_normal(s).astype(np.float32) for s in ((4, 32, 32), (2, 32, 32),
                                                                                  (2, 32, 32))))
    rules = {op: ActivationRule("random", fp4_fraction=0.5, rng=np.random.default_rng(i))
             for i, op in enumerate("qkv")}
    maps = operand_maps(rows, rules, heads=4, head_dim=32)
    assert maps["q"].shape == maps["k"].shape == (4, 32, 2) and maps["v"].shape == (4, 32, 2)
    for kv_map in (maps["k"], maps["v"]):  # query heads 0, 1 read KV head 0; heads 2, 3 KV head 1
        np.testing.assert_array_equal(kv_map[0], kv_map[1])
        np.testing.assert_array_equal(kv_map[2], kv_map[3])
    redo = {op: ActivationRule("random", fp4_fraction=0.5, rng=np.random.default_rng(i)) for i, op in enumerate("qkv")}
    q_rows_map = redo["q"].quantize(rows["q"])[1]  # [tokens, heads * head_dim / 16]
    np.testing.assert_array_equal(maps["q"][3], q_rows_map[:, 6:8])


@pytest.mark.model
def test_capture_passes_attention_through_and_restores_the_model(tiny_llama, tiny_tokens):
    torch = pytest.importorskip("torch")
    from fgmpsim.quant.attention import attention_projections, captured_attention

    ids = torch.from_numpy(tiny_tokens[:2])
    with torch.no_grad():
        before = tiny_llama(input_ids=ids).logits
    seen = []
    with captured_attention(tiny_llama, lambda layer, rows: seen.append((layer, rows["q"].shape))), torch.no_grad():
        during = tiny_llama(input_ids=ids).logits
    assert torch.equal(before, during)
    assert tiny_llama.config._attn_implementation != "fgmpsim_capture"
    assert seen == [(0, (32, 64)), (0, (32, 64)), (1, (32, 64)), (1, (32, 64))]  # per layer, per sequence
    assert attention_projections(tiny_llama)[1]["k"] == "model.layers.1.self_attn.k_proj"
