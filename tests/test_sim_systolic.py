"""The systolic_ws dataflow: cycles equal to SCALE-Sim v3's stored "Total Cycles", hand counts of the bits it moves,
conservation, memory stalls, and the errors of its arch fields and engines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import gemm_trace
from fgmpsim.validation.scalesim_table import scalesim_table

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
STORED = [(path.name, row) for path in sorted(DATA.glob("scalesim_ws_*.csv"))
          for row in pd.read_csv(path, comment="#").itertuples(index=False)]


def _row(m, k, n, arch="systolic_16x16", overrides=(), **kwargs):
    return simulate(gemm_trace(m, k, n, **kwargs), load_arch(arch, list(overrides))).rows[0]


def test_the_stored_scalesim_runs_cover_the_shapes_the_issue_asks_for():
    frame = pd.DataFrame([row for _, row in STORED])
    square, tall = frame[frame.array_rows == 16], frame[(frame.array_rows == 32) & (frame.array_cols == 8)]
    assert len(square) >= 8 and len(tall) >= 4
    for part in (square, tall):
        assert (part.m == 1).any()
        assert (part.k % part.array_rows != 0).any() and (part.n % part.array_cols != 0).any()
    assert (square.m % 16 != 0).any() and (square.k % 16 != 0).any()  # partial folds and a partial last block
    assert "scalesim 3.0.0" in (DATA / "scalesim_ws_16x16.csv").read_text().splitlines()[1]


@pytest.mark.parametrize("fraction", [0.0, 0.7])
@pytest.mark.parametrize("name, stored", STORED, ids=[f"{name}:{r.m}x{r.k}x{r.n}" for name, r in STORED])
def test_cycles_equal_scalesim_total_cycles_exactly(name, stored, fraction):
    arch = f"systolic_{stored.array_rows}x{stored.array_cols}"
    row = _row(stored.m, stored.k, stored.n, arch, fp4_fraction=fraction)  # NVFP4 blocks promoted to FP8
    assert row["compute_cycles"] == row["cycles"] == row["bound_cycles"] == stored.scalesim_total_cycles
    assert row["stall_dram_cycles"] == row["stall_glb_cycles"] == 0


def test_the_validation_table_is_exact_on_every_stored_row():
    table = scalesim_table(ROOT)
    assert len(table) == len(STORED) and (table["note"] == "").all()
    assert (table["fgmpsim_cycles"] == table["scalesim_total_cycles"]).all()
    assert set(table["fgmpsim_arch"]) == {"systolic_16x16", "systolic_32x8"}


@pytest.mark.parametrize("accum_bytes, spills", [(6144, False), (512, True)])
def test_hand_counts_for_k_200_on_16x16(accum_bytes, spills):
    # M=7, K=200, N=17: 13 row folds x 2 column folds of 2*16 + 16 + 7 - 2 = 53 cycles, minus SCALE-Sim's 1
    row = _row(7, 200, 17, overrides=[f"memory.accum_buffer.size_bytes={accum_bytes}"], fp4_fraction=0.5)
    assert row["cycles"] == 26 * 53 - 1 == 1377 and row["tiles"] == 26
    assert row["macs"] == row["useful_macs"] == row["macs_fp8xfp8"] == 7 * 200 * 17
    w, x, out = 17 * 200 * 8, 7 * 200 * 8, 7 * 17 * 16       # FP8 values (no FP8 block scale), BF16 output
    # one fold's 7 x 16 FP32 sums (448 B) fit 3072 usable accumulator bytes, not 256: then all but the last row
    # fold spill their sums to the GLB and read them back
    spill = 7 * 17 * 12 * 32 if spills else 0
    assert row["x_resident"] and row["dram_read_bits"] == w + x and row["dram_write_bits"] == out
    assert row["glb_write_bits"] == w + x + spill + out
    assert row["glb_read_bits"] == w + 2 * x + spill + out   # X streamed once per column fold
    assert row["weight_buffer_write_bits"] == w and row["weight_buffer_read_bits"] == 0
    assert row["input_buffer_write_bits"] == row["input_buffer_read_bits"] == 2 * x
    assert row["accum_buffer_write_bits"] == row["accum_buffer_read_bits"] == 7 * 17 * 13 * 32
    assert row["block_pairs"] == 7 * 17 * 13
    assert row["weight_bits"] == 17 * 13 * 128 + 32          # stored footprint: whole FP8 blocks + tensor scale
    assert row["dram_read_metadata_bits"] == 0 and row["aqu_blocks"] == 0


@pytest.mark.parametrize("m, k, n, repeat", [(1, 16, 16, 1), (33, 70, 9, 3), (64, 256, 64, 2)])
def test_conservation_over_folds_and_repeats(m, k, n, repeat):
    one = _row(m, k, n, "systolic_32x8", fp4_fraction=0.0)
    row = _row(m, k, n, "systolic_32x8", fp4_fraction=0.0, repeat=repeat)
    folds = -(-k // 32) * -(-n // 8)
    assert row["macs"] == row["useful_macs"] == m * n * k * repeat
    assert row["tiles"] == folds * repeat
    assert row["cycles"] == repeat * (folds * (2 * 32 + 8 + m - 2) - 1) == repeat * one["cycles"]
    for key in ("dram_read_bits", "glb_read_bits", "glb_write_bits", "input_buffer_read_bits",
                "accum_buffer_write_bits", "weight_buffer_write_bits", "dram_write_bits"):
        assert row[key] == repeat * one[key], key
    # every weight enters the array once; every input row crosses each column fold once
    assert row["weight_buffer_write_bits"] == repeat * n * k * 8
    assert row["input_buffer_write_bits"] == repeat * m * k * 8 * -(-n // 8)


def test_any_block_size_and_fp4_fraction_give_the_same_fp8_array():
    rows = [_row(37, 100, 45, fp4_fraction=f, block_size=b) for f, b in ((0.0, 16), (1.0, 16), (0.5, 32), (1.0, 4))]
    for key in ("cycles", "macs", "dram_read_bits", "glb_read_bits", "energy_pj"):
        assert len({row[key] for row in rows}) == 1, key


def test_fp4_datapath_moves_values_and_block_scales():
    row = _row(4, 40, 8, overrides=["pe_array.datapath_precisions=[fp4]"])
    blocks = 8 * 3 + 4 * 3                                   # ceil(40 / 16) blocks per row, weight and input rows
    assert row["macs_fp4xfp4"] == row["macs"] == 4 * 40 * 8
    assert row["dram_read_bits"] == (8 + 4) * 40 * 4 + blocks * 8


def test_modeled_memory_stalls_on_a_slow_link():
    ideal = _row(7, 200, 17)
    row = _row(7, 200, 17, overrides=["memory.ideal=false", "memory.dram.read_bits_per_cycle=8",
                                       "memory.dram.write_bits_per_cycle=8"])
    dram = (ideal["dram_read_bits"] + ideal["dram_write_bits"]) // 8   # 38400 + 1904 bits at 8 bits per cycle
    assert row["compute_cycles"] == ideal["cycles"] == 1377
    assert row["cycles"] == row["bound_cycles"] == dram == 5038
    assert row["stall_dram_cycles"] == dram - 1377 and row["stall_glb_cycles"] == 0
    assert row["dram_read_bits"] == ideal["dram_read_bits"]
    wide = _row(7, 200, 17, overrides=["memory.ideal=false"])          # fast links still take cycles
    assert wide["cycles"] == wide["compute_cycles"] == 1377 and wide["busy_loader_cycles"] > 0


def test_tile_and_analytic_agree_and_the_step_engines_are_refused():
    trace, arch = gemm_trace(37, 100, 45), load_arch("systolic_16x16")
    def rows(engine):
        return [{k: v for k, v in row.items() if k != "simpy_events"}
                for row in simulate(trace, arch, engine=engine).rows]

    assert rows("tile") == rows("analytic")
    for engine in ("event", "reference"):
        with pytest.raises(ConfigError) as err:
            simulate(trace, arch, engine=engine)
        assert err.value.field == "engine" and "SCALE-Sim" in str(err.value)


def test_the_fold_mapping_is_fixed():
    trace, arch = gemm_trace(37, 100, 45), load_arch("systolic_16x16")
    result = simulate(trace, arch)
    assert result.mapping("gemm") == Mapping("systolic_ws", 37, 16, 16)
    assert simulate(trace, arch, mapping=result.mapping("gemm")).rows == result.rows
    with pytest.raises(MappingError) as err:
        simulate(trace, arch, mapping=Mapping("systolic_ws", 8, 16, 16))
    assert err.value.field == "mapping"
    with pytest.raises(MappingError) as err:
        simulate(gemm_trace(4096, 64, 64), load_arch("systolic_16x16", ["memory.glb.size_bytes=4096"]))
    assert err.value.field == "memory.glb.size_bytes"


def test_peak_and_utilization_are_the_array_s():
    arch = load_arch("systolic_32x8")
    assert arch.peak_macs_per_cycle == 256 and "32x8 systolic" in arch.describe()
    result = simulate(gemm_trace(64, 256, 64), arch)
    assert result.summary()["utilization"] == pytest.approx(64 * 256 * 64 / (8575 * 256))


@pytest.mark.parametrize("name, overrides, field", [
    ("systolic_16x16", ["pe_array.rows=null"], "pe_array.rows"),
    ("systolic_16x16", ["pe_array.datapath_precisions=[fp4, fp8]", "storage.metadata_bits_per_block=1"],
     "pe_array.datapath_precisions"),
    ("systolic_16x16", ["mapping.tile_m=4"], "mapping.tile_m"),
    ("systolic_16x16", ["memory.ideal=3"], "memory.ideal"),
    ("systolic_16x16", ["memory.glb.keep_outputs=true"], "memory.glb.keep_outputs"),
    ("fgmp", ["pe_array.cols=16"], "pe_array.cols"),
    ("fgmp", ["memory.ideal=true"], "memory.ideal"),
])
def test_bad_systolic_fields_name_the_field(name, overrides, field):
    with pytest.raises(ConfigError) as err:
        load_arch(name, overrides)
    assert err.value.field == field, str(err.value)


# M=7, K=200, N=17 on 16x16 (FP8 values, no block scale or metadata): one weight fold is 16 x 16 x 8 = 2048 bits,
# X is 7 x 200 x 8 = 11200 bits whole or 7 x 16 x 8 = 896 bits per fold, one fold's partial sums 7 x 16 x 32 =
# 3584 bits (448 B). X is resident when fold + X (+ sums if they spill) fit the GLB: 13248 bits = 1656 B, 16832 bits
# = 2104 B with spills; one fold alone needs 2944 bits = 368 B. Single-buffered GLB: all of size_bytes is usable.
W_BITS, X_BITS, OUT_BITS, SPILL_BITS = 17 * 200 * 8, 7 * 200 * 8, 7 * 17 * 16, 7 * 17 * 12 * 32


@pytest.mark.parametrize("glb_bytes, accum_bytes, resident", [
    (1656, 6144, True), (1655, 6144, False), (2104, 512, True), (2103, 512, False)])
def test_x_is_resident_exactly_when_it_fits_the_glb_beside_a_fold(glb_bytes, accum_bytes, resident):
    row = _row(7, 200, 17, overrides=[f"memory.glb.size_bytes={glb_bytes}", "memory.glb.double_buffered=false",
                                      f"memory.accum_buffer.size_bytes={accum_bytes}"], fp4_fraction=0.5)
    loads = 1 if resident else 2                          # X from DRAM once, or once per column fold
    spill = SPILL_BITS if accum_bytes == 512 else 0
    assert row["x_resident"] == resident and row["w_resident"] is False
    assert row["dram_read_bits"] == W_BITS + loads * X_BITS
    assert row["glb_write_bits"] == W_BITS + loads * X_BITS + spill + OUT_BITS


@pytest.mark.parametrize("accum_bytes, spills", [(896, False), (894, True)])
def test_partial_sums_stay_exactly_when_one_fold_of_them_fits_the_accumulators(accum_bytes, spills):
    # double buffered: 896 B leave 448 usable, one fold's sums exactly; 894 B leave 447
    row = _row(7, 200, 17, overrides=[f"memory.accum_buffer.size_bytes={accum_bytes}"], fp4_fraction=0.5)
    assert row["glb_write_bits"] == W_BITS + X_BITS + (SPILL_BITS if spills else 0) + OUT_BITS


def test_fold_errors_name_what_the_field_and_the_fix():
    with pytest.raises(MappingError) as glb:
        _row(7, 200, 17, overrides=["memory.glb.size_bytes=367", "memory.glb.double_buffered=false"])
    assert (glb.value.what, glb.value.field, glb.value.fix) == (
        "op 'gemm': one fold (weights, 7 input rows, their partial sums) needs 368 bytes but the GLB has 367 "
        "usable bytes", "memory.glb.size_bytes", "enlarge memory.glb.size_bytes or split M")
    assert not _row(7, 200, 17, overrides=["memory.glb.size_bytes=368", "memory.glb.double_buffered=false"])[
        "x_resident"]
    wrong = Mapping("systolic_ws", 8, 16, 16)
    with pytest.raises(MappingError) as mapping:
        simulate(gemm_trace(37, 100, 45), load_arch("systolic_16x16"), mapping=wrong)
    assert (mapping.value.field, mapping.value.fix) == ("mapping", "pass mapping=None (the folds are fixed)")
    assert mapping.value.what == (f"op 'gemm': a systolic_ws array folds the GEMM by its 16x16 array "
                                  f"({Mapping('systolic_ws', 37, 16, 16)}), got {wrong}")


def test_metadata_bits_move_with_their_blocks_and_nothing_else_is_counted():
    # 2 metadata bits per 16-element block: W has 17 x 13 blocks (442 bits), X 7 x 13 (182 bits); X is resident and
    # streamed once per column fold (2); the BF16 output carries none
    row = _row(7, 200, 17, overrides=["storage.metadata_bits_per_block=2"], fp4_fraction=0.5)
    w_meta, x_meta = 17 * 13 * 2, 7 * 13 * 2
    assert row["dram_read_metadata_bits"] == row["glb_write_metadata_bits"] == w_meta + x_meta
    assert row["glb_read_metadata_bits"] == w_meta + 2 * x_meta
    assert row["weight_buffer_write_metadata_bits"] == w_meta
    assert row["input_buffer_write_metadata_bits"] == row["input_buffer_read_metadata_bits"] == 2 * x_meta
    for zero in ("dram_write_metadata_bits", "weight_buffer_read_bits", "weight_buffer_read_metadata_bits",
                 "accum_buffer_read_metadata_bits", "accum_buffer_write_metadata_bits", "aqu_blocks",
                 "aqu_sensitivity_read_bits", "macs_fp4xfp4", "macs_fp4xfp8", "macs_fp8xfp4"):
        assert row[zero] == 0, zero


def test_modeled_memory_keeps_each_unit_busy_for_its_bits_over_its_link():
    # 2048-bit DRAM and GLB links: the loader fills W + X = 38400 bits, the distributor reads W + 2 X = 49600 bits
    # to the array, the writer drains the 1904 output bits to the GLB and writes them back to DRAM
    row = _row(7, 200, 17, overrides=["memory.ideal=false"], fp4_fraction=0.5)
    assert row["busy_loader_cycles"] == -(-(W_BITS + X_BITS) // 2048) == 19
    assert row["busy_distributor_cycles"] == -(-(W_BITS + 2 * X_BITS) // 2048) == 25
    assert row["busy_writer_cycles"] == 2 * -(-OUT_BITS // 2048) == 2
    assert row["busy_aqu_cycles"] == 0
    ideal = _row(7, 200, 17, fp4_fraction=0.5)
    assert [ideal[f"busy_{u}_cycles"] for u in ("loader", "distributor", "aqu", "writer")] == [0, 0, 0, 0]


def test_quantized_outputs_carry_their_metadata_through_the_glb_to_dram():
    # chained 96x512x320 -> 96x320x64, 2 metadata bits per 16-element block: the first op's FP8 output (its
    # consumer's input) is 96 rows x 320 / 16 blocks = 3840 metadata bits, written to the GLB, read back and sent
    # to DRAM; W 320 x 32 blocks = 20480, X 96 x 32 blocks = 6144 bits, resident, streamed to 20 column folds
    from test_sim_conservation import chained_trace

    first = simulate(chained_trace(), load_arch("systolic_16x16", ["storage.metadata_bits_per_block=2"])).rows[0]
    w_meta, x_meta, out_meta = 320 * 32 * 2, 96 * 32 * 2, 96 * 20 * 2
    assert first["dram_write_metadata_bits"] == out_meta
    assert first["glb_write_metadata_bits"] == w_meta + x_meta + out_meta
    assert first["glb_read_metadata_bits"] == w_meta + 20 * x_meta + out_meta
