"""Cycle counts and action counts derived by hand for tiny GEMMs (the arithmetic is in the comments).

Hand arch: 1 PE x 2 lanes (or 2 x 2 for output stationary), 4-element blocks, mode cycles fp4xfp4=1, fp4xfp8=2,
fp8xfp4=3, fp8xfp8=4 (weight x activation), every buffer 1 MiB and every rate 10**6 bits/cycle, so each non-empty
transfer takes exactly 1 cycle unless a test slows a level down. Blocks (fgmp storage): FP4 = 4*4 + 8-bit scale =
24 bits, FP8 = 4*8 = 32 bits, +1 metadata bit each; partial sums 32 bits; outputs with no consumer 16 bits (BF16).
"""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace

FAST = 10 ** 6
LEVELS = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer")

# W[n, kb] and A[m, kb], True = FP8: n0 has one FP8 block (kb0), m0 is all FP8.
W = np.array([[1, 0], [0, 0]], dtype=bool)
A = np.array([[1, 1], [0, 0]], dtype=bool)


def hand_arch(dataflow="weight_stationary", pes=1, db=(True, True, True, True), **overrides):
    """db = double_buffered of (glb, weight_buffer, input_buffer, accum_buffer)."""
    o = {"pe_array.pes": pes, "pe_array.lanes_per_pe": 2, "pe_array.vector_width": 4, "pe_array.dataflow": dataflow,
         "pe_array.cycles_per_block_pair.fp4xfp4": 1, "pe_array.cycles_per_block_pair.fp4xfp8": 2,
         "pe_array.cycles_per_block_pair.fp8xfp4": 3, "pe_array.cycles_per_block_pair.fp8xfp8": 4,
         "aqu.blocks_per_cycle": 1, "aqu.latency_cycles": 2}
    for level in LEVELS:
        o[f"memory.{level}.read_bits_per_cycle"] = FAST
        o[f"memory.{level}.write_bits_per_cycle"] = FAST
        if level != "dram":
            o[f"memory.{level}.size_bytes"] = 2 ** 20
    for level, flag in zip(LEVELS[1:], db):
        o[f"memory.{level}.double_buffered"] = flag
    o.update(overrides)
    return load_arch("fgmp", o)


def gemm(m=2, kb=2, n=2, w=W, a=A, consumer_act=None) -> Trace:
    ops = [GemmOp("g", 0, "linear", m, 4 * kb, n, 1, w, a, consumer="c" if consumer_act is not None else None)]
    if consumer_act is not None:
        ops.append(GemmOp("c", 1, "linear", consumer_act.shape[0], 4 * consumer_act.shape[1], 1, 1,
                          np.zeros((1, consumer_act.shape[1]), bool), consumer_act))
    return Trace("hand", tuple(ops), block_size=4)


def row(trace, arch, mapping, engine="tile"):
    return simulate(trace, arch, engine=engine, mapping=mapping).to_frame().iloc[0]


@pytest.mark.parametrize("db", [(True,) * 4, (False,) * 4])
def test_one_tile_imbalance_and_transfers(db):
    # One tile (2 rows x 2 channels x 2 blocks). Lane n0: m0 (fp8xfp8 4 + fp4xfp8 2) + m1 (fp8xfp4 3 + fp4xfp4 1)
    # = 10; lane n1: m0 (2 + 2) + m1 (1 + 1) = 6. Tile = 10, ideal = ceil(16 / 2) = 8, imbalance 2.
    # Transfers, 1 cycle each: DRAM->GLB weights + X (2), GLB->PE weights + X (2), drain (1), write-back (1).
    # Nothing can overlap a single tile, double buffered or not: 2 + 2 + 10 + 1 + 1 = 16.
    r = row(gemm(), hand_arch(db=db), Mapping("weight_stationary", 2, 2, 2))
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (16, 8, 2)
    assert (r.stall_dram_cycles, r.stall_glb_cycles, r.stall_aqu_cycles) == (2 + 1, 2 + 1, 0)
    # MACs: 1 fp8xfp8 pair, 3 fp4xfp8, 1 fp8xfp4, 3 fp4xfp4, 4 MACs each.
    assert (r.macs_fp8xfp8, r.macs_fp4xfp8, r.macs_fp8xfp4, r.macs_fp4xfp4) == (4, 12, 4, 12)
    # DRAM reads: W = 32 + 3 * 24 = 104 bits, X = 2 * 32 + 2 * 24 = 112 bits, 8 metadata bits; 4 BF16 outputs.
    assert (r.dram_read_bits, r.dram_read_metadata_bits, r.dram_write_bits) == (216, 8, 64)
    # Each lane reads its weight block once per block pair: 2 rows x 104 bits.
    assert r.weight_buffer_read_bits == 208


