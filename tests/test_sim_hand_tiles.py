"""Hand-computed cycles and counts of GEMMs with several tiles: several k-tiles, partial-sum spills, slow
(multi-cycle) links, 4 metadata bits per block and an op whose analytic bound is set by the GLB side.

Every case runs on the tile engine and on the per-cycle reference engine (which share no code); both must give the
numbers worked out in the docstrings. The hand arch, maps and block sizes are those of ``test_sim_hand``: 1 PE x 2
lanes (2 x 2 for output stationary), 4-element blocks, mode cycles fp4xfp4=1, fp4xfp8=2, fp8xfp4=3, fp8xfp8=4
(weight x activation), every buffer 1 MiB, every rate 10**6 bits/cycle unless a case slows one; FP4 block 24 bits,
FP8 block 32 bits, 1 metadata bit (4 where a case says), partial sums 32 bits, unconsumed outputs BF16.
W = [[FP8, FP4], [FP4, FP4]] (n0 has one FP8 block, kb0), A = [[FP8, FP8], [FP4, FP4]] (m0 all FP8).
"""

from __future__ import annotations

import pytest
from test_sim_hand import gemm, hand_arch, row

from fgmpsim.sim import Mapping

ENGINES = ["tile", "reference"]


@pytest.mark.parametrize("engine", ENGINES)
def test_spilling_chunk_of_two_m_tiles_over_two_k_tiles(engine):
    """WS, tile_m=1, tile_n=2, tile_k_blocks=1, chunk_m=2: one chunk of 2 m-tiles, 2 k-tiles, so partial sums spill
    to the GLB after k-tile 0 and come back before k-tile 1. Execution order (kt, mt): t0 (0,0), t1 (0,1), t2 (1,0),
    t3 (1,1). Every level double buffered, every transfer 1 cycle.

    Lanes (n0, n1): t0 m0 kb0 (4, 2) ideal 3; t1 m1 kb0 (3, 1) ideal 2; t2 m0 kb1 (2, 2) ideal 2; t3 m1 kb1 (1, 1)
    ideal 1: compute 8, imbalance (4-3) + (3-2) = 2.
    Transfers: weight tile DRAM fill + PE fill on t0 and t2 (first m-tile of the chunk), X tile on every tile (n-tile
    0), partial-sum refill on t2 and t3 (k-tile 1), partial-sum drain after t0, t1, output drain + write-back after
    t2, t3. Steps (DRAM channel | GLB channel | compute):
    -2: fills t0 2 | - | - = 2 (DRAM 2);  -1: X fill t1 1 | PE fills t0 2 | - = 2 (GLB 2);
    0: fills t2 2 | X to PE t1 1 | 4 = 4;  1: X fill t3 1 | drain t0 1 + PE fills t2 3 | 3 = 4 (GLB 1);
    2: - | drain t1 1 + PE fills t3 2 | 2 = 3 (GLB 1);  3: - | drain t2 1 | 1 = 1;
    4: write-back t2 1 | drain t3 1 | - = 1 (DRAM wins the tie);  5: write-back t3 1 = 1 (DRAM).
    Total 18 = 8 compute + 2 imbalance + 4 DRAM + 4 GLB.

    Bits: weights 56 (kb0: 32 + 24) + 48 (kb1) = 104, X 32 + 24 + 32 + 24 = 112, 8 metadata bits; partial sums
    1 x 2 x 32 = 64 bits a tile, spilled on t0, t1 and refilled on t2, t3; outputs 4 x 16 = 64 bits.
    GLB writes 216 + 128 + 64 = 408, reads 104 + 112 + 128 + 64 = 408. Accumulation buffer writes 4 x 64 + 128
    (refills) = 384; reads 128 (k-tile 1 read-modify-write) + 128 (spill drains) + 128 (output drains) = 384."""
    r = row(gemm(), hand_arch(), Mapping("weight_stationary", 1, 2, 1, chunk_m=2), engine)
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (18, 8, 2)
    assert (r.stall_dram_cycles, r.stall_glb_cycles, r.stall_aqu_cycles) == (4, 4, 0)
    assert (r.dram_read_bits, r.dram_read_metadata_bits, r.dram_write_bits) == (216, 8, 64)
    assert (r.glb_write_bits, r.glb_read_bits) == (408, 408)
    assert (r.accum_buffer_write_bits, r.accum_buffer_read_bits) == (384, 384)
    # loader: 2 + 1 + 2 + 1 fills; distributor: 2 + 1 + 3 + 2 PE fills; writer: 4 drains + 2 write-backs
    assert (r.busy_loader_cycles, r.busy_distributor_cycles, r.busy_writer_cycles) == (6, 8, 6)


