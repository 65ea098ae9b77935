"""trace_summary / `fgmpsim trace show|gemm|synth`: hand-checked numbers, CLI output and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fgmpsim.cli as cli
from fgmpsim.arch.record import BlockStorage
from fgmpsim.trace import GemmOp, Trace, gemm_trace, load_trace
from fgmpsim.trace.summary import summary_totals, trace_summary

STORAGE = BlockStorage(fp4_value_bits=4, fp8_value_bits=8, fp4_scale_bits=8, fp8_scale_bits=0,
                       metadata_bits_per_block=1, tensor_scale_bits=32, psum_bits=32, unquantized_output_bits=16)


def test_summary_of_a_hand_made_trace():
    weight = np.zeros((4, 2), bool)
    weight[0, :] = True  # 2 FP8 blocks of 8
    act = np.ones((3, 2), bool)
    attention = GemmOp("qk", 0, "attn_qk", m=3, k=32, n=5, repeat=2, static_weight=False,
                       weight_map=np.zeros((2, 5, 2), bool), act_map=np.zeros((2, 3, 2), bool))
    frame = trace_summary(Trace("t", (GemmOp("w", 0, "linear", 3, 32, 4, 1, weight, act), attention)), STORAGE)
    row = frame.iloc[0]
    assert row.macs == 3 * 32 * 4 and row.weight_fp4_fraction == 0.75 and row.act_fp4_fraction == 0.0
    # 2 FP8 blocks x 16 x 8 bits + 6 FP4 blocks x (16 x 4 + 8) bits + 8 metadata bits + 32-bit tensor scale
    assert row.weight_bits == 2 * 128 + 6 * 72 + 8 + 32 and row.weight_elements == 128
    assert frame["weight_bits"].isna().tolist() == [False, True]
    totals = summary_totals(frame)
    assert totals["macs"] == 384 + 3 * 32 * 5 * 2
    assert totals["static_weight_fp4_fraction"] == 0.75
    assert totals["dynamic_operand_fp4_fraction"] == 1.0
    assert totals["act_fp4_fraction"] == pytest.approx(1 - 6 / (6 + 12))
    assert totals["weight_bits_per_element"] == pytest.approx((2 * 128 + 6 * 72 + 8 + 32) / 128)


def test_footprint_of_a_70_percent_map_is_5_6125_bits_per_element():
    frame = trace_summary(gemm_trace(16, 4096, 4000, fp4_fraction=0.7), STORAGE)
    bits = 0.7 * 4.5 + 0.3 * 8 + 1 / 16  # FGMP paper storage: NVFP4 4 + 8/16, FP8 8, one flag bit per block
    assert summary_totals(frame)["weight_bits_per_element"] == pytest.approx(bits + 32 / (4096 * 4000), abs=1e-12)


@pytest.fixture()
def run(monkeypatch, capsys):
    """``fgmpsim ...`` through the CLI frame with only the trace verb registered (the others are not ours)."""
    monkeypatch.setattr(cli, "_VERB_MODULES", ("trace",))

    def invoke(*argv):
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err
    return invoke


def test_cli_gemm_then_show(run, tmp_path):
    status, out, _ = run("trace", "gemm", "--m", "64", "--k", "256", "--n", "48", "--fp4-fraction", "0.75",
                         "--seed", "2", "--out", str(tmp_path / "g"))
    assert status == 0 and "achieved FP4 fraction weight 0.7500, act 0.7500" in out
    assert load_trace(tmp_path / "g").ops[0].k == 256
    status, out, _ = run("trace", "show", str(tmp_path / "g"))
    assert status == 0
    assert "gemm" in out and "0.7500" in out and "GMAC" in out and "bits/element" in out
    assert "weights without lm_head 0.7500, all static weights 0.7500" in out
    assert "input activations of every op 0.7500" in out


def test_cli_synth_writes_a_loadable_trace(run, tmp_path):
    status, out, _ = run("trace", "synth", "--model", "smollm2-135m", "--tokens", "32", "--out", str(tmp_path / "s"))
    assert status == 0 and "271 ops" in out
    assert load_trace(tmp_path / "s").meta["synth"]["tokens"] == 32


@pytest.mark.parametrize("argv, needle", [
    (("trace", "synth", "--model", "gpt-7", "--out", "x"), "unknown model 'gpt-7' (model): use one of llama-2-7b"),
    (("trace", "synth", "--model", "llama-2-7b", "--tokens", "0", "--out", "x"), "(tokens)"),
    (("trace", "synth", "--model", "llama-2-7b", "--batch", "-2", "--out", "x"), "(batch)"),
    (("trace", "synth", "--model", "llama-2-7b", "--fp4-fraction", "1.2", "--out", "x"), "(fp4_fraction)"),
    (("trace", "synth", "--config", "missing/config.json", "--out", "x"), "(config)"),
    (("trace", "gemm", "--m", "4", "--k", "0", "--n", "4", "--out", "x"), "(k): give --k >= 1"),
    (("trace", "show", "no/such/dir"), "(path)"),
])
def test_cli_bad_input_is_one_line_and_exit_2(run, argv, needle):
    status, out, err = run(*argv)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err


def test_cli_config_missing_field_is_named(run, tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": 2}')
    status, _, err = run("trace", "synth", "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "o"))
    assert status == 2 and "(intermediate_size)" in err


def test_cli_fit_writes_params_and_a_figure(run, tmp_path):
    from fgmpsim.trace import ModelShape, synth_trace
    from fgmpsim.trace.synth_model import load_synth_params

    toy = ModelShape("toy", hidden=128, intermediate=256, layers=3, heads=2, kv_heads=1, head_dim=64, vocab=256)
    synth_trace(toy, tokens=64, fp4_fraction=0.6).save(tmp_path / "toy")
    status, out, _ = run("trace", "fit", str(tmp_path / "toy"), "--out", str(tmp_path / "p.yaml"),
                         "--plot", str(tmp_path / "fit.png"))
    assert status == 0 and "fitted to toy" in out
    params = load_synth_params(tmp_path / "p.yaml")
    assert params.source["class_fp4_fraction"] == pytest.approx({"act": 0.6, "weight": 0.6}, abs=2e-3)
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"


def test_weight_bits_of_synthetic_maps_equal_the_footprint_of_the_generated_maps():
    from fgmpsim.energy import weight_footprint_bits
    from fgmpsim.trace import synth_trace

    trace = synth_trace("smollm2-135m", tokens=16)
    frame = trace_summary(trace, STORAGE).set_index("op")
    for op in trace.ops[:9] + trace.ops[-1:]:
        if op.static_weight:
            assert frame.loc[op.name, "weight_bits"] == weight_footprint_bits(op.weight_map_array(), STORAGE, 16)


def test_quantized_weight_fraction_of_shipped_trace_is_what_its_manifest_reports():
    """The maps' FP4 fraction without lm_head is the fraction the exporting policy counted (manifest), so a user
    sees which number is the "70%"; with lm_head (kept FP8) it is lower."""
    from fgmpsim.arch import load_arch

    trace = load_trace(Path(__file__).resolve().parent.parent / "traces" / "smollm2-135m-fgmp70")
    totals = summary_totals(trace_summary(trace, load_arch("fgmp").storage))
    assert totals["quantized_weight_fp4_fraction"] == pytest.approx(trace.meta["fp4_fraction_achieved"]["weight"],
                                                                   abs=5e-5)
    assert totals["static_weight_fp4_fraction"] < totals["quantized_weight_fp4_fraction"]
