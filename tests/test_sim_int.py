"""The integer W4A8 accelerator (arch_configs/int_w4a8.yaml): INT4 weights sign-extended onto INT8 x INT8 lanes,
INT8 per-token activations, an FP32 rescale per output and scale group; hand-derived footprint, traffic, MAC,
rescale and energy counts on every engine, the INT traces' fixed roles, and what the arch refuses."""

from __future__ import annotations

import numpy as np
import pytest

import fgmpsim.cli as cli
from fgmpsim.arch import arch_from_dict, load_arch
from fgmpsim.arch.loader import arch_to_dict
from fgmpsim.energy import area_breakdown
from fgmpsim.errors import ConfigError
from fgmpsim.quant.policies import get_policy
from fgmpsim.sim import simulate
from fgmpsim.trace import GemmOp, Trace, synth_trace
from fgmpsim.trace.formats import MIXED, OperandFormat

ARCH = load_arch("int_w4a8")
M, K, N = 32, 256, 64
KB = K // 16
ENGINES = ("tile", "event", "reference", "analytic")
INT4, INT8 = OperandFormat("int4", 64), OperandFormat("int8")


def _op(name: str, wf: OperandFormat, af: OperandFormat, consumer: str | None = None) -> GemmOp:
    """A linear with constant maps as its formats say (all ``True`` for 8-bit, ``False`` for 4-bit elements)."""
    w = np.full((N, KB), wf.spec.wide if wf.uniform else False)
    a = np.full((M, KB), af.spec.wide if af.uniform else True)
    return GemmOp(name, 0, "linear", M, K, N, 1, w, a, consumer=consumer, weight_format=wf, act_format=af)


def _rows(trace: Trace, arch=ARCH) -> dict[str, list[dict]]:
    return {engine: simulate(trace, arch, engine=engine).to_frame().to_dict("records") for engine in ENGINES}


