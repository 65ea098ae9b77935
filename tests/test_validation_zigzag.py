"""fgmpsim's energy per component against ZigZag's, stored in tests/data/zigzag_energy.csv (made by the command in
its header). fgmpsim's side is recomputed here, so a model change that breaks the agreement fails these tests;
a live ZigZag re-run happens only where ZigZag is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from fgmpsim.errors import ConfigError
from fgmpsim.sim.mapping import Mapping
from fgmpsim.validation.zigzag_compare import (MATERIAL, REFERENCE_CSV, TOLERANCE_PINNED, compare_zigzag, explain,
                                               load_zigzag_reference, peer_arch, run_zigzag_reference, x_resident)
from fgmpsim.validation.zigzag_peer import fgmpsim_ordering, zigzag_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def comparison():
    return compare_zigzag(load_zigzag_reference(ROOT / REFERENCE_CSV), peer_arch())


def _cells(comparison, run, component):
    return comparison[(comparison["run"] == run) & (comparison["component"] == component)]


def test_stored_reference_covers_at_least_six_gemms_pinned_and_free(comparison):
    gemms = comparison[["m", "k", "n", "run"]].drop_duplicates()
    assert len(gemms[gemms["run"] == "pinned"]) >= 6 and len(gemms[gemms["run"] == "free"]) >= 6


def test_stored_pinned_loop_nest_is_fgmpsims_current_mapping(comparison):
    # if the mapper changes, the pinned ZigZag numbers describe another schedule: regenerate them
    assert comparison["ordering_matches"].all()


@pytest.mark.parametrize("component", ["dram", "weight_buffer", "mac"])
def test_same_loop_nest_same_dram_weight_buffer_and_mac_energy(comparison, component):
    ratios = _cells(comparison, "pinned", component)["ratio"]
    assert ratios.sub(1).abs().max() < 1e-3, ratios.tolist()


def test_same_loop_nest_same_total_unless_all_of_x_fits_the_input_buffer(comparison):
    arch = peer_arch()
    for _, row in _cells(comparison, "pinned", "total").iterrows():
        if x_resident(arch, row["m"], row["k"]):
            continue
        assert abs(row["ratio"] - 1) <= TOLERANCE_PINNED, row.to_dict()


def test_resident_x_input_buffer_ratio_is_one_write_against_one_per_n_tile(comparison):
    # ZigZag writes X once and reads it once per n-tile; fgmpsim writes and reads it once per n-tile:
    # (n_tiles + 1) / (2 n_tiles) with n_tiles = N / 16 lanes
    arch = peer_arch()
    resident = [r for _, r in _cells(comparison, "pinned", "input_buffer").iterrows()
                if x_resident(arch, r["m"], r["k"])]
    assert resident
    for row in resident:
        n_tiles = row["n"] / 16
        assert row["ratio"] == pytest.approx((n_tiles + 1) / (2 * n_tiles), rel=1e-3)


def test_every_difference_above_ten_percent_has_a_recorded_reason(comparison):
    arch = peer_arch()
    material = comparison[(comparison["ratio"] - 1).abs() > MATERIAL]
    assert len(material)  # the free mappings do differ
    unexplained = [r.to_dict() for _, r in material.iterrows() if explain(r, arch) is None]
    assert not unexplained


def test_free_mapping_reuses_weights_at_the_mac(comparison):
    # LOMA's minimum-energy nests put rows innermost where M > 1: far fewer weight-buffer reads than fgmpsim's
    cells = _cells(comparison, "free", "weight_buffer")
    assert (cells[cells["m"] > 1]["ratio"] < 0.2).all()


def test_zigzag_costs_are_fgmpsims_per_bit_table_times_port_width():
    arch = peer_arch()
    doc = zigzag_inputs(arch, 64, 256, 256)
    weight = doc["accelerator"]["memories"]["weight_buffer"]
    assert weight["r_cost"] == pytest.approx(0.0688 * 2304)   # base.yaml: pJ/bit x read bits per cycle
    assert weight["ports"][0]["bandwidth_min"] == 8          # one FP8 element: ZigZag's access granularity
    assert doc["accelerator"]["operational_array"]["unit_energy"] == pytest.approx(0.0851 + 0.323 / 16)
    assert doc["accelerator"]["operational_array"]["sizes"] == [16, 16]


def test_fgmpsim_loop_nest_as_zigzag_ordering_hand_case():
    mapping = Mapping("weight_stationary", tile_m=8, tile_n=16, tile_k_blocks=64, chunk_m=16)
    # K = 4096: 256 blocks = 4 k-tiles of 64; M = 128: 8 chunks of 16 rows = 2 m-tiles of 8; N = 11008: 688 tiles
    assert fgmpsim_ordering(mapping, 128, 4096, 11008, 16) == [["C", 64], ["B", 8], ["B", 2], ["C", 4],
                                                             ["K", 688], ["B", 8]]
    with pytest.raises(ConfigError):
        fgmpsim_ordering(Mapping("weight_stationary", 8, 16, 64, 248), 2048, 4096, 4096, 16)


def _zigzag_python() -> str | None:
    given = os.environ.get("FGMPSIM_ZIGZAG_PYTHON")
    if given:
        return given
    if importlib.util.find_spec("zigzag") is not None:
        return shutil.which("python") or None
    return None


@pytest.mark.skipif(_zigzag_python() is None, reason="ZigZag not installed (set FGMPSIM_ZIGZAG_PYTHON to a venv's "
                                                     "python with zigzag-dse); the stored numbers are tested above")
def test_live_zigzag_reproduces_the_stored_numbers():
    stored = load_zigzag_reference(ROOT / REFERENCE_CSV)
    live = run_zigzag_reference(_zigzag_python(), gemms=((256, 512, 512),))
    for run in ("pinned", "free"):
        a = stored[(stored["m"] == 256) & (stored["k"] == 512) & (stored["run"] == run)].iloc[0]
        b = live[live["run"] == run].iloc[0]
        for column in ("cycles", "dram_pj", "glb_pj", "weight_buffer_pj", "input_buffer_pj", "accum_buffer_pj",
                       "mac_pj"):
            assert float(b[column]) == pytest.approx(float(a[column]), rel=1e-9), (run, column)
        if run == "pinned":
            assert json.loads(a["temporal_ordering"]) == json.loads(b["temporal_ordering"])
