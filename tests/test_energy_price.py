"""fgmpsim.energy pricing: action names, hand-summed breakdowns, frames, and the shipped table's consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fgmpsim.arch import EnergyEntry, EnergyTable, load_arch
from fgmpsim.energy import ACTIONS, COMPONENTS, ENTRIES, EnergyBreakdown, price, price_frame, required_entries
from fgmpsim.errors import ConfigError, FgmpsimError

LEVELS = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer")
COLLECTORS = ("weight_collector", "psum_collector")


def test_actions_are_exactly_the_names_the_simulator_counts() -> None:
    expected = {f"{lvl}_{d}{m}_bits" for lvl in (*LEVELS, *COLLECTORS) for d in ("read", "write")
                for m in ("", "_metadata")}
    expected |= {"macs_fp4xfp4", "macs_fp4xfp8", "macs_fp8xfp4", "macs_fp8xfp8", "macs_int8xint8", "block_pairs",
                 "int_group_scales", "aqu_blocks", "aqu_sensitivity_read_bits", "macs_fgmp_extra", "align_blocks",
                 "cast_blocks", "leakage_cycles", "clock_cycles"}
    assert set(ACTIONS) == expected and len(ACTIONS) == len(expected) == 42


def test_entries_are_exactly_the_energy_table_names() -> None:
    collectors = {f"{c}_{d}_bit" for c in COLLECTORS for d in ("read", "write")}
    expected = {f"{lvl}_{d}_bit" for lvl in LEVELS for d in ("read", "write")}
    expected |= {"mac_fp4xfp4", "mac_fp4xfp8", "mac_fp8xfp4", "mac_fp8xfp8", "scale_accumulate", "aqu_block",
                 "aqu_sensitivity_read_bit", "mac_fgmp_extra", "align_block"}
    integer = {"mac_int8xint8", "int_group_scale"}
    assert set(ENTRIES) == expected | collectors | {"cast_block"} | integer and len(ENTRIES) == 26
    assert set(required_entries(("int8",), False)) == expected - {
        "mac_fp4xfp4", "mac_fp4xfp8", "mac_fp8xfp4", "mac_fp8xfp8", "mac_fgmp_extra", "align_block", "aqu_block",
        "aqu_sensitivity_read_bit"} | integer
    assert set(required_entries(("fp4", "fp8"), True, collectors=True)) == expected | collectors
    assert set(required_entries(("fp8",), False, casts=True)) - set(required_entries(("fp8",), False)) == \
        {"cast_block"}
    assert set(required_entries(("fp4", "fp8"), True)) == expected
    mixed_only = {"mac_fgmp_extra", "align_block"}
    assert set(required_entries(("fp8",), False)) == expected - mixed_only - {
        "mac_fp4xfp4", "mac_fp4xfp8", "mac_fp8xfp4", "aqu_block", "aqu_sensitivity_read_bit"}
    assert set(required_entries(("fp4",), False)) == expected - mixed_only - {
        "mac_fp8xfp8", "mac_fp4xfp8", "mac_fp8xfp4", "aqu_block", "aqu_sensitivity_read_bit"}


def _table(**pj: float) -> EnergyTable:
    return EnergyTable(technology_node_nm=5, entries=tuple((k, EnergyEntry(v, "test")) for k, v in pj.items()))


SMALL_TABLE = _table(dram_read_bit=4.0, dram_write_bit=5.0, glb_read_bit=0.5, glb_write_bit=0.25,
                     weight_buffer_read_bit=0.125, weight_buffer_write_bit=0.125, input_buffer_read_bit=0.0625,
                     input_buffer_write_bit=0.0625, accum_buffer_read_bit=0.03125, accum_buffer_write_bit=0.03125,
                     mac_fp4xfp4=0.01, mac_fp4xfp8=0.02, mac_fp8xfp4=0.03, mac_fp8xfp8=0.04, scale_accumulate=0.3,
                     aqu_block=10.0, aqu_sensitivity_read_bit=0.05)

SMALL_COUNTS = {"dram_read_bits": 1000, "dram_read_metadata_bits": 10, "dram_write_bits": 200,
                "glb_read_bits": 400, "glb_write_metadata_bits": 8, "weight_buffer_read_bits": 800,
                "input_buffer_write_bits": 160, "accum_buffer_read_bits": 64, "accum_buffer_write_metadata_bits": 4,
                "macs_fp4xfp4": 700, "macs_fp4xfp8": 100, "macs_fp8xfp4": 50, "macs_fp8xfp8": 10,
                "block_pairs": 54, "aqu_blocks": 3, "aqu_sensitivity_read_bits": 24}


def test_price_equals_a_hand_sum() -> None:
    e = price(SMALL_COUNTS, SMALL_TABLE)
    assert e.dram == pytest.approx(1000 * 4.0 + 200 * 5.0)                  # 5000
    assert e.glb == pytest.approx(400 * 0.5)                                # 200
    assert e.pe_buffers == pytest.approx(800 * 0.125 + 160 * 0.0625 + 64 * 0.03125)   # 100 + 10 + 2
    assert e.mac_fp4xfp4 == pytest.approx(7.0)
    assert e.mac_fp4xfp8 == pytest.approx(2.0)
    assert e.mac_fp8xfp4 == pytest.approx(1.5)
    assert e.mac_fp8xfp8 == pytest.approx(0.4)
    assert e.scale_accumulate == pytest.approx(16.2)
    assert e.aqu == pytest.approx(3 * 10.0 + 24 * 0.05)                     # 31.2
    # metadata bits at each level's per-bit price: dram read, glb write, accum write
    assert e.metadata == pytest.approx(10 * 4.0 + 8 * 0.25 + 4 * 0.03125)   # 42.125
    assert e.total_pj == pytest.approx(5000 + 200 + 112 + 7 + 2 + 1.5 + 0.4 + 16.2 + 31.2 + 42.125)


def test_as_dict_names_every_component_and_the_total() -> None:
    e = price(SMALL_COUNTS, SMALL_TABLE)
    d = e.as_dict()
    assert list(d) == [f"energy_{c}_pj" for c in COMPONENTS] + ["energy_total_pj"]
    assert d["energy_total_pj"] == pytest.approx(sum(v for k, v in d.items() if k != "energy_total_pj"))
    assert isinstance(e, EnergyBreakdown)


def test_absent_counts_are_zero_and_empty_counts_cost_nothing() -> None:
    assert price({}, SMALL_TABLE).total_pj == 0.0
    assert price({"macs_fp8xfp8": 1}, SMALL_TABLE).total_pj == pytest.approx(0.04)


def test_a_counted_action_without_an_entry_is_a_config_error_but_zero_counts_are_fine() -> None:
    table = _table(mac_fp8xfp8=0.04)
    assert price({"macs_fp8xfp8": 10, "macs_fp4xfp4": 0}, table).total_pj == pytest.approx(0.4)
    with pytest.raises(ConfigError) as err:
        price({"macs_fp4xfp4": 1}, table)
    assert err.value.field == "energy.actions.mac_fp4xfp4"


@pytest.mark.parametrize("counts, words", [
    ({"dram_reads_bits": 1}, "dram_read_bits"),
    ({"macs_fp8xfp8": -1}, ">= 0"),
    ({"block_pairs": float("nan")}, "finite"),
])
def test_bad_counts_are_typed_errors(counts: dict, words: str) -> None:
    with pytest.raises(FgmpsimError, match=words):
        price(counts, SMALL_TABLE)


def test_price_frame_adds_the_same_columns_as_price_row_by_row() -> None:
    rows = [SMALL_COUNTS, {"macs_fp8xfp8": 100, "dram_read_bits": 8}, {}]
    frame = pd.DataFrame(rows).fillna(0).drop(columns=["aqu_blocks"])
    frame["op"] = ["a", "b", "c"]
    before = frame.copy()
    priced = price_frame(frame, SMALL_TABLE)
    pd.testing.assert_frame_equal(frame, before)          # input untouched
    for i, row in enumerate(rows):
        expected = price({k: v for k, v in row.items() if k != "aqu_blocks"}, SMALL_TABLE).as_dict()
        for column, value in expected.items():
            assert priced[column].iloc[i] == pytest.approx(value)
    assert priced["energy_dram_pj"].iloc[1] == pytest.approx(32.0)
    assert priced["energy_aqu_pj"].iloc[0] == pytest.approx(24 * 0.05)   # aqu_blocks column absent = 0
    assert list(priced["op"]) == ["a", "b", "c"]


def test_price_frame_rejects_negative_counts() -> None:
    with pytest.raises(FgmpsimError) as err:
        price_frame(pd.DataFrame({"glb_read_bits": [1, -2]}), SMALL_TABLE)
    assert err.value.field == "glb_read_bits"


def test_shipped_table_is_physically_ordered() -> None:
    pj = load_arch("fgmp").energy.as_dict()
    # MAC modes: FP4xFP4 cheapest, mixed in between (both orders the same circuit), FP8xFP8 dearest
    assert pj["mac_fp4xfp4"] < pj["mac_fp4xfp8"] == pj["mac_fp8xfp4"] < pj["mac_fp8xfp8"]
    # per-bit memory cost grows with distance and size: accum (6 KB) <= input (16 KB) <= weight (32 KB) < GLB < DRAM
    per_bit = [pj[f"{lvl}_read_bit"] for lvl in ("accum_buffer", "input_buffer", "weight_buffer", "glb", "dram")]
    assert per_bit == sorted(per_bit) and len(set(per_bit)) == 5
    # moving one FP8 block from DRAM costs more than computing with it
    assert 128 * pj["dram_read_bit"] > 16 * pj["mac_fp8xfp8"]


def test_fgmp_block_pair_energy_ratio_matches_the_documented_derivation() -> None:
    """docs/energy_model.md: FP4xFP4 ~ 0.2x and mixed ~ 0.94x the FP8xFP8 MAC (0.076, 0.362, 0.387 pJ @ 45 nm)."""
    pj = load_arch("fgmp").energy.as_dict()
    assert pj["mac_fp4xfp4"] / pj["mac_fp8xfp8"] == pytest.approx(0.076 / 0.387, rel=0.01)
    assert pj["mac_fp4xfp8"] / pj["mac_fp8xfp8"] == pytest.approx(0.362 / 0.387, rel=0.01)


def test_one_fp8_gemm_priced_with_the_shipped_table_by_hand() -> None:
    """A 16 x 64 x 16 FP8 GEMM's MACs and block pairs on fp8_baseline: 16384 MACs, 1024 block pairs."""
    table = load_arch("fp8_baseline").energy
    e = price({"macs_fp8xfp8": 16 * 64 * 16, "block_pairs": 16 * 4 * 16}, table)
    assert e.mac_fp8xfp8 == pytest.approx(16384 * table.pj("mac_fp8xfp8"))
    assert e.scale_accumulate == pytest.approx(1024 * table.pj("scale_accumulate"))
    assert e.total_pj == pytest.approx(float(np.sum([e.mac_fp8xfp8, e.scale_accumulate])))


