"""Hand-computed cases for the microarchitecture options: storage layout per level (traffic, footprint, alignment
blocks, tile fit), the mixed lane's MAC overhead and static energy = power x cycles / clock.

Hand arch and GEMM of tests/test_sim_hand.py: 4-element blocks, FP4 block 4*4 + 8-bit scale = 24 bits, FP8 block
4*8 = 32 bits (the slot of a slotted level), 1 metadata bit per block. W = [[FP8, FP4], [FP4, FP4]],
A = [[FP8, FP8], [FP4, FP4]]; one WS tile of 2 rows x 2 channels x 2 blocks on 1 PE x 2 lanes.
"""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.energy import weight_footprint_bits
from fgmpsim.errors import ConfigError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace, gemm_trace
from tests.test_sim_hand import W, gemm, hand_arch, row

WS = Mapping("weight_stationary", 2, 2, 2)


def _layout(dram="packed", glb="packed", pe="packed") -> list[str]:
    return [f"storage.layout.dram={dram}", f"storage.layout.glb={glb}", f"storage.layout.pe_buffers={pe}"]


def _arch(**layout: str):
    return hand_arch(**dict(o.split("=") for o in _layout(**layout)))


def test_packed_bytes_by_hand():
    r = row(gemm(), _arch(), WS)
    # DRAM reads: W = 32 + 3 * 24 = 104, X = 2 * 32 + 2 * 24 = 112; GLB writes add the 4 BF16 outputs (64 bits).
    assert (r.dram_read_bits, r.glb_write_bits) == (216, 216 + 64)
    # Weight buffer: written once (104), read by each lane once per row (2 x 104); input buffer 112 each way.
    assert (r.weight_buffer_write_bits, r.weight_buffer_read_bits, r.input_buffer_read_bits) == (104, 208, 112)
    # Footprint: 104 data + 4 flags + one 32-bit tensor scale.
    assert r.weight_bits == 104 + 4 + 32


def test_slotted_bytes_by_hand():
    # Every block takes a 32-bit slot: W = 4 x 32 = 128, X = 128, at the slotted levels only; flags unchanged.
    r = row(gemm(), _arch(pe="slotted"), WS)
    assert (r.dram_read_bits, r.glb_read_bits) == (216, 216 + 64)
    assert (r.weight_buffer_write_bits, r.weight_buffer_read_bits, r.input_buffer_read_bits) == (128, 256, 128)
    assert r.weight_bits == 104 + 4 + 32  # DRAM is still packed
    r = row(gemm(), _arch(dram="slotted", glb="slotted", pe="slotted"), WS)
    assert (r.dram_read_bits, r.dram_read_metadata_bits, r.glb_write_bits) == (256, 8, 256 + 64)
    assert r.weight_bits == 128 + 4 + 32
    storage = load_arch("fgmp", ["storage.layout.dram=slotted"]).storage
    # fgmp blocks: FP8 16 x 8 = 128 bits = the slot, NVFP4 16 x 4 + 8 = 72 bits -> 128 when slotted.
    assert weight_footprint_bits(np.array([[True, False, False]]), storage, 16) == 3 * 128 + 3 + 32


def test_slotted_transfers_take_slot_bits_of_bandwidth():
    # DRAM at 8 bits/cycle: packed W + flags = 108 bits -> 14 cycles, X 116 -> 15; slotted 132 -> 17 each.
    slow = {"memory.dram.read_bits_per_cycle": 8}
    packed = row(gemm(), hand_arch(**slow), WS)
    slotted = row(gemm(), hand_arch(**slow, **{"storage.layout.dram": "slotted"}), WS)
    assert slotted.cycles - packed.cycles == (17 - 14) + (17 - 15)


@pytest.mark.parametrize("layout, blocks", [
    # packed everywhere: the lanes' reads align every block: 2 rows x 4 weight blocks + 4 input blocks = 12
    ({}, 12),
    # slotted PE buffers: the GLB -> PE fill aligns each block once: 4 weight + 4 X blocks
    ({"pe": "slotted"}, 8),
    # slotted DRAM, packed GLB and PE buffers: the 8 DRAM -> GLB fills plus the 12 lane reads
    ({"dram": "slotted"}, 20),
    ({"dram": "slotted", "glb": "slotted", "pe": "slotted"}, 0),
])
def test_alignment_blocks_by_hand(layout, blocks):
    arch = _arch(**layout)
    r = row(gemm(), arch, WS)
    assert r.align_blocks == blocks
    assert r.energy_alignment_pj == pytest.approx(blocks * arch.energy.pj("align_block"))