@pytest.mark.parametrize("engine", ENGINES)
def test_output_stationary_two_k_tiles_slow_dram_and_four_metadata_bits(engine):
    """OS on 2 PEs x 2 lanes, tile 2 x 2 x 1 block: one output tile over 2 k-tiles (t0 kb0, t1 kb1), 4 metadata
    bits per block, DRAM reads 10 bits/cycle, all double buffered.

    Tiles with metadata: W kb0 32 + 24 + 2 x 4 = 64 bits, W kb1 24 + 24 + 8 = 56, X kb0 = X kb1 = 32 + 24 + 8 = 64.
    DRAM fills (10 bits/cycle): t0 ceil(64/10) + ceil(64/10) = 14, t1 ceil(56/10) + ceil(64/10) = 13. PE fills 1
    cycle each. Lanes (m,n): t0 (4, 2, 3, 1) slowest 4 ideal ceil(10/4) = 3; t1 (2, 2, 1, 1) slowest 2 ideal 2.
    The accumulators stay in the lanes: one drain and one write-back after t1.
    Steps: -2 DRAM 14; -1 DRAM 13 beside PE fills 2 (DRAM 13); 0 compute 4 beside PE fills of t1 (2); 1 compute 2;
    2 drain 1 (GLB); 3 write-back 1 (DRAM). Total 35 = 5 compute + 1 imbalance + 28 DRAM + 1 GLB.
    Counts: DRAM reads 104 + 112 = 216 data bits and 8 x 4 = 32 metadata bits; the weight tiles are multicast to
    both PEs (2 x 104 data, 2 x 16 metadata) and each PE reads each of its weight blocks once per row (2 x 104);
    the X rows go to their own PE (112 data, 16 metadata). Busy: loader 27, distributor 4, writer 2."""
    arch = hand_arch("output_stationary", pes=2, **{"storage.metadata_bits_per_block": 4,
                                                   "memory.dram.read_bits_per_cycle": 10})
    r = row(gemm(), arch, Mapping("output_stationary", 2, 2, 1), engine)
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (35, 5, 1)
    assert (r.stall_dram_cycles, r.stall_glb_cycles) == (28, 1)
    assert (r.dram_read_bits, r.dram_read_metadata_bits) == (216, 32)
    assert (r.weight_buffer_write_bits, r.weight_buffer_write_metadata_bits) == (208, 32)
    assert (r.weight_buffer_read_bits, r.weight_buffer_read_metadata_bits) == (208, 32)
    assert (r.input_buffer_write_bits, r.input_buffer_write_metadata_bits) == (112, 16)
    assert (r.glb_read_bits, r.glb_read_metadata_bits) == (104 + 112 + 64, 32)
    assert (r.busy_loader_cycles, r.busy_distributor_cycles, r.busy_writer_cycles) == (27, 4, 2)
    # Bound: compute ceil(16 / 4 lanes) = 4, DRAM side ceil(248 / 10 + 64 / 10**6) = 25.
    assert r.bound_cycles == 25


@pytest.mark.parametrize("engine", ENGINES)
def test_slow_glb_reads_bind_the_bound_on_the_glb_side(engine):
    """The one-tile WS case (2 x 2 x 2 blocks) with GLB reads at 8 bits/cycle, all double buffered.

    PE fills: weights ceil((104 + 4) / 8) = 14, X ceil((112 + 4) / 8) = 15; write-back ceil(64 / 8) = 8; DRAM fills
    and the drain 1 cycle each. Steps: -2 DRAM 2; -1 PE fills 29 (GLB); 0 compute 10 (lanes 10 and 6, ideal 8);
    1 drain 1 (GLB); 2 write-back 8 (DRAM). Total 50 = 8 + 2 imbalance + 10 DRAM + 30 GLB.
    Bound: compute ceil(16 / 2) = 8; DRAM side ceil(224 / 10**6 + 64 / 8) = 9; GLB side: PE-fill bits 224 over
    8 bits/cycle plus drain bits 64 over 10**6 = ceil(28.000064) = 29: the GLB side binds. The analytic engine
    reports 29 cycles, 8 of compute and 21 GLB stall."""
    arch = hand_arch(**{"memory.glb.read_bits_per_cycle": 8})
    r = row(gemm(), arch, Mapping("weight_stationary", 2, 2, 2), engine)
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (50, 8, 2)
    assert (r.stall_dram_cycles, r.stall_glb_cycles) == (10, 30)
    assert (r.busy_distributor_cycles, r.busy_writer_cycles) == (29, 9)
    assert r.bound_cycles == 29
    bound = row(gemm(), arch, Mapping("weight_stationary", 2, 2, 2), "analytic")
    assert (bound.cycles, bound.compute_cycles, bound.stall_glb_cycles, bound.stall_dram_cycles) == (29, 8, 21, 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_serialized_spill_with_slow_accumulation_reads(engine):
    """The spilling case above with nothing double buffered and accumulation-buffer reads at 16 bits/cycle: every
    transfer runs before its step's compute, and a partial-sum drain (64 bits out of the one PE) takes
    ceil(64 / 16) = 4 cycles, the output drains too (their partial sums leave the PE at the same rate).

    Steps (serialized transfers + compute): 0: W and X DRAM fills 2 + PE fills 2 + compute 4 = 8;
    1: X fill 1 + X to PE 1 + drain t0 4 + compute 3 = 9; 2: fills 2 + PE fills 2 + refill 1 + drain t1 4 +
    compute 2 = 11; 3: X fill 1 + X to PE 1 + refill 1 + drain t2 4 + compute 1 = 8; 4: drain t3 4 + write-back
    t2 1 = 5; 5: write-back t3 1 = 1. Total 42 = 8 compute + 2 imbalance + 8 DRAM (6 fills + 2 write-backs)
    + 24 GLB (weight and X PE fills 6, refills 2, drains 16). Busy: writer 16 + 2 = 18, distributor 6 + 2 = 8."""
    arch = hand_arch(db=(False,) * 4, **{"memory.accum_buffer.read_bits_per_cycle": 16})
    r = row(gemm(), arch, Mapping("weight_stationary", 1, 2, 1, chunk_m=2), engine)
    assert (r.cycles, r.compute_cycles, r.stall_imbalance_cycles) == (42, 8, 2)
    assert (r.stall_dram_cycles, r.stall_glb_cycles, r.stall_aqu_cycles) == (8, 24, 0)
    assert (r.busy_loader_cycles, r.busy_distributor_cycles, r.busy_writer_cycles) == (6, 8, 18)