@pytest.mark.parametrize("db, cycles, dram, glb", [
    # All double buffered. Steps: -2 DRAM fills of tile 0 (2); -1 PE fills of tile 0 (2) beside tile 1's X DRAM fill
    # (1); 0 compute 6 (lane n0: 4 + 2) beside tile 1's X PE fill; 1 compute 4 (n0: 3 + 1) beside drain 0;
    # 2 drain 1 and write-back 0 (1, DRAM wins the tie); 3 write-back 1 (1). 2 + 2 + 6 + 4 + 1 + 1 = 16.
    ((True,) * 4, 16, 2 + 1 + 1, 2),
    # Nothing double buffered: every transfer serializes before its step's compute.
    # 0: fills 2 + 2 + compute 6 = 10; 1: X fills 1 + 1 + drain 0 (1) + compute 4 = 7; 2: drain 1 + write-back 0
    # = 2; 3: write-back 1 = 1. 10 + 7 + 2 + 1 = 20.
    ((False,) * 4, 20, 2 + 1 + 1 + 1, 2 + 2 + 1),
])
def test_two_m_tiles_double_buffering_hides_transfers(db, cycles, dram, glb):
    r = row(gemm(), hand_arch(db=db), Mapping("weight_stationary", 1, 2, 2))
    # Ideal: tile 0 ceil((6 + 4) / 2) = 5, tile 1 ceil((4 + 2) / 2) = 3; imbalance (6 - 5) + (4 - 3) = 2.
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (cycles, 8, 2)
    assert (r.stall_dram_cycles, r.stall_glb_cycles) == (dram, glb)
    assert r.cycles == r.compute_cycles + r.stall_imbalance_cycles + r.stall_dram_cycles + r.stall_glb_cycles


def test_dram_bound_tile_and_its_analytic_bound():
    # M = N = 1, K = 2 blocks; W = [FP8, FP4] = 32 + 24 + 2 metadata = 58 bits, X = 2 FP4 = 48 + 2 = 50 bits,
    # output 1 BF16 = 16 bits. DRAM reads 10 bits/cycle, writes 4 bits/cycle.
    arch = hand_arch(**{"memory.dram.read_bits_per_cycle": 10, "memory.dram.write_bits_per_cycle": 4})
    trace = gemm(m=1, n=1, w=np.array([[1, 0]], bool), a=np.array([[0, 0]], bool))
    r = row(trace, arch, None)
    # Steps: -2 DRAM fills ceil(58/10) + ceil(50/10) = 11; -1 PE fills 2; 0 compute 3 + 1 = 4 (one lane);
    # 1 drain 1; 2 write-back ceil(16/4) = 4. Total 22 = 4 compute + 15 DRAM + 3 GLB.
    assert (r.cycles, r.compute_cycles, r.stall_dram_cycles, r.stall_glb_cycles) == (22, 4, 15, 3)
    # Bound: compute ceil(4 / 2 lanes) = 2; DRAM side ceil(108 / 10 + 16 / 4) = ceil(14.8) = 15.
    assert r.bound_cycles == 15
    bound = row(trace, arch, None, engine="analytic")
    assert (bound.cycles, bound.compute_cycles, bound.stall_dram_cycles) == (15, 2, 13)


