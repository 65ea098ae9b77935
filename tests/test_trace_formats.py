"""Trace format version 4: uniform operand formats round trip exactly, older versions load as before, bad formats
fail on load with one error naming the field, and ``trace show`` prints them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import fgmpsim.cli as cli
from fgmpsim.errors import TraceError
from fgmpsim.trace import GemmOp, Trace, load_trace, save_trace
from fgmpsim.trace.formats import MIXED, OperandFormat
from fgmpsim.trace.io import MANIFEST
from fgmpsim.trace.record import CAUSAL_FORMAT_VERSION, OPERAND_FORMAT_VERSION, WHOLE_BLOCKS_FORMAT_VERSION

M, K, N = 8, 128, 24
NEW_FORMATS = [OperandFormat("fp8"), OperandFormat("int8"), OperandFormat("int4", 32),
               OperandFormat("fp4_pow2", 64), OperandFormat("fp4_pow2", 16, channel_scale=True, lorc_rank=4),
               OperandFormat("fp4_fp32", 128)]


def _op(weight_format: OperandFormat = MIXED, act_format: OperandFormat = MIXED, name: str = "l0") -> GemmOp:
    rng = np.random.default_rng(3)
    w = np.full((N, K // 16), weight_format.spec.wide) if weight_format.uniform else rng.random((N, K // 16)) < 0.4
    a = np.full((M, K // 16), act_format.spec.wide) if act_format.uniform else rng.random((M, K // 16)) < 0.6
    return GemmOp(name, 0, "linear", M, K, N, 1, w, a, weight_format=weight_format, act_format=act_format)


def _edit(path, change) -> None:
    manifest = yaml.safe_load((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=lambda f: f.label().replace(" ", "_"))
def test_each_uniform_format_round_trips_exactly_at_format_version_4(tmp_path, fmt):
    act = OperandFormat("int8" if fmt.spec.element in ("int4", "int8") else "fp8")
    trace = Trace("t", (_op(fmt, act), _op(name="mixed")))
    save_trace(trace, tmp_path / "t")
    manifest = yaml.safe_load((tmp_path / "t" / MANIFEST).read_text())
    assert manifest["format_version"] == OPERAND_FORMAT_VERSION
    assert "weight_format" not in manifest["ops"][1]  # a mixed operand is written by leaving the key out
    loaded = load_trace(tmp_path / "t")
    assert [(op.weight_format, op.act_format) for op in loaded.ops] == [(fmt, act), (MIXED, MIXED)]
    for before, after in zip(trace.ops, loaded.ops):
        assert np.array_equal(before.weight_map_array(), after.weight_map_array())
        assert np.array_equal(before.act_map_array(), after.act_map_array())


def test_traces_without_uniform_formats_keep_their_old_version_and_load_mixed(tmp_path):
    save_trace(Trace("old", (_op(),)), tmp_path / "old")
    manifest = yaml.safe_load((tmp_path / "old" / MANIFEST).read_text())
    assert manifest["format_version"] == WHOLE_BLOCKS_FORMAT_VERSION and "causal" not in manifest["ops"][0]
    op = load_trace(tmp_path / "old").ops[0]
    assert op.weight_format == op.act_format == MIXED and not op.uniform


def test_a_format_key_in_a_version_3_trace_is_an_unknown_key(tmp_path):
    save_trace(Trace("t", (_op(OperandFormat("fp8")),)), tmp_path / "t")
    _edit(tmp_path / "t", lambda m: m.update(format_version=CAUSAL_FORMAT_VERSION))
    with pytest.raises(TraceError) as err:
        load_trace(tmp_path / "t")
    assert err.value.field == "ops[0].weight_format"


@pytest.mark.parametrize("change, field, needle", [
    (lambda f: f.update(name="fp5"), "ops[0].weight_format.name", "did you mean 'fp8'"),
    (lambda f: f.update(name="mixed"), "weight_format", "mixed FP8/NVFP4 format takes no group size"),
    (lambda f: f.update(group_size=48), "weight_format.group_size", "divides K=128"),
    (lambda f: f.update(group_size=8), "weight_format.group_size", "multiple of the block size 16"),
    (lambda f: f.update(group_size="64"), "weight_format.group_size", "positive multiple"),
    (lambda f: f.update(channel_scale=True), "weight_format.channel_scale", "only for fp4_pow2"),
    (lambda f: f.update(lorc_rank=-1), "weight_format.lorc_rank", "non-negative integer"),
    (lambda f: f.update(lorc_rank=25), "weight_format.lorc_rank", "exceeds the weight.s smaller side"),
    (lambda f: f.update(groupsize=64), "ops[0].weight_format.groupsize", "did you mean 'group_size'"),
])
def test_a_bad_weight_format_names_its_field(tmp_path, change, field, needle):
    save_trace(Trace("t", (_op(OperandFormat("int4", 64), OperandFormat("int8")),)), tmp_path / "t")
    _edit(tmp_path / "t", lambda m: change(m["ops"][0]["weight_format"]))
    with pytest.raises(TraceError, match=needle) as err:
        load_trace(tmp_path / "t")
    assert err.value.field == field and "\n" not in str(err.value)


def test_lorc_on_an_activation_and_a_non_constant_uniform_map_are_refused():
    with pytest.raises(TraceError) as err:
        _op(act_format=OperandFormat("fp8", lorc_rank=2)).check(16)
    assert err.value.field == "act_format.lorc_rank"
    op = _op(OperandFormat("fp4_pow2", 64))
    op.weight_map_array()[0, 0] = True  # one FP8 block in a 4-bit uniform operand
    with pytest.raises(TraceError, match="constant map") as err:
        op.check(16)
    assert err.value.field == "weight_map"


def test_a_format_entry_that_is_not_a_mapping_is_refused(tmp_path):
    save_trace(Trace("t", (_op(OperandFormat("fp8")),)), tmp_path / "t")
    _edit(tmp_path / "t", lambda m: m["ops"][0].update(weight_format="fp8"))
    with pytest.raises(TraceError, match="must be a mapping") as err:
        load_trace(tmp_path / "t")
    assert err.value.field == "ops[0].weight_format"


def test_trace_show_prints_each_operand_format(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("trace",))
    ops = (_op(OperandFormat("fp4_pow2", 64, channel_scale=True, lorc_rank=4), OperandFormat("fp8"), "zq"),
           _op(name="fgmp"))
    save_trace(Trace("t", ops), tmp_path / "t")
    assert cli.main(["trace", "show", str(tmp_path / "t"), "--arch", "zqfp_w4a8"]) == 0
    out = capsys.readouterr().out
    assert "fp4_pow2 g64 +channel +lorc4" in out and "fp8 per-row" in out and "mixed" in out
    assert "weight format" in out and "act format" in out


def test_synthetic_traces_take_a_policys_uniform_formats():
    from fgmpsim.quant.policies import get_policy
    from fgmpsim.trace import synth_trace

    weight, act = get_policy("zqfp_w4a8:m2+gptq+g64+lorc8").trace_formats()
    trace = synth_trace("smollm2-135m", tokens=32, formats=(weight, act))
    row = OperandFormat("fp8")
    kinds = {op.kind: (op.weight_format, op.act_format) for op in trace.ops}
    assert kinds == {"linear": (weight, act), "attn_qk": (row, row), "attn_pv": (row, MIXED),
                     "lm_head": (MIXED, MIXED)}
    for op in trace.ops:
        if op.kind == "linear":
            assert not op.weight_map_array().any() and op.act_map_array().all()
    assert trace.meta["fp4_fraction_achieved"]["weight"] == 1.0
    with pytest.raises(TraceError, match="divides K=576") as err:  # ZeroQuant-FP's default group of 256
        synth_trace("smollm2-135m", tokens=32, formats=get_policy("zqfp_w4a8").trace_formats()).check()
    assert err.value.field == "weight_format.group_size"
