"""Trace export from the tiny Llama: op shapes, MACs against torch's FLOP counter, wiring, maps, round trip."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fgmpsim.errors import PolicyError  # noqa: E402
from fgmpsim.quant.pipeline import calibrate_model  # noqa: E402
from fgmpsim.trace.export import export_trace  # noqa: E402
from fgmpsim.trace.formats import MIXED, OperandFormat  # noqa: E402
from fgmpsim.trace.io import load_trace  # noqa: E402

pytestmark = pytest.mark.model
T = 32


@pytest.fixture(scope="module")
def calibrated(tiny_llama, tiny_tokens):
    return calibrate_model(tiny_llama, tiny_tokens, tiny_tokens[:4], progress=False)


@pytest.fixture(scope="module")
def trace(calibrated, tiny_tokens):
    return export_trace(calibrated, "fgmp", 0.7, tiny_tokens[5], model_name="tiny", progress=False)


def test_op_shapes_follow_the_model_config(trace, tiny_llama):
    c = tiny_llama.config
    hd, kv_out = c.hidden_size // c.num_attention_heads, c.num_key_value_heads * 16
    expected = {"q_proj": (T, 64, 64), "k_proj": (T, 64, kv_out), "v_proj": (T, 64, kv_out), "o_proj": (T, 64, 64),
                "gate_proj": (T, 64, 128), "up_proj": (T, 64, 128), "down_proj": (T, 128, 64),
                "attn_qk": (T, hd, T), "attn_pv": (T, T, hd)}
    assert len(trace.ops) == c.num_hidden_layers * 9 + 1
    for op in trace.ops[:-1]:
        assert (op.m, op.k, op.n) == expected[op.name.rsplit(".", 1)[-1]]
        assert op.repeat == (c.num_attention_heads if op.kind.startswith("attn") else 1)
    qk, pv = trace.op("layers.1.self_attn.attn_qk"), trace.op("layers.1.self_attn.attn_pv")
    assert qk.weight_map.shape == qk.act_map.shape == (4, T, 1)
    assert pv.weight_map.shape == (4, hd, T // 16) and pv.act_map.shape == (4, T, T // 16)
    head = trace.op("lm_head")
    assert (head.m, head.k, head.n, head.layer) == (T, 64, c.vocab_size, 2)
    trace.check()


def test_total_macs_equal_half_the_forward_flops_counted_by_torch(trace, tiny_llama, tiny_tokens):
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(tiny_llama)
    model.config._attn_implementation = "eager"  # explicit matmuls over the full (masked) T x T scores
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=torch.from_numpy(tiny_tokens[5][None]))
    assert trace.macs == counter.get_total_flops() // 2


def test_consumers_follow_the_dataflow(trace):
    at, mlp = "layers.0.self_attn", "layers.0.mlp"
    wiring = {f"{at}.q_proj": (f"{at}.attn_qk", "act"), f"{at}.k_proj": (f"{at}.attn_qk", "weight"),
              f"{at}.v_proj": (f"{at}.attn_pv", "weight"), f"{at}.attn_qk": (f"{at}.attn_pv", "act"),
              f"{at}.attn_pv": (f"{at}.o_proj", "act"), f"{at}.o_proj": (f"{mlp}.gate_proj", "act"),
              f"{mlp}.up_proj": (f"{mlp}.down_proj", "act"), f"{mlp}.down_proj": ("layers.1.self_attn.q_proj", "act"),
              "layers.1.mlp.down_proj": ("lm_head", "act")}
    for name, (consumer, operand) in wiring.items():
        op = trace.op(name)
        assert (op.consumer, op.consumer_operand) == (consumer, operand)
    assert trace.op(f"{mlp}.gate_proj").consumer is None and trace.op("lm_head").consumer is None


def test_maps_share_inputs_and_hit_the_weight_fraction(trace):
    q, k, v = (trace.op(f"layers.0.self_attn.{p}_proj") for p in "qkv")
    assert q.act_map is k.act_map is v.act_map
    assert trace.op("layers.0.mlp.gate_proj").act_map is trace.op("layers.0.mlp.up_proj").act_map
    assert trace.op("layers.0.self_attn.attn_pv").act_map.all()  # softmax output P stays FP8
    head = trace.op("lm_head")
    assert head.weight_map.all() and head.act_map.all()  # unquantized lm_head: a fixed all-FP8 role
    linears = [op for op in trace.ops if op.kind == "linear"]
    blocks = sum(op.weight_map.size for op in linears)
    fp4 = blocks - sum(int(op.weight_map.sum()) for op in linears)
    assert abs(fp4 - 0.7 * blocks) <= 1.0
    assert trace.meta["fp4_fraction_achieved"]["weight"] == pytest.approx(fp4 / blocks)
    assert math.isfinite(trace.meta["perplexity"]["value"])


@pytest.mark.parametrize(("policy", "fp8"), [("fp8", True), ("nvfp4", False)])
def test_uniform_policies_give_uniform_decided_maps(calibrated, tiny_tokens, policy, fp8):
    trace = export_trace(calibrated, policy, 0.7, tiny_tokens[6], model_name="tiny", progress=False)
    for op in trace.ops:
        if op.kind != "lm_head":
            assert (op.weight_map == fp8).all()
        if op.kind in ("linear", "attn_qk"):
            assert (op.act_map == fp8).all()
    assert trace.name == f"tiny-{policy}"


def test_save_and_load_round_trip(trace, tmp_path):
    loaded = load_trace(trace.save(tmp_path / "tiny-fgmp70"))
    assert loaded.name == "tiny-fgmp70" and len(loaded.ops) == len(trace.ops)
    for a, b in zip(trace.ops, loaded.ops):
        assert (a.name, a.kind, a.m, a.k, a.n, a.repeat, a.consumer, a.consumer_operand) == \
               (b.name, b.kind, b.m, b.k, b.n, b.repeat, b.consumer, b.consumer_operand)
        np.testing.assert_array_equal(a.weight_map_array(), b.weight_map_array())
        np.testing.assert_array_equal(a.act_map_array(), b.act_map_array())
    assert loaded.meta["perplexity"] == trace.meta["perplexity"]
    assert loaded.meta["fp4_fraction_achieved"] == trace.meta["fp4_fraction_achieved"]


def test_token_count_must_fill_whole_blocks(calibrated, tiny_tokens):
    with pytest.raises(PolicyError, match="multiple of the block size"):
        export_trace(calibrated, "fgmp", 0.7, tiny_tokens[5][:20], progress=False)


def test_export_many_calibrates_once_and_traces_every_policy_and_fraction(calibrated, monkeypatch):
    """Each policy x fraction point (a fraction-free policy once) equals a direct export_trace on the same
    calibration, and the model is calibrated once for all of them."""
    import fgmpsim.trace.export as export_module

    calls = []
    monkeypatch.setattr(export_module, "calibrate", lambda *a, **k: calls.append(k) or calibrated)
    traces = export_module.export_many("tiny", ("fgmp", "fp8"), (0.5, 0.7), tokens=16, progress=False)
    assert len(calls) == 1
    assert [t.name for t in traces] == ["tiny-fgmp50", "tiny-fgmp70", "tiny-fp8"]
    direct = export_trace(calibrated, "fgmp", 0.7, calibrated.eval_stream[:16], model_name="tiny", progress=False)
    for ours, theirs in zip(traces[1].ops, direct.ops):
        assert np.array_equal(ours.weight_map, theirs.weight_map) and np.array_equal(ours.act_map, theirs.act_map)
    assert traces[1].meta["perplexity"] == direct.meta["perplexity"]


@pytest.mark.parametrize(("policy", "weight", "act"), [
    ("zqfp_w4a8:m2+rtn+g32+lorc4", OperandFormat("fp4_pow2", 32, channel_scale=True, lorc_rank=4), "fp8"),
    ("zqfp_w4a8:m1+rtn+g32", OperandFormat("fp4_pow2", 32), "fp8"),
    ("zqfp_w4a8:none+rtn+g64", OperandFormat("fp4_fp32", 64), "fp8"),
    ("int_w4a8:rtn+g32", OperandFormat("int4", 32), "int8"),
    ("w8a8_fp8", OperandFormat("fp8"), "fp8"),
    ("w8a8_int8", OperandFormat("int8"), "int8"),
])
def test_zeroquant_family_traces_record_their_operand_formats(calibrated, tiny_tokens, tmp_path, policy, weight, act):
    trace = export_trace(calibrated, policy, 0.7, tiny_tokens[6], model_name="tiny", progress=False)
    per_row = OperandFormat(act)
    fixed = per_row if act == "int8" else MIXED  # P and the unquantized lm_head: INT8 rows, or all-FP8 maps
    for op in trace.ops:
        expected = {"linear": (weight, per_row), "attn_qk": (per_row, per_row), "attn_pv": (per_row, fixed),
                    "lm_head": (fixed, fixed)}[op.kind]
        assert (op.weight_format, op.act_format) == expected, op.name
    loaded = load_trace(trace.save(tmp_path / "t"))
    assert [(op.weight_format, op.act_format) for op in loaded.ops] == \
        [(op.weight_format, op.act_format) for op in trace.ops]
    assert trace.meta["formats"]["weight"] == weight.label()


def test_simulated_zqfp_footprint_equals_the_quantizers_storage_report(calibrated, tiny_tokens):
    """Two independent counts of the same bits: the quantizer's storage report (elements, E8M0 group exponents, M2
    channel scales, LoRC factors) and the simulator's footprint of the traced linears on the W4A8 arch."""
    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate

    trace = export_trace(calibrated, "zqfp_w4a8:m2+rtn+g32+lorc4", 0.7, tiny_tokens[6], model_name="tiny",
                         progress=False)
    frame = simulate(trace, load_arch("zqfp_w4a8")).to_frame()
    storage = trace.meta["formats"]["weight_storage"]
    assert frame[frame.kind == "linear"].weight_bits.sum() == \
        storage["element_bits"] + storage["scale_bits"] + storage["lorc_bits"]
    assert frame.macs_fp8xfp8.sum() == frame.macs.sum() and frame.cast_blocks.sum() > 0


def test_an_int_trace_is_refused_by_the_w4a8_arch(calibrated, tiny_tokens):
    from fgmpsim.arch import load_arch
    from fgmpsim.errors import ConfigError
    from fgmpsim.sim import simulate

    trace = export_trace(calibrated, "int_w4a8:rtn+g32", 0.7, tiny_tokens[6], model_name="tiny", progress=False)
    with pytest.raises(ConfigError, match="no integer datapath"):
        simulate(trace, load_arch("zqfp_w4a8"))
