"""Empirical Fisher on the tiny Llama: shapes, sites, and agreement with plain per-sequence autograd."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fgmpsim.quant.fisher import estimate_fisher, quantizable_linears  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def fisher(tiny_llama, tiny_tokens):
    return estimate_fisher(tiny_llama, tiny_tokens, quantizable_linears(tiny_llama), batch_size=3, progress=False)


def _sequence_losses(model, tokens):
    for seq in tokens:
        ids = torch.from_numpy(seq[None])
        yield model(input_ids=ids, labels=ids).loss  # mean next-token NLL of one sequence


def test_fisher_shapes_follow_the_model_config(tiny_llama, fisher):
    linears = quantizable_linears(tiny_llama)
    assert "lm_head" not in linears and len(linears) == 2 * 7
    for name, mod in linears.items():
        assert fisher.weight[name].shape == tuple(mod.weight.shape)
        assert fisher.output[name].shape == (mod.weight.shape[0],)
        assert fisher.act[fisher.site[name]].shape == (mod.weight.shape[1],)
        assert (fisher.weight[name] >= 0).all()
    assert fisher.weight["model.layers.0.self_attn.k_proj"].shape == (32, 64)  # 2 KV heads x head_dim 16
    assert fisher.weight["model.layers.1.mlp.down_proj"].shape == (64, 128)
    assert "lm_head" in quantizable_linears(tiny_llama, include_lm_head=True)


def test_linears_reading_one_tensor_share_a_site(fisher):
    for layer in (0, 1):
        attn, mlp = f"model.layers.{layer}.self_attn", f"model.layers.{layer}.mlp"
        assert {fisher.site[f"{attn}.{p}"] for p in ("q_proj", "k_proj", "v_proj")} == {f"{attn}.q_proj"}
        assert {fisher.site[f"{mlp}.{p}"] for p in ("gate_proj", "up_proj")} == {f"{mlp}.gate_proj"}
        assert fisher.site[f"{attn}.o_proj"] == f"{attn}.o_proj"
        assert fisher.site[f"{mlp}.down_proj"] == f"{mlp}.down_proj"
    assert len(fisher.act) == 8


def test_weight_fisher_equals_mean_squared_per_sequence_gradient(tiny_llama, tiny_tokens, fisher):
    model = copy.deepcopy(tiny_llama)
    names = ["model.layers.1.mlp.down_proj", "model.layers.0.self_attn.v_proj"]
    params = [model.get_submodule(n).weight.requires_grad_(True) for n in names]
    expected = [np.zeros(tuple(p.shape)) for p in params]
    for loss in _sequence_losses(model, tiny_tokens):
        for e, g in zip(expected, torch.autograd.grad(loss, params)):
            e += g.double().numpy() ** 2
    for name, e in zip(names, expected):
        np.testing.assert_allclose(fisher.weight[name], e / len(tiny_tokens), rtol=2e-4, atol=1e-12)


def test_activation_fisher_equals_mean_squared_gradient_of_the_shared_input(tiny_llama, tiny_tokens, fisher):
    model = copy.deepcopy(tiny_llama)
    norm = model.model.layers[1].input_layernorm  # its output is what q/k/v_proj read
    captured = []
    handle = norm.register_forward_hook(lambda mod, args, out: captured.append(out))
    expected = np.zeros(64)
    emb = model.get_input_embeddings()
    for seq in tiny_tokens:
        ids = torch.from_numpy(seq[None])
        captured.clear()
        x = emb(ids).requires_grad_(True)
        loss = model(inputs_embeds=x, labels=ids).loss
        (g,) = torch.autograd.grad(loss, captured)
        expected += (g.double() ** 2).sum(dim=(0, 1)).numpy()
    handle.remove()
    expected /= tiny_tokens.size
    np.testing.assert_allclose(fisher.act["model.layers.1.self_attn.q_proj"], expected, rtol=2e-4, atol=1e-15)