@pytest.mark.parametrize("accum_db", [False, True])
def test_slow_aqu_stalls_the_array(accum_db):
    # As the one-tile case, but the output feeds an all-FP4 activation whose K axis is this op's 2 output channels:
    # each of the 2 output rows pads to one 4-element NVFP4 block (24 + 1 bits), 2 blocks.
    # AQU time counts real elements: 2 cycles latency + ceil(4 / (1 block x 4 elements per cycle)) = 3 cycles
    # against a 1-cycle GLB write,
    # serialized after the compute (single-buffered accumulators) or beside an empty step: 3 AQU stall cycles.
    # 2 (DRAM) + 2 (PE fills) + 10 + 3 (drain) + 1 (write-back) = 18.
    arch = hand_arch(db=(True, True, True, accum_db))
    r = row(gemm(consumer_act=np.zeros((2, 1), bool)), arch, Mapping("weight_stationary", 2, 2, 2))
    assert (r.cycles, r.stall_aqu_cycles, r.stall_dram_cycles, r.stall_glb_cycles) == (18, 3, 3, 2)
    assert (r.aqu_blocks, r.aqu_sensitivity_read_bits) == (2, 2 * 4 * 8)
    assert (r.dram_write_bits, r.dram_write_metadata_bits) == (2 * 24, 2)


def test_output_stationary_one_tile():
    # 2 PEs (rows) x 2 lanes (columns), one tile. Lanes: (m0,n0) 4 + 2 = 6, (m0,n1) 2 + 2 = 4, (m1,n0) 3 + 1 = 4,
    # (m1,n1) 1 + 1 = 2: tile 6, ideal ceil(16 / 4) = 4. 2 + 2 + 6 + 1 + 1 = 12.
    arch = hand_arch("output_stationary", pes=2)
    r = row(gemm(), arch, Mapping("output_stationary", 2, 2, 2))
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (12, 4, 2)
    # The weight tile (104 bits) is multicast to both PEs; each PE gets its own X row.
    assert (r.weight_buffer_write_bits, r.input_buffer_write_bits) == (2 * 104, 112)


@pytest.mark.parametrize("engine", ["tile", "reference"])
def test_fp8_gemm_compute_bound_cycles_equal_block_pairs_over_lanes(engine):
    # Equal mode cycles, plenty of bandwidth, double buffered: 8 rows x 4 channels x 4 blocks on 4 lanes, one block
    # pair per cycle per lane: the 8 m-tiles of 1 row take 4 cycles each = 32 compute cycles, plus the first fills
    # (2 DRAM, 2 PE) and the last drain and write-back (1 + 1).
    arch = hand_arch(**{"pe_array.lanes_per_pe": 4, **{f"pe_array.cycles_per_block_pair.{p}": 1
                                                      for p in ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")}})
    ones = np.ones
    r = row(gemm(m=8, kb=4, n=4, w=ones((4, 4), bool), a=ones((8, 4), bool)), arch,
            Mapping("weight_stationary", 1, 4, 4), engine)
    assert r.compute_cycles == 8 * 4 * 4 * 4 // 4 // 4
    assert r.cycles == 32 + 2 + 2 + 1 + 1


def test_a_lane_sum_past_float32_integers_stays_exact():
    # One output-stationary lane (1 x 1 tile) over 16778 blocks, 1000 cycles per block pair in every mode but
    # FP8 x FP8 (1001); one FP8 weight block against an all-FP8 row: 16777 x 1000 + 1001 = 16 778 001 compute
    # cycles, odd and above 2**24, where float32 holds even integers only (the lane sums must not go through it).
    kb = 16778
    w = np.zeros((1, kb), bool)
    w[0, 0] = True
    arch = hand_arch("output_stationary", **{f"pe_array.cycles_per_block_pair.{p}": 1000 + (p == "fp8xfp8")
                                             for p in ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")})
    r = row(gemm(m=1, kb=kb, n=1, w=w, a=np.ones((1, kb), bool)), arch, Mapping("output_stationary", 1, 1, kb))
    assert r.compute_cycles == 16777 * 1000 + 1001
