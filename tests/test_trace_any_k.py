"""Any K: a partial last block (zero-padded to the block size) in traces, on disk and in the simulator's counts."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from fgmpsim.arch import load_arch
from fgmpsim.errors import TraceError
from fgmpsim.sim import simulate
from fgmpsim.trace import GemmOp, Trace, gemm_trace, load_trace
from fgmpsim.trace.io import MANIFEST
from fgmpsim.trace.record import TRACE_FORMAT_VERSION, WHOLE_BLOCKS_FORMAT_VERSION


def test_k_200_has_13_blocks_the_last_one_padded():
    op = gemm_trace(7, 200, 17, fp4_fraction=0.5).ops[0]
    assert op.weight_map.shape == (17, 13) and op.act_map.shape == (7, 13)   # 12 whole blocks + 8 real elements
    assert op.macs == 7 * 200 * 17


def test_hand_counts_for_k_200_on_the_fp8_baseline():
    row = simulate(gemm_trace(7, 200, 17, fp4_fraction=0.5), load_arch("fp8_baseline")).rows[0]
    assert row["K"] == 200 and row["tiles"] == 1 and row["x_resident"]
    assert row["macs"] == row["macs_fp8xfp8"] == 7 * 17 * 13 * 16 == 24752        # lane MAC slots, whole blocks
    assert row["useful_macs"] == 7 * 17 * 200 == 23800                          # the padding: 952 slots
    assert row["block_pairs"] == 7 * 17 * 13
    assert row["dram_read_bits"] == (17 + 7) * 13 * 128                          # FP8 blocks of 16 x 8 bits
    assert row["dram_write_bits"] == 7 * 17 * 16                                 # BF16 outputs, no padding
    assert row["compute_cycles"] == 7 * 13                                       # one lane per channel
    assert row["weight_bits"] == 17 * 13 * 128 + 32 and row["weight_elements"] == 17 * 13 * 16


@pytest.mark.parametrize("arch", ["fgmp", "nvfp4", "fgmp_output_stationary"])
def test_padding_is_the_difference_between_macs_and_useful_macs(arch):
    rows = simulate(gemm_trace(24, 100, 40, fp4_fraction=0.6, repeat=2), load_arch(arch)).rows
    row = rows[0]
    assert row["macs"] == 24 * 40 * 7 * 16 * 2 and row["useful_macs"] == 24 * 40 * 100 * 2
    # a partial last block costs what a whole block costs: same counts and cycles as K = 112
    whole = simulate(gemm_trace(24, 112, 40, fp4_fraction=0.6, repeat=2), load_arch(arch)).rows[0]
    for key in ("macs", "cycles", "dram_read_bits", "glb_read_bits", "energy_pj", "weight_bits"):
        assert row[key] == whole[key], key


def test_a_partial_block_trace_round_trips_on_disk(tmp_path):
    trace = gemm_trace(7, 200, 17, fp4_fraction=0.5)
    path = trace.save(tmp_path / "t")
    manifest = yaml.safe_load((path / MANIFEST).read_text())
    assert manifest["format_version"] == TRACE_FORMAT_VERSION == 2
    loaded = load_trace(path)
    op = loaded.ops[0]
    assert (op.k, op.weight_map.shape) == (200, (17, 13))
    assert np.array_equal(op.weight_map_array(), trace.ops[0].weight_map_array())
    for arch in ("fgmp", "systolic_16x16"):
        assert simulate(loaded, load_arch(arch)).rows == simulate(trace, load_arch(arch)).rows
    whole = yaml.safe_load((gemm_trace(7, 208, 17).save(tmp_path / "w") / MANIFEST).read_text())
    assert whole["format_version"] == WHOLE_BLOCKS_FORMAT_VERSION   # old readers still read whole-block traces


def test_a_version_1_manifest_with_a_partial_block_is_refused(tmp_path):
    path = gemm_trace(7, 200, 17).save(tmp_path / "t")
    manifest = path / MANIFEST
    manifest.write_text(manifest.read_text().replace("format_version: 2", "format_version: 1", 1))
    with pytest.raises(TraceError) as err:
        load_trace(path)
    assert err.value.field == "format_version" and "K=200" in str(err.value)


def test_a_map_must_have_the_ceil_block_count():
    op = GemmOp("g", 0, "linear", 4, 200, 8, 1, np.ones((8, 12), bool), np.ones((4, 13), bool))
    with pytest.raises(TraceError) as err:
        Trace("t", (op,)).check()
    assert err.value.field == "weight_map" and "(8, 13)" in str(err.value)


def test_trace_gemm_cli_accepts_k_200(tmp_path):
    import fgmpsim.cli as cli

    assert cli.main(["trace", "gemm", "--m", "7", "--k", "200", "--n", "17", "--out", str(tmp_path / "g")]) == 0
    assert load_trace(tmp_path / "g").ops[0].k == 200


def test_export_records_a_real_layer_s_k_and_pads_its_last_block():
    from types import SimpleNamespace

    from fgmpsim.errors import ModelError
    from fgmpsim.trace.export import _linear_k

    layer = SimpleNamespace(weight=np.zeros((8, 200)))
    assert _linear_k("l", np.ones((8, 13), bool), {"l": layer}) == 200
    with pytest.raises(ModelError):
        _linear_k("l", np.ones((8, 12), bool), {"l": layer})


def test_the_event_engine_equals_the_tile_engine_on_a_partial_block():
    trace = gemm_trace(7, 40, 9, fp4_fraction=0.5)
    arch = load_arch("fgmp", ["pe_array.pes=2", "pe_array.lanes_per_pe=4"])

    def rows(engine):
        return [{k: v for k, v in row.items() if k != "simpy_events"}
                for row in simulate(trace, arch, engine=engine).rows]

    assert rows("event") == rows("tile")
    assert rows("tile")[0]["macs"] == 7 * 9 * 3 * 16 and rows("tile")[0]["useful_macs"] == 7 * 9 * 40