def test_pricing_errors_name_what_the_field_and_the_fix() -> None:
    with pytest.raises(ConfigError) as missing:
        price({"macs_fp4xfp4": 1}, _table(mac_fp8xfp8=0.04))
    assert str(missing.value) == ("the energy table has no entry 'mac_fp4xfp4' but macs_fp4xfp4 were counted "
                                  "(energy.actions.mac_fp4xfp4): add the entry (pJ and source) to the arch YAML")
    with pytest.raises(FgmpsimError) as unknown:
        price({"dram_reads_bits": 1}, SMALL_TABLE)
    assert (unknown.value.what, unknown.value.field, unknown.value.fix) == (
        "unknown action 'dram_reads_bits'", "counts", "did you mean 'dram_read_bits'?")
    with pytest.raises(FgmpsimError) as negative:
        price({"macs_fp8xfp8": -1}, SMALL_TABLE)
    assert (negative.value.what, negative.value.field, negative.value.fix) == (
        "action count must be finite and >= 0, got -1", "macs_fp8xfp8", "check the simulator's counts")


def test_price_frame_names_the_first_bad_column_after_zero_and_positive_ones() -> None:
    # columns in ACTIONS order: zeros and positive counts are valid, only the -1 of macs_fp8xfp8 is not
    frame = pd.DataFrame({"dram_read_bits": [0, 0], "glb_read_bits": [2, 3], "macs_fp8xfp8": [1, -1]})
    with pytest.raises(FgmpsimError) as err:
        price_frame(frame, SMALL_TABLE)
    assert (err.value.what, err.value.field, err.value.fix) == (
        "action counts must be finite and >= 0", "macs_fp8xfp8", "check the simulator's counts")


def test_price_frame_reads_a_missing_count_in_a_nullable_column_as_an_error() -> None:
    # beside a plain int column, the nullable one makes a frame whose plain to_numpy() is object-typed
    frame = pd.DataFrame({"glb_read_bits": pd.array([8, None], dtype="Int64"), "macs_fp8xfp8": [1, 2]})
    with pytest.raises(FgmpsimError) as err:
        price_frame(frame, SMALL_TABLE)
    assert err.value.field == "glb_read_bits"


def test_price_frame_prices_in_float64_whatever_the_count_dtype() -> None:
    # 3 is exact in float32, but 3 x 0.1 pJ rounded in float32 is 0.30000001192..., not float64's 0.30000000000000004
    frame = pd.DataFrame({"macs_fp8xfp8": np.array([3.0], dtype=np.float32)})
    priced = price_frame(frame, _table(mac_fp8xfp8=0.1))
    assert priced["energy_mac_fp8xfp8_pj"].dtype == np.float64
    assert priced["energy_mac_fp8xfp8_pj"].iloc[0] == 3 * 0.1
    assert priced["energy_total_pj"].iloc[0] == 3 * 0.1
