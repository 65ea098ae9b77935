"""The ZeroQuant-FP W4A8 accelerator (arch_configs/zqfp_w4a8.yaml): FP4 weights with power-of-two group scales
stored 4-bit, cast to E4M3 in front of the lanes, FP8 x FP8 MACs; hand-derived footprint, traffic, MAC and cast
counts on every engine, and the formats it refuses."""

from __future__ import annotations

import numpy as np
import pytest

import fgmpsim.cli as cli
from fgmpsim.arch import load_arch
from fgmpsim.energy import area_breakdown, required_entries
from fgmpsim.errors import ConfigError
from fgmpsim.sim import simulate
from fgmpsim.trace import GemmOp, Trace
from fgmpsim.trace.formats import MIXED, OperandFormat
from fgmpsim.trace.summary import trace_summary

ARCH = load_arch("zqfp_w4a8")
M, K, N = 32, 256, 64
KB = K // 16
ENGINES = ("tile", "event", "reference")


def _op(name: str, wf: OperandFormat, af: OperandFormat, w_fp8: bool = False, a_fp8: bool = False,
        m: int = M, consumer: str | None = None) -> GemmOp:
    """A linear; a uniform operand's map is constant as its format says, a mixed one all ``w_fp8``/``a_fp8``."""
    w = np.full((N, KB), wf.spec.wide if wf.uniform else w_fp8)
    a = np.full((m, KB), af.spec.wide if af.uniform else a_fp8)
    return GemmOp(name, 0, "linear", m, K, N, 1, w, a, consumer=consumer, weight_format=wf, act_format=af)


def _rows(trace: Trace) -> dict[str, list[dict]]:
    return {engine: simulate(trace, ARCH, engine=engine).to_frame().to_dict("records") for engine in ENGINES}