@pytest.mark.parametrize("weight, bits", [
    (INT4, 4 * N * K + N * (K // 64) * 32),                         # 4-bit values, an FP32 scale per 64
    (OperandFormat("int4", 128), 4 * N * K + N * (K // 128) * 32),
    (OperandFormat("int4", 64, lorc_rank=8), 4 * N * K + N * (K // 64) * 32 + 8 * (N + K) * 8 + (N + 8) * 32),
    (INT8, 8 * N * K + N * 32),                                     # W8A8-INT8: an FP32 scale per output channel
])
def test_weight_footprint_is_values_group_scales_and_lorc_by_hand(weight, bits):
    for engine, rows in _rows(Trace("int", (_op("w", weight, INT8),))).items():
        assert rows[0]["weight_bits"] == bits, engine


@pytest.mark.parametrize("weight, groups_per_output", [(INT4, K // 64), (OperandFormat("int4", 128), K // 128),
                                                       (INT8, 1)])
def test_every_mac_lands_in_int8xint8_and_each_scale_group_is_rescaled_once(weight, groups_per_output):
    for engine, rows in _rows(Trace("int", (_op("w", weight, INT8),))).items():
        row = rows[0]
        assert row["macs_int8xint8"] == row["macs"] == M * K * N, engine
        assert all(row[f"macs_{p}"] == 0 for p in ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")), engine
        assert row["block_pairs"] == M * N * KB and row["cast_blocks"] == 0 and row["macs_fgmp_extra"] == 0
        assert row["int_group_scales"] == M * N * groups_per_output, engine
        assert row["energy_mac_int8xint8_pj"] == pytest.approx(M * K * N * 0.0579)
        # 0.022 pJ per block pair (32-bit integer add) + 1.074 pJ per rescale (docs/energy_model.md)
        assert row["energy_scale_accumulate_pj"] == pytest.approx(
            M * N * KB * 0.022 + M * N * groups_per_output * 1.074)
        assert row["energy_aqu_pj"] == row["energy_metadata_pj"] == row["energy_fgmp_mode_logic_pj"] == 0


def test_int4_weights_move_4_bit_with_their_fp32_group_scale_share():
    # a 16-element block moves 64 value bits + 32 x 16 / 64 = 8 scale bits; INT8 activations 128 bits a block
    for engine, rows in _rows(Trace("int", (_op("w", INT4, INT8),))).items():
        row = rows[0]
        assert row["tiles"] == 1 and row["x_resident"], engine
        assert row["dram_read_bits"] == N * KB * (64 + 8) + M * KB * 128, engine
        assert row["dram_read_metadata_bits"] == 0


def test_an_output_into_an_int8_consumer_is_written_in_int8_blocks():
    ops = (_op("a", INT4, INT8, consumer="b"),
           GemmOp("b", 0, "linear", M, N, 16, 1, np.zeros((16, N // 16), bool), np.ones((M, N // 16), bool),
                  weight_format=INT4, act_format=INT8))
    for engine, rows in _rows(Trace("chain", ops)).items():
        row = rows[0]
        assert row["output_blocks"] == row["output_fp8_blocks"] == M * N // 16, engine
        assert row["dram_write_bits"] == M * N // 16 * 128, engine  # 16 INT8 values, per-row scale not per block


def test_compute_scales_with_the_int8_mode_cycles_and_matches_an_fp8_lane_at_one_cycle():
    trace = Trace("int", (_op("w", INT4, INT8),))
    one = simulate(trace, ARCH).to_frame().iloc[0]
    two = simulate(trace, load_arch("int_w4a8", ["pe_array.cycles_per_block_pair.int8xint8=2"])).to_frame().iloc[0]
    assert two.compute_cycles == 2 * one.compute_cycles
    # the same op on FP8 x FP8 lanes at one cycle per block pair (zqfp_w4a8, FP8 formats) computes as long
    fp = Trace("fp", (_op("w", OperandFormat("fp8"), OperandFormat("fp8")),))
    assert simulate(fp, load_arch("zqfp_w4a8")).to_frame().iloc[0].compute_cycles == one.compute_cycles
    # WS: lane j holds channel j; the 64 channels' lanes each walk M x KB block pairs, one per cycle
    assert one.compute_cycles == M * KB


def test_the_int_array_is_the_fp8_array_with_int8_lanes_in_area():
    # same memories and lanes, no block scale, no cast units: only the scalar-MAC area differs
    macs = ARCH.pe_array.lanes * ARCH.pe_array.vector_width
    fp8 = area_breakdown(load_arch("fp8_baseline"))
    ours = area_breakdown(ARCH)
    assert ours.mac_lanes == pytest.approx(macs * 7.057e-6)
    assert ours.int_rescale == pytest.approx(ARCH.pe_array.lanes * 1.567e-4) and fp8.int_rescale == 0.0
    assert ours.total_mm2 - fp8.total_mm2 == pytest.approx(macs * (7.057e-6 - 9.768e-6) + 256 * 1.567e-4)


def test_an_int_synthetic_trace_keeps_its_fixed_roles_int8_and_runs_end_to_end():
    trace = synth_trace("smollm2-135m", tokens=64, formats=get_policy("int_w4a8:rtn+g64").trace_formats())
    by_kind = {op.kind: op for op in trace.ops}
    assert by_kind["attn_pv"].act_format == INT8
    assert by_kind["lm_head"].weight_format == by_kind["lm_head"].act_format == INT8
    assert by_kind["attn_qk"].weight_format == INT8 and by_kind["linear"].weight_format == INT4
    frame = simulate(trace, ARCH).to_frame()
    assert frame.macs_int8xint8.sum() == frame.macs.sum() > 0
    # an FP policy's fixed roles stay all-FP8 maps
    fp = synth_trace("smollm2-135m", tokens=64, formats=get_policy("zqfp_w4a8:m2+rtn+g64").trace_formats())
    assert {op.kind: op for op in fp.ops}["attn_pv"].act_format == MIXED


@pytest.mark.parametrize("weight, act, fix", [
    (OperandFormat("fp8"), OperandFormat("fp8"), "simulate it on zqfp_w4a8 (fp8, fp4_pow2)"),
    (OperandFormat("fp4_pow2", 64), INT8, "simulate it on zqfp_w4a8 (fp8, fp4_pow2)"),
    (INT4, MIXED, "simulate it on fgmp, fp8_baseline or nvfp4 (FP8/NVFP4 maps)"),
])
def test_fp_operands_on_the_int_arch_are_refused_naming_storage_formats(weight, act, fix):
    for engine in ENGINES:
        with pytest.raises(ConfigError, match="INT8 lanes have no exact route for FP elements") as err:
            simulate(Trace("bad", (_op("w", weight, act),)), ARCH, engine=engine)
        assert (err.value.field, err.value.fix) == ("pe_array.storage_formats", fix)


@pytest.mark.parametrize("listed, fix", [
    ({"int8": "native"}, "add 'int4: widen' to pe_array.storage_formats"),
    ({}, "add 'int4: widen' to pe_array.storage_formats"),
])
def test_a_missing_int_route_gets_the_route_that_fits(listed, fix):
    data = arch_to_dict(ARCH)
    data["pe_array"]["storage_formats"] = listed
    with pytest.raises(ConfigError, match="lists no route") as err:
        simulate(Trace("int", (_op("w", INT4, INT8),)), arch_from_dict(data, "int.yaml"))
    assert err.value.fix == fix and ("accepted: none" in err.value.what) == (not listed)


def test_int_operands_on_an_fp_arch_point_to_the_int_arch(monkeypatch, capsys, tmp_path):
    with pytest.raises(ConfigError, match="no integer datapath") as err:
        simulate(Trace("int", (_op("w", INT4, INT8),)), load_arch("zqfp_w4a8"))
    assert "int_w4a8.yaml" in err.value.fix
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate",))
    Trace("fp", (_op("w", OperandFormat("fp8"), OperandFormat("fp8")),)).save(tmp_path / "t")
    assert cli.main(["simulate", "--trace", str(tmp_path / "t"), "--arch", "int_w4a8"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "(pe_array.storage_formats)" in err_lines[0]


def _with(**pe) -> dict:
    data = arch_to_dict(ARCH)
    data["pe_array"].update(pe)
    return data


@pytest.mark.parametrize("pe, field, needle", [
    ({"datapath_precisions": ["int8", "fp8"]}, "pe_array.datapath_precisions", "INT8 lanes alone"),
    ({"storage_formats": {"int8": "native", "int4": "native"}}, "pe_array.storage_formats.int4",
     "cannot run natively"),
    ({"storage_formats": {"int8": "native", "mixed": "map"}}, "pe_array.storage_formats.mixed", "no exact route"),
    ({"cycles_per_block_pair": {"int8xint8": 1, "fp8xfp8": 3}}, "pe_array.cycles_per_block_pair.fp8xfp8",
     "has no fp8xfp8 mode"),
    ({"storage_formats": {"int8": "native", "fp8": "native"}}, "pe_array.storage_formats.fp8", "cannot run"),
    ({"cycles_per_block_pair": {}}, "pe_array.cycles_per_block_pair.int8xint8", "missing required"),
])
def test_an_inconsistent_int_arch_names_the_field(pe, field, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        arch_from_dict(_with(**pe), "int.yaml")
    assert err.value.field == field


def test_widen_and_int_lanes_are_refused_on_fp_arrays():
    data = arch_to_dict(load_arch("zqfp_w4a8"))
    data["pe_array"]["storage_formats"]["int4"] = "widen"
    with pytest.raises(ConfigError, match="sign extension") as err:
        arch_from_dict(data, "fp.yaml")
    assert err.value.field == "pe_array.storage_formats.int4"
    data = arch_to_dict(load_arch("fgmp"))
    data["pe_array"]["cycles_per_block_pair"]["int8xint8"] = 1
    with pytest.raises(ConfigError, match="has no int8xint8 mode") as err:
        arch_from_dict(data, "fp.yaml")
    assert err.value.field == "pe_array.cycles_per_block_pair.int8xint8"
    del data["pe_array"]["cycles_per_block_pair"]["int8xint8"]
    del data["pe_array"]["cycles_per_block_pair"]["fp8xfp4"]
    with pytest.raises(ConfigError, match="missing required key") as err:
        arch_from_dict(data, "fp.yaml")
    assert err.value.field == "pe_array.cycles_per_block_pair.fp8xfp4"