def test_quantized_outputs_are_aligned_into_a_packed_glb():
    # The op's 2 x 2 outputs feed a consumer: 2 rows x ceil(2 / 4) = 2 output blocks pass the AQU into the packed GLB.
    trace = gemm(consumer_act=np.zeros((2, 1), bool))
    assert row(trace, _arch(), WS).align_blocks == 12 + 2


def test_one_precision_datapaths_ignore_the_layout():
    trace = gemm_trace(64, 256, 64, fp4_fraction=0.7, seed=1)
    for name in ("fp8_baseline", "nvfp4"):
        frames = [simulate(trace, load_arch(name, lay)).to_frame()
                  for lay in (_layout(), _layout("slotted", "slotted", "slotted"))]
        assert frames[0].equals(frames[1])
        assert (frames[0]["align_blocks"] == 0).all()


def test_tile_fit_follows_the_glb_layout():
    # OS, 2 PEs x 2 lanes, M=4 (2 m-tiles of 2 rows), N=2, 8 blocks; W holds 2 FP8 + 14 NVFP4 blocks.
    # Whole-W residency in the GLB: packed = 2 x 32 + 14 x 24 + 16 flags = 416 bits; worst case (slotted)
    # 16 x (32 + 1) = 528. Plus an X tile 2 x 1 x 33 = 66 and an output tile of 4 BF16 = 64:
    # packed 546 bits, slotted 658; the GLB has 75 bytes = 600 bits (not double buffered).
    w = np.zeros((2, 8), bool)
    w[0, :2] = True
    trace = Trace("fit", (GemmOp("g", 0, "linear", 4, 32, 2, 1, w, np.zeros((4, 8), bool)),), block_size=4)
    fixed = Mapping("output_stationary", 2, 2, 1)
    results = {}
    for glb in ("packed", "slotted"):
        arch = hand_arch("output_stationary", pes=2, db=(False, True, True, True),
                         **{"memory.glb.size_bytes": 75, "storage.layout.glb": glb})
        results[glb] = row(trace, arch, fixed)
    assert (bool(results["packed"].w_resident), bool(results["slotted"].w_resident)) == (True, False)
    # Resident W is read from DRAM once instead of once per m-tile: 2 x 32 + 14 x 24 = 400 bits saved.
    assert results["slotted"].dram_read_bits - results["packed"].dram_read_bits == 400
    # A weight made at run time (static_weight false: a K or V of attention, quantized by the AQU) is not known when
    # the op is compiled, so even a packed GLB reserves it at the worst case: 658 bits > 600, it streams.
    dynamic = Trace("fit", (GemmOp("g", 0, "attn_qk", 4, 32, 2, 1, w, np.zeros((4, 8), bool), static_weight=False),),
                    block_size=4)
    packed = hand_arch("output_stationary", pes=2, db=(False, True, True, True),
                       **{"memory.glb.size_bytes": 75, "storage.layout.glb": "packed"})
    assert not bool(row(dynamic, packed, fixed).w_resident)


def test_mixed_lane_overhead_is_charged_per_mac_on_fgmp_only():
    r = row(gemm(), hand_arch(), WS)
    assert r.macs_fgmp_extra == r.macs == 32
    assert r.energy_fgmp_mode_logic_pj == pytest.approx(32 * hand_arch().energy.pj("mac_fgmp_extra"))


def test_the_fp8_baseline_is_never_cheaper_on_fgmp_for_an_all_fp8_trace():
    # Same array and memories; on an all-FP8 trace fgmp moves the same data plus flags, pays the mixed-lane decode,
    # the AQU, the alignment of packed blocks, and leaks and clocks more area.
    trace = gemm_trace(128, 512, 256, fp4_fraction=0.0, seed=3)
    for layout in (_layout(), _layout("slotted", "slotted", "slotted")):
        fgmp = simulate(trace, load_arch("fgmp", layout)).to_frame()
        fp8 = simulate(trace, load_arch("fp8_baseline")).to_frame()
        assert (fgmp["energy_pj"] > fp8["energy_pj"]).all()
        for component in ("dram", "glb", "pe_buffers", "mac_fp8xfp8", "leakage", "clock"):
            assert (fgmp[f"energy_{component}_pj"] >= fp8[f"energy_{component}_pj"]).all(), component