@pytest.mark.parametrize("weight, bits", [
    # values 4 b x N x K; E8M0 exponent per 64 elements; M2: FP32 channel scale per row; LoRC rank 8:
    # 8 x (N + K) 8-bit elements + an FP32 scale per factor row (N + 8 rows)
    (OperandFormat("fp4_pow2", 64), 4 * N * K + N * (K // 64) * 8),
    (OperandFormat("fp4_pow2", 64, channel_scale=True), 4 * N * K + N * (K // 64) * 8 + N * 32),
    (OperandFormat("fp4_pow2", 64, channel_scale=True, lorc_rank=8),
     4 * N * K + N * (K // 64) * 8 + N * 32 + 8 * (N + K) * 8 + (N + 8) * 32),
    (OperandFormat("fp4_pow2", 256), 4 * N * K + N * 8),
    (OperandFormat("fp8"), 8 * N * K + N * 32),  # W8A8-FP8 weights: FP32 scale per output channel
])
def test_weight_footprint_is_values_group_scales_channel_scales_and_lorc_by_hand(weight, bits):
    trace = Trace("zq", (_op("w", weight, OperandFormat("fp8")),))
    for engine, rows in _rows(trace).items():
        assert rows[0]["weight_bits"] == bits, engine
    assert trace_summary(trace, ARCH.storage).weight_bits[0] == bits  # `trace show` prices it the same way


def test_all_four_weight_x_activation_combinations_land_in_fp8xfp8_after_the_cast():
    fp4_w, fp8_w = OperandFormat("fp4_pow2", 64), OperandFormat("fp8")
    ops = (_op("w4a4", fp4_w, MIXED, a_fp8=False),   # NVFP4 activation map: promoted on the FP8-only datapath
           _op("w4a8", fp4_w, OperandFormat("fp8")),
           _op("w8a4", fp8_w, MIXED, a_fp8=False),
           _op("w8a8", fp8_w, OperandFormat("fp8")),
           _op("mixed", MIXED, MIXED, w_fp8=False, a_fp8=True))  # an NVFP4 weight map, promoted too
    pj = ARCH.energy.as_dict()
    for engine, rows in _rows(Trace("combos", ops)).items():
        for row in rows:
            assert row["macs_fp8xfp8"] == M * K * N, (engine, row["op"])
            assert row["macs_fp4xfp4"] == row["macs_fp4xfp8"] == row["macs_fp8xfp4"] == 0
            cast = M * N * KB if row["op"].startswith("w4") else 0  # one cast per lane read = per block pair
            assert row["cast_blocks"] == cast and row["block_pairs"] == M * N * KB, (engine, row["op"])
            assert row["energy_cast_pj"] == pytest.approx(cast * pj["cast_block"])
            assert row["energy_mac_fp8xfp8_pj"] == pytest.approx(M * K * N * pj["mac_fp8xfp8"])
            assert row["weight_fp8_fraction"] == row["act_fp8_fraction"] == 1.0


def test_the_run_says_how_each_stored_format_is_computed():
    # the summary line a user reads under `fgmpsim simulate`: one clause per stored format that is not a map
    result = simulate(Trace("combos", (_op("w4a8", OperandFormat("fp4_pow2", 64), OperandFormat("fp8")),)), ARCH)
    assert result.precision_adjustment == ("every NVFP4 block promoted to FP8 (FP8-only datapath); fp4_pow2 cast to "
                                           "FP8 at the lane input; fp8 computed as stored")


@pytest.mark.parametrize("group, scale_share", [(64, 2), (128, 1), (256, 1)])
def test_weights_move_4_bit_with_their_group_scale_share_per_block(group, scale_share):
    # a 16-element block moves 64 value bits + ceil(8 x 16 / group) exponent bits (an upper estimate at 256: 1 for
    # 0.5); FP8 per-token activations 128 bits a block (their per-row scale travels like a tensor scale)
    trace = Trace("zq", (_op("w", OperandFormat("fp4_pow2", group), OperandFormat("fp8")),))
    for engine, rows in _rows(trace).items():
        row = rows[0]
        assert row["tiles"] == 1 and row["x_resident"], engine  # every operand fetched once: a hand count holds
        assert row["dram_read_bits"] == N * KB * (64 + scale_share) + M * KB * 128, engine
        assert row["dram_read_metadata_bits"] == 0


def test_output_into_an_fp8_consumer_is_written_at_fp8_block_bits():
    ops = (_op("a", OperandFormat("fp4_pow2", 64), OperandFormat("fp8"), consumer="b"),
           GemmOp("b", 0, "linear", M, N, 16, 1, np.zeros((16, N // 16), bool), np.ones((M, N // 16), bool),
                  weight_format=OperandFormat("fp4_pow2", 64), act_format=OperandFormat("fp8")))
    for engine, rows in _rows(Trace("chain", ops)).items():
        assert rows[0]["output_blocks"] == M * N // 16 and rows[0]["dram_write_bits"] == M * N // 16 * 128, engine


@pytest.mark.parametrize("fmt, needle", [
    (OperandFormat("int4", 64), "no integer datapath"),
    (OperandFormat("int8"), "no integer datapath"),
    (OperandFormat("fp4_fp32", 64), "lists no route for it"),
])
def test_formats_the_arch_does_not_accept_are_refused_naming_storage_formats(fmt, needle):
    act = OperandFormat("int8") if fmt.spec.element in ("int4", "int8") else OperandFormat("fp8")
    for engine in ENGINES:
        with pytest.raises(ConfigError, match=needle) as err:
            simulate(Trace("bad", (_op("w", fmt, act),)), ARCH, engine=engine)
        assert err.value.field == "pe_array.storage_formats"
    with pytest.raises(ConfigError, match="lists no route"):  # the FGMP arch accepts mixed maps only
        simulate(Trace("zq", (_op("w", OperandFormat("fp4_pow2", 64), OperandFormat("fp8")),)), load_arch("fgmp"))


def test_an_int_trace_on_the_cli_exits_2_with_one_error_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate",))
    Trace("int", (_op("w", OperandFormat("int4", 64), OperandFormat("int8")),)).save(tmp_path / "t")
    assert cli.main(["simulate", "--trace", str(tmp_path / "t"), "--arch", "zqfp_w4a8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "(pe_array.storage_formats)" in err[0]


def test_a_uniform_block_wider_than_the_datapath_block_is_refused():
    wide = OperandFormat("fp8", 64)  # 128 value bits + 8 scale bits > the 128-bit FP8 block the buffers hold
    with pytest.raises(ConfigError, match="136 bits") as err:
        simulate(Trace("wide", (_op("w", wide, OperandFormat("fp8")),)), ARCH)
    assert (err.value.field, err.value.fix) == ("ops.w.weight_format.group_size", "use a larger group size")
    assert err.value.what == ("op 'w': weight blocks in fp8 g64 take 136 bits, more than the 128-bit blocks arch "
                              "zqfp_w4a8's buffers are sized for")


@pytest.mark.parametrize("formats, field, needle", [
    ({"int4": "native"}, "pe_array.storage_formats.int4", "no integer datapath"),
    ({"fp4_fp32": "cast_fp8"}, "pe_array.storage_formats.fp4_fp32", "exact for fp4_pow2"),
    ({"fp4_pow2": "native"}, "pe_array.storage_formats.fp4_pow2", "datapath fp8"),
    ({"mixed": "native"}, "pe_array.storage_formats.mixed", "take route 'map'"),
    ({"fp5": "native"}, "pe_array.storage_formats.fp5", "did you mean 'fp8'"),
])
def test_bad_storage_formats_in_the_arch_name_the_entry(formats, field, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        load_arch("zqfp_w4a8", {"pe_array.storage_formats": formats})
    assert err.value.field == field


def test_the_cast_unit_is_priced_and_sized_only_where_a_format_goes_through_it():
    assert "cast_block" in required_entries(("fp8",), False, casts=True)
    assert "cast_block" not in required_entries(("fp8",), False)
    pe = ARCH.pe_array
    assert area_breakdown(ARCH).cast_units == pytest.approx(pe.lanes * ARCH.area.as_dict()["cast_unit"])
    assert area_breakdown(load_arch("fp8_baseline")).cast_units == 0.0
    # the same array and memories as fp8_baseline: the cast units are the only area difference
    assert area_breakdown(ARCH).total_mm2 - area_breakdown(load_arch("fp8_baseline")).total_mm2 == \
        pytest.approx(area_breakdown(ARCH).cast_units)
