"""Synthetic full-size traces: published shapes, MAC counts, exact FP4 fractions, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.errors import ModelError, PolicyError, TraceError
from fgmpsim.sim import simulate
from fgmpsim.trace import SyntheticMap, load_trace, model_shape, save_trace, synth_trace
from fgmpsim.trace.stats import class_fp4_fractions, map_table
from fgmpsim.trace.synth_model import ROLE_CLASS, RoleParams, SynthParams

# Parameter counts published on the Hugging Face model cards / safetensors indexes (embedding + every linear +
# RMSNorm weights, untied lm_head): an independent check of the GEMM shapes below.
PUBLISHED_PARAMETERS = {"llama-2-7b": 6_738_415_616, "llama-2-70b": 68_976_648_192, "llama-3-8b": 8_030_261_248}

SKEWED = SynthParams(roles={
    "down_proj": RoleParams(fp8_scale=6.0, row_sigma=1.0, col_sigma=2.0),  # saturates at 100 % FP8 at high targets
    "q_proj": RoleParams(fp8_scale=0.2, layer_profile=(1.0, -1.0, 0.5), layer_sigma=0.3),
    "attn_in": RoleParams(fp8_scale=3.0, col_sigma=2.5),
    "pv_p": RoleParams(fixed_fp8_fraction=1.0),
    "lm_head": RoleParams(fixed_fp8_fraction=1.0),
})


def _ops(trace, suffix):
    return [op for op in trace.ops if op.name.endswith(suffix)]


def test_llama2_7b_prefill_shapes_match_the_published_architecture():
    trace = synth_trace("llama-2-7b", tokens=2048)
    assert len(trace.ops) == 32 * 9 + 1
    for suffix, (k, n) in {"q_proj": (4096, 4096), "k_proj": (4096, 4096), "v_proj": (4096, 4096),
                           "o_proj": (4096, 4096), "gate_proj": (4096, 11008), "up_proj": (4096, 11008),
                           "down_proj": (11008, 4096)}.items():
        ops = _ops(trace, suffix)
        assert len(ops) == 32
        assert {(op.m, op.k, op.n, op.repeat) for op in ops} == {(2048, k, n, 1)}
        assert ops[0].weight_map.shape == (n, k // 16) and ops[0].act_map.shape == (2048, k // 16)
    qk, pv = _ops(trace, "attn_qk")[0], _ops(trace, "attn_pv")[0]
    assert (qk.m, qk.k, qk.n, qk.repeat, qk.static_weight) == (2048, 128, 2048, 32, False)
    assert (pv.m, pv.k, pv.n, pv.repeat) == (2048, 2048, 128, 32)
    assert qk.weight_map.shape == (32, 2048, 8) and pv.act_map.shape == (32, 2048, 128)
    head = trace.ops[-1]
    assert (head.name, head.kind, head.m, head.k, head.n) == ("lm_head", "lm_head", 2048, 4096, 32000)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_static_weights_plus_embedding_and_norms_equal_the_published_parameter_count(name):
    shape = model_shape(name)
    trace = synth_trace(name, tokens=16)
    weights = sum(op.k * op.n for op in trace.ops if op.static_weight)
    assert weights + shape.vocab * shape.hidden + (2 * shape.layers + 1) * shape.hidden == PUBLISHED_PARAMETERS[name]


@pytest.mark.parametrize("name, kv_heads", [("llama-2-70b", 8), ("llama-3-8b", 8)])
def test_grouped_query_attention_shapes(name, kv_heads):
    shape = model_shape(name)
    trace = synth_trace(name, tokens=64, batch=2)
    k, v, q = _ops(trace, "k_proj")[0], _ops(trace, "v_proj")[0], _ops(trace, "q_proj")[0]
    assert shape.kv_heads == kv_heads
    assert k.n == v.n == kv_heads * 128 and q.n == shape.heads * 128 and k.k == shape.hidden
    qk = _ops(trace, "attn_qk")[0]
    assert qk.repeat == shape.heads * 2 and qk.weight_map.group == shape.heads // kv_heads
    keys = qk.weight_map_array()
    group = shape.heads // kv_heads
    np.testing.assert_array_equal(keys[0], keys[group - 1])  # query heads of one KV group read the same K map


def _independent_macs(name, tokens, batch, kv_len):
    """M*K*N summed from the config, written out term by term (prefill)."""
    s = model_shape(name)
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    per_token = s.hidden * q + 2 * s.hidden * kv + q * s.hidden + 3 * s.hidden * s.intermediate
    attention = s.heads * tokens * s.head_dim * 2 * kv_len  # QK^T + PV, both over the real keys
    return s.layers * (tokens * batch * per_token + batch * attention) + tokens * batch * s.hidden * s.vocab


@pytest.mark.parametrize("name, tokens, batch", [("llama-2-7b", 2048, 1), ("llama-2-70b", 512, 4),
                                                 ("llama-3-8b", 100, 3), ("smollm2-135m", 256, 2)])
def test_total_macs_equal_the_formula_from_the_config(name, tokens, batch):
    assert synth_trace(name, tokens=tokens, batch=batch).macs == _independent_macs(name, tokens, batch, tokens)


def test_llama2_7b_prefill_2048_total_is_14_63_tera_macs():
    # 2048 x 6.607e9 linear MACs per token + 32 layers x 2 x 32 heads x 2048^2 x 128 attention MACs
    assert synth_trace("llama-2-7b", tokens=2048).macs == 2048 * 6_607_077_376 + 32 * 2 * 32 * 2048 ** 2 * 128


def test_decode_step_shapes_and_padding():
    trace = synth_trace("llama-2-7b", phase="decode", batch=8, kv_len=2047)
    q = _ops(trace, "q_proj")[0]
    qk, pv = _ops(trace, "attn_qk")[0], _ops(trace, "attn_pv")[0]
    assert (q.m, q.k, q.n) == (8, 4096, 4096)
    assert (qk.m, qk.k, qk.n, qk.repeat) == (1, 128, 2047, 32 * 8)
    assert (pv.m, pv.k, pv.n, pv.repeat) == (1, 2047, 128, 32 * 8)  # K = 2047 keys in 128 blocks, the last of 15
    assert pv.weight_map.shape == (32 * 8, 128, 128) and pv.act_map.shape == (32 * 8, 1, 128)
    assert "holds 15 of 16 keys" in trace.meta["attention"]["padding"]
    trace.check()
    # the array computes the whole last block; useful MACs count the 2047 real keys
    row = simulate(trace, load_arch("fgmp")).to_frame().set_index("op").loc[pv.name]
    assert (row.macs, row.useful_macs) == (1 * 2048 * 128 * 256, 1 * 2047 * 128 * 256)


def test_consumer_wiring_follows_the_export():
    trace = synth_trace("smollm2-135m", tokens=32)
    wiring = {op.name: (op.consumer, op.consumer_operand) for op in trace.ops}
    at, mlp = "layers.0.self_attn", "layers.0.mlp"
    assert wiring[f"{at}.q_proj"] == (f"{at}.attn_qk", "act")
    assert wiring[f"{at}.k_proj"] == (f"{at}.attn_qk", "weight")
    assert wiring[f"{at}.v_proj"] == (f"{at}.attn_pv", "weight")
    assert wiring[f"{at}.attn_qk"] == (f"{at}.attn_pv", "act")
    assert wiring[f"{at}.attn_pv"] == (f"{at}.o_proj", "act")
    assert wiring[f"{at}.o_proj"] == (f"{mlp}.gate_proj", "act")
    assert wiring[f"{mlp}.gate_proj"][0] is None
    assert wiring[f"{mlp}.up_proj"] == (f"{mlp}.down_proj", "act")
    assert wiring[f"{mlp}.down_proj"] == ("layers.1.self_attn.q_proj", "act")
    assert wiring["layers.29.mlp.down_proj"] == ("lm_head", "act")
    ops = {op.name: op for op in trace.ops}
    assert ops[f"{at}.q_proj"].act_map is ops[f"{at}.k_proj"].act_map is ops[f"{at}.v_proj"].act_map
    assert ops[f"{mlp}.gate_proj"].act_map is ops[f"{mlp}.up_proj"].act_map


@pytest.mark.parametrize("fp4", [0.0, 0.3, 0.7, 0.95, 1.0])
def test_achieved_fp4_fraction_equals_the_target_within_one_block_per_map(fp4):
    trace = synth_trace("smollm2-135m", tokens=64, fp4_fraction=fp4, params=SKEWED)
    table = map_table(trace)
    free = table[~table["role"].isin(["pv_p", "lm_head"])]
    for cls, rows in free.groupby("cls"):
        target_fp8 = (1.0 - fp4) * rows["blocks"].sum()
        assert abs(rows["fp8_blocks"].sum() - target_fp8) <= len(rows), cls
    assert class_fp4_fractions(trace, {r for r in ROLE_CLASS if r not in ("pv_p", "lm_head")}) == pytest.approx(
        trace.meta["fp4_fraction_achieved"])
    assert (table.loc[table["role"] == "pv_p", "fp8_blocks"] == table.loc[table["role"] == "pv_p", "blocks"]).all()
    for op in trace.ops[:9]:  # the stored counts are what the maps hold
        for pmap in (op.weight_map, op.act_map):
            assert np.count_nonzero(pmap.materialize()) == pmap.fp8_blocks


def test_relative_role_fractions_follow_the_params():
    trace = synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.9, params=SKEWED)
    table = map_table(trace)
    fraction = table.groupby("role").apply(lambda r: r["fp8_blocks"].sum() / r["blocks"].sum())
    assert fraction["down_proj"] / fraction["gate_proj"] == pytest.approx(6.0, rel=0.01)
    assert fraction["q_proj"] / fraction["gate_proj"] == pytest.approx(0.2, rel=0.05)
    high = map_table(synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.5, params=SKEWED))
    down = high[high["role"] == "down_proj"]
    assert (down["fp8_blocks"] == down["blocks"]).all()  # clipped at all-FP8, the others absorb the rest


def test_separate_activation_target():
    trace = synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.8, act_fp4_fraction=0.6, params=SKEWED)
    assert trace.meta["fp4_fraction_achieved"]["weight"] == pytest.approx(0.8, abs=1e-3)
    assert trace.meta["fp4_fraction_achieved"]["act"] == pytest.approx(0.6, abs=1e-3)


def test_same_seed_same_bits_other_seed_other_bits():
    a, b = synth_trace("smollm2-135m", tokens=32, seed=5), synth_trace("smollm2-135m", tokens=32, seed=5)
    c = synth_trace("smollm2-135m", tokens=32, seed=6)
    for x, y, z in zip(a.ops[:12], b.ops[:12], c.ops[:12]):
        np.testing.assert_array_equal(x.weight_map_array(), y.weight_map_array())
        np.testing.assert_array_equal(x.act_map_array(), y.act_map_array())
    assert any((x.weight_map_array() != z.weight_map_array()).any() for x, z in zip(a.ops[:12], c.ops[:12]))


def test_llama2_70b_trace_is_lazy_and_saves_without_materializing(tmp_path):
    trace = synth_trace("llama-2-70b", tokens=2048)
    assert all(isinstance(op.weight_map, SyntheticMap) and isinstance(op.act_map, SyntheticMap) for op in trace.ops)
    save_trace(trace, tmp_path / "l70")
    assert (tmp_path / "l70" / "maps.npz").stat().st_size < 1000  # nothing dense stored
    loaded = load_trace(tmp_path / "l70")
    assert loaded.macs == trace.macs
    np.testing.assert_array_equal(loaded.ops[3].weight_map_array(), trace.ops[3].weight_map_array())


def test_config_json_model(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 2, '
                      '"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}')
    trace = synth_trace(str(config), tokens=16)
    assert _ops(trace, "k_proj")[0].n == 2 * 64 and _ops(trace, "down_proj")[0].k == 688


@pytest.mark.parametrize("kwargs, error, field", [
    ({"tokens": 0}, TraceError, "tokens"),
    ({"batch": -1}, TraceError, "batch"),
    ({"batch": 1.5}, TraceError, "batch"),
    ({"fp4_fraction": 1.5}, PolicyError, "fp4_fraction"),
    ({"fp4_fraction": -0.1}, PolicyError, "fp4_fraction"),
    ({"act_fp4_fraction": 2}, PolicyError, "act_fp4_fraction"),
    ({"phase": "decode"}, TraceError, "kv_len"),
    ({"phase": "decode", "kv_len": 64, "tokens": 8}, TraceError, "tokens"),
    ({"phase": "verify"}, TraceError, "phase"),
    ({"tokens": 64, "kv_len": 32}, TraceError, "kv_len"),
    ({"seed": -3}, TraceError, "seed"),
])
def test_bad_settings_raise_typed_errors_naming_the_field(kwargs, error, field):
    with pytest.raises(error) as err:
        synth_trace("smollm2-135m", **kwargs)
    assert err.value.field == field


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelError) as err:
        synth_trace("llama-9-1t")
    assert "llama-2-7b" in err.value.fix and "smollm2-135m" in err.value.fix