def test_static_energy_is_power_times_cycles_over_clock():
    arch = load_arch("fgmp")
    st, area = arch.static, arch.area.as_dict()
    # By hand from the YAML: SRAM = GLB 2048 KiB + 16 PEs x (32 + 16 + 6) KiB + the 8 KiB sensitivity table;
    # logic = 4096 MACs x (FP8 MAC + FGMP extra) + 256 lanes x (block scale + accumulator) + 4 AQU blocks/cycle
    # + 276 alignment networks (packed PE buffers: 256 lanes + 16 PEs; packed GLB: the AQU's 4 blocks/cycle).
    sram_mm2 = (2048 * area["glb_per_kib"] + 16 * (32 * area["weight_buffer_per_kib"]
                + 16 * area["input_buffer_per_kib"] + 6 * area["accum_buffer_per_kib"])
                + 8 * area["aqu_sensitivity_per_kib"])
    logic_mm2 = (4096 * (area["mac_fp8"] + area["mac_fgmp_extra"]) + 256 * (area["block_scale"] + area["accumulator"])
                 + 4 * area["aqu_block_per_cycle"] + 276 * area["align_network"])
    leakage_mw = sram_mm2 * st.sram_leakage_mw_per_mm2 + logic_mm2 * st.logic_leakage_mw_per_mm2
    clock_mw = logic_mm2 * st.logic_clock_pj_per_cycle_per_mm2 * arch.clock_hz * 1e-9
    r = simulate(gemm_trace(64, 256, 64, fp4_fraction=0.7, seed=1), arch).to_frame().iloc[0]
    seconds = r.cycles / arch.clock_hz
    assert r.energy_leakage_pj == pytest.approx(leakage_mw * 1e-3 * seconds * 1e12, rel=1e-12)
    assert r.energy_clock_pj == pytest.approx(clock_mw * 1e-3 * seconds * 1e12, rel=1e-12)
    # Doubling the clock halves leakage energy per cycle and keeps clock energy per cycle.
    fast = load_arch("fgmp", ["clock_hz=2e9"]).energy
    assert fast.leakage_pj_per_cycle == pytest.approx(arch.energy.leakage_pj_per_cycle / 2)
    assert fast.clock_pj_per_cycle == pytest.approx(arch.energy.clock_pj_per_cycle)
    off = simulate(gemm_trace(64, 256, 64, fp4_fraction=0.7, seed=1), load_arch("fgmp", ["static.enabled=false"]))
    assert off.to_frame().iloc[0].energy_leakage_pj == 0.0


def test_slower_designs_pay_for_their_time():
    trace = gemm_trace(64, 256, 64, fp4_fraction=0.7, seed=1)
    fast, slow = (simulate(trace, load_arch("fgmp", [f"memory.dram.read_bits_per_cycle={bits}"])).to_frame().iloc[0]
                  for bits in (2048, 64))
    assert slow.cycles > fast.cycles
    assert slow.energy_leakage_pj / fast.energy_leakage_pj == pytest.approx(slow.cycles / fast.cycles)


@pytest.mark.parametrize("override, field", [
    (["storage.layout.glb=compressed"], "storage.layout.glb"),
    (["static.logic_leakage_mw_per_mm2.value=-1"], "static.logic_leakage_mw_per_mm2.value"),
])
def test_bad_options_name_the_field(override, field):
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", override)
    assert err.value.field == field


def test_static_energy_needs_its_densities_and_the_area_table():
    from fgmpsim.arch import arch_from_dict
    from fgmpsim.arch.loader import arch_to_dict

    data = arch_to_dict(load_arch("fgmp"))
    del data["static"]["sram_leakage_mw_per_mm2"]
    with pytest.raises(ConfigError) as err:
        arch_from_dict(data)
    assert err.value.field == "static.sram_leakage_mw_per_mm2"
    data = arch_to_dict(load_arch("fgmp"))
    del data["area"]
    with pytest.raises(ConfigError) as err:
        arch_from_dict(data)
    assert err.value.field == "static"


def test_footprint_ignores_the_layout_on_a_one_precision_datapath():
    storage = load_arch("nvfp4", ["storage.layout.dram=slotted"]).storage
    assert weight_footprint_bits(W & False, storage, 4, ("fp4",)) == 4 * (4 * 4 + 8) + 32


@pytest.mark.parametrize("layout", [_layout(pe="slotted"), _layout("slotted", "packed", "slotted")])
def test_event_engine_equals_tile_engine_with_each_layout(layout):
    trace = gemm_trace(48, 128, 96, fp4_fraction=0.6, seed=4)
    arch = load_arch("fgmp", [*layout, "memory.dram.read_bits_per_cycle=256"])
    tile, event = (simulate(trace, arch, engine=e).to_frame().drop(columns="simpy_events") for e in ("tile", "event"))
    assert tile.equals(event)
