"""Reuse inside the PE (weight and partial-sum collectors) and the VMAC pipeline's fill/drain: hand-computed buffer
reads and register-file accesses on tiny GEMMs with several k-tiles, hand-computed fill cycles, the mapper's use of
the collectors, and the engines' agreement (event == tile, compute + stalls = cycles, bound <= cycles) with each
option on."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from test_sim_engines import _case, tile_matching_reference

from fgmpsim.arch import load_arch
from fgmpsim.arch.documents import read_with_extends
from fgmpsim.arch.loader import arch_from_dict, find_arch
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import Mapping, plan_op, simulate
from fgmpsim.sim.hw.collectors import weight_buffer_reads
from fgmpsim.trace import GemmOp, Trace

FAST = 10 ** 6
LEVELS = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer")
RF_PJ = 0.0116  # base.yaml's weight/psum collector pJ per bit


def arch(dw=0, dp=1, depth=1, **overrides):
    """1 PE x 2 lanes, 4-element blocks, every buffer 1 MiB, every rate 10**6 bits/cycle (1-cycle transfers);
    mode cycles fp4xfp4=1, fp4xfp8=2, fp8xfp4=3, fp8xfp8=4. FP8 block 32 bits, FP4 24, +1 metadata bit."""
    o = {"pe_array.pes": 1, "pe_array.lanes_per_pe": 2, "pe_array.vector_width": 4,
         "pe_array.cycles_per_block_pair.fp4xfp4": 1, "pe_array.cycles_per_block_pair.fp4xfp8": 2,
         "pe_array.cycles_per_block_pair.fp8xfp4": 3, "pe_array.cycles_per_block_pair.fp8xfp8": 4,
         "aqu.blocks_per_cycle": 1, "aqu.latency_cycles": 2, "pe_array.weight_collector_blocks": dw,
         "pe_array.psum_collector_entries": dp, "pe_array.pipeline_depth": depth}
    for level in LEVELS:
        o[f"memory.{level}.read_bits_per_cycle"] = FAST
        o[f"memory.{level}.write_bits_per_cycle"] = FAST
        if level != "dram":
            o[f"memory.{level}.size_bytes"] = 2 ** 20
    o.update(overrides)
    return load_arch("fgmp", o)


def gemm(m, kb, n, w=None, a=None) -> Trace:
    w = np.ones((n, kb), bool) if w is None else w          # all-FP8 weights: 32 + 1 bits per block
    a = np.zeros((m, kb), bool) if a is None else a
    return Trace("hand", (GemmOp("g", 0, "linear", m, 4 * kb, n, 1, w, a),), block_size=4)


def row(trace, a, mapping, engine="tile"):
    return simulate(trace, a, engine=engine, mapping=mapping).to_frame().iloc[0]


# M = 4, K = 6 blocks, N = 2; tiles of 2 rows x 2 channels x 3 blocks, one chunk of both m-tiles:
# 2 k-tiles x 2 m-tiles = 4 tiles, each lane R = 2 rows x K = 3 blocks per tile.
FOUR_TILES = Mapping("weight_stationary", 2, 2, 3, chunk_m=4)


@pytest.mark.parametrize("dw, dp, buffer_reads, collector_writes, collector_reads, psum", [
    # no collector: R * K = 6 reads per lane and tile, 2 lanes x 4 tiles = 48 blocks
    (0, 1, 48, 0, 0, 0),
    # dw = 3 >= K: K = 3 reads per lane on the first m-tile of each k-tile only (2 tiles): 12 blocks;
    # every block pair reads the collector: 48 blocks
    (3, 1, 12, 12, 48, 0),
    # dw = 2 < K, dp = 1: ceil(2 / 1) * 3 = 6 per lane and tile (no reuse), the single row per group keeps its sum
    # in the accumulator: no psum collector access; every load is read by one row only, so it bypasses the
    # collector: no collector write or read at all
    (2, 1, 48, 0, 0, 0),
    # dw = 2, dp = 2: ceil(2 / 2) * 3 = 3 per lane and tile = 24; nc = ceil(3 / 2) = 2 k-chunks: each of the 4
    # outputs of a tile waits once in the psum collector: 4 tiles x 4 outputs x 1 = 16 partial sums
    (2, 2, 24, 24, 48, 16),
    # dw = 1, dp = 4 >= R: 3 per lane and tile = 24; nc = 3: 2 waits per output: 32 partial sums
    (1, 4, 24, 24, 48, 32),
])
def test_collector_reads_by_hand(dw, dp, buffer_reads, collector_writes, collector_reads, psum):
    base = row(gemm(4, 6, 2), arch(), FOUR_TILES)
    r = row(gemm(4, 6, 2), arch(dw, dp), FOUR_TILES)
    assert (r.weight_buffer_read_bits, r.weight_buffer_read_metadata_bits) == (32 * buffer_reads, buffer_reads)
    assert (r.weight_collector_write_bits, r.weight_collector_write_metadata_bits) == (32 * collector_writes,
                                                                                       collector_writes)
    assert (r.weight_collector_read_bits, r.weight_collector_read_metadata_bits) == (32 * collector_reads,
                                                                                     collector_reads)
    assert r.psum_collector_read_bits == r.psum_collector_write_bits == 32 * psum
    # data bits price as collectors, the flags as metadata (like every level's metadata bits)
    assert r.energy_collectors_pj == pytest.approx((32 * (collector_writes + collector_reads) + 2 * 32 * psum) * RF_PJ)
    weight_buffer_pj = load_arch("fgmp").energy.pj("weight_buffer_read_bit")
    assert r.energy_metadata_pj - base.energy_metadata_pj == pytest.approx(
        (collector_writes + collector_reads) * RF_PJ + (buffer_reads - 48) * weight_buffer_pj)
    # nothing else moves differently and no cycle changes (collector loads ride the weight buffer's read port)
    for column in ("cycles", "weight_buffer_write_bits", "input_buffer_read_bits", "accum_buffer_read_bits",
                   "accum_buffer_write_bits", "glb_read_bits", "dram_read_bits", "energy_mac_fp8xfp4_pj"):
        assert r[column] == base[column], column


def test_a_one_row_group_keeps_its_sum_in_the_accumulator():
    # One tile of R = 3 rows x 2 channels x K = 4 blocks, dw = 2, dp = 2: row groups [m0, m1], [m2], k-chunks of
    # 2 blocks (nc = 2). Weight-buffer reads ceil(3 / 2) * 4 = 8 per lane (16 blocks); m0 and m1 park their sums once
    # each between the two k-chunks, m2 (alone) keeps its sum in the accumulator: 2 lanes x 2 = 4 partial sums.
    # m2's loads are read by one row: bypassed. Collector writes (2 - 1) * 4 = 4 per lane (8 blocks), reads
    # (3 - 1) * 4 = 8 per lane (16 blocks).
    r = row(gemm(3, 4, 2), arch(2, 2), Mapping("weight_stationary", 3, 2, 4))
    assert (r.weight_buffer_read_bits, r.weight_collector_write_bits, r.weight_collector_read_bits) == (
        32 * 16, 32 * 8, 32 * 16)
    assert r.psum_collector_read_bits == r.psum_collector_write_bits == 32 * 4


def test_a_short_last_k_tile_is_held_while_full_ones_are_chunked():
    # K = 5 blocks in k-tiles of 3 and 2, dw = 2, dp = 1. k-tile 0 (K = 3 > 2): 6 reads per lane on each m-tile;
    # k-tile 1 (K = 2 <= 2): 2 reads per lane on m-tile 0, none on m-tile 1. Per lane 6 + 6 + 2 = 14, 2 lanes: 28.
    # k-tile 0's loads are one row's each (dp = 1): bypassed. k-tile 1's held blocks serve both m-tiles' 2 rows:
    # collector writes 2 per lane (4 blocks), reads R * K = 2 * 2 per lane and m-tile: 2 x (4 + 4) = 16 blocks.
    r = row(gemm(4, 5, 2), arch(2, 1), Mapping("weight_stationary", 2, 2, 3, chunk_m=4))
    assert (r.weight_buffer_read_bits, r.weight_collector_write_bits, r.weight_collector_read_bits,
            r.psum_collector_read_bits) == (32 * 28, 32 * 4, 32 * 16, 0)


@pytest.mark.parametrize("engine", ["tile", "reference"])
def test_a_held_k_tile_of_one_row_bypasses_the_collector(engine):
    # Decode-like: M = 1, K = 4 blocks held (dw = 4), N = 2. One m-tile of one row per chunk: each weight block is
    # read once, straight from the weight buffer (4 per lane, 8 blocks, as without a collector); no collector
    # access, so the dynamic energy equals the collector-less PE's (the collector's flip-flops leak and clock:
    # static energy grows by their area). With two one-row m-tiles in one chunk (M = 2,
    # tile_m = 1, chunk_m = 2) the held blocks serve both rows: 4 writes and 2 x 4 reads per lane.
    one = Mapping("weight_stationary", 1, 2, 4)
    base, r = row(gemm(1, 4, 2), arch(), one, engine), row(gemm(1, 4, 2), arch(4, 1), one, engine)
    assert (r.weight_buffer_read_bits, r.weight_collector_write_bits, r.weight_collector_read_bits) == (32 * 8, 0, 0)
    static = ["energy_leakage_pj", "energy_clock_pj"]
    assert r.energy_pj - r[static].sum() == pytest.approx(base.energy_pj - base[static].sum(), rel=1e-12)
    assert (r[static] > base[static]).all()
    two = row(gemm(2, 4, 2), arch(4, 1), Mapping("weight_stationary", 1, 2, 4, chunk_m=2), engine)
    assert (two.weight_buffer_read_bits, two.weight_collector_write_bits, two.weight_collector_read_bits) == (
        32 * 8, 32 * 8, 32 * 16)


def test_output_stationary_bypasses_the_collectors():
    trace = gemm(2, 6, 2)
    os_mapping = Mapping("output_stationary", 2, 2, 3)
    common = {"pe_array.dataflow": "output_stationary", "pe_array.pes": 2}
    base, r = row(trace, arch(**common), os_mapping), row(trace, arch(3, 4, **common), os_mapping)
    assert r.weight_buffer_read_bits == base.weight_buffer_read_bits == 32 * 2 * 2 * 6  # each PE's row, every block
    assert r.energy_collectors_pj == r.weight_collector_read_bits == r.psum_collector_read_bits == 0


def test_the_mapper_uses_the_weight_collector():
    # M = 2 rows (one m-tile: no partial-sum spill whatever K's tiling), K = 4 blocks, N = 2, dw = 2, dp = 1.
    # DRAM and GLB bits tie for tile_k_blocks 4, 2, 1. Weight-buffer reads per channel: tkb = 4 > dw: R * K = 8;
    # tkb = 2 (held): K = 4; tkb = 1: 4 as well but 4 tiles. Without a collector every tiling reads 8: fewest tiles.
    trace = gemm(2, 4, 2)
    assert simulate(trace, arch()).mapping("g").tile_k_blocks == 4
    assert simulate(trace, arch(2, 1)).mapping("g").tile_k_blocks == 2


@pytest.mark.parametrize("seed", range(24))
def test_closed_form_weight_reads_equal_the_tile_engine(seed):
    # the mapper's closed form against the grid factors of the tile engine (all-FP8 weights: 32 + 1 bits a block)
    rng = np.random.default_rng(seed)
    m, kb, n = (int(x) for x in rng.integers(1, 12, 3))
    dw, dp = int(rng.integers(0, 6)), int(rng.integers(1, 6))
    a = arch(dw, dp)
    tm, tkb = int(rng.integers(1, m + 1)), int(rng.integers(1, kb + 1))
    mapping = Mapping("weight_stationary", tm, min(n, 2), tkb, chunk_m=tm * int(rng.integers(1, 4)))
    trace = gemm(m, kb, n)
    r = row(trace, a, mapping)
    tiling = plan_op(a, trace.ops[0], mapping)
    assert r.weight_buffer_read_bits == 32 * n * weight_buffer_reads(tiling, a.pe_array)


@pytest.mark.parametrize("value, field", [(-1, "weight_collector_blocks"), (0, "psum_collector_entries"),
                                          (0, "pipeline_depth"), (True, "pipeline_depth")])
def test_bad_depths_are_config_errors(value, field):
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", {f"pe_array.{field}": value})
    assert err.value.field == f"pe_array.{field}"


def test_collector_entries_are_required_only_with_a_collector():
    data = read_with_extends(find_arch("fgmp"))
    for c in ("weight_collector", "psum_collector"):
        for d in ("read", "write"):
            del data["energy"]["actions"][f"{c}_{d}_bit"]
    arch_from_dict(copy.deepcopy(data))  # no collector: no entry needed
    data["pe_array"]["weight_collector_blocks"] = 2
    with pytest.raises(ConfigError) as err:
        arch_from_dict(data)
    assert err.value.field.startswith("energy.actions.") and "collector" in err.value.field


def test_fill_cycles_by_hand():
    # One tile of 2 rows x 2 channels x 2 blocks (test_sim_hand's first case): W = [[FP8, FP4], [FP4, FP4]],
    # A = [[FP8, FP8], [FP4, FP4]]: lane n0 works 10 cycles, ideal 8, 16 cycles without fill. A 4-stage VMAC
    # pipeline drains 3 cycles after the tile's last block pair: 19 cycles, 3 of them fill.
    w, a = np.array([[1, 0], [0, 0]], bool), np.array([[1, 1], [0, 0]], bool)
    one = row(gemm(2, 2, 2, w, a), arch(depth=4), Mapping("weight_stationary", 2, 2, 2))
    assert (one.cycles, one.compute_cycles, one.stall_imbalance_cycles, one.stall_fill_cycles) == (19, 8, 2, 3)
    # Two m-tiles of one row, all double buffered: steps -2 DRAM fills (2); -1 PE fills (2) beside tile 1's X fill;
    # 0 compute 6 + 3; 1 compute 4 + 3 beside drain 0; 2 drain 1 + write-back 0 (1); 3 write-back 1 (1): 22.
    two = row(gemm(2, 2, 2, w, a), arch(depth=4), Mapping("weight_stationary", 1, 2, 2))
    assert (two.cycles, two.compute_cycles, two.stall_imbalance_cycles, two.stall_fill_cycles) == (22, 8, 2, 6)
    bound = row(gemm(2, 2, 2, w, a), arch(depth=4), Mapping("weight_stationary", 1, 2, 2), engine="analytic")
    # bound: ceil(16 / 2 lanes) = 8 compute + 2 tiles x 3 fill = 14
    assert (bound.cycles, bound.compute_cycles, bound.stall_fill_cycles) == (14, 8, 6) and two.bound_cycles == 14


@pytest.mark.parametrize("engine", ["tile", "reference"])
def test_the_bound_counts_the_fill_of_every_tile(engine):
    # FOUR_TILES on all-FP8 weights and FP4 activations (fp8xfp4 = 3 cycles): each lane 2 rows x 3 blocks x 3 = 18
    # cycles per tile, 4 tiles: compute 72; a 4-stage pipeline adds 3 per tile: bound 72 + 12 = 84 on every engine
    r = row(gemm(4, 6, 2), arch(depth=4), FOUR_TILES, engine)
    assert (r.compute_cycles, r.stall_fill_cycles, r.bound_cycles) == (72, 12, 84)


def test_fill_hides_a_transfer_that_compute_alone_would_not():
    # Two m-tiles of one row as above, every level double buffered, the GLB read port slowed to 6 bits/cycle.
    # Bits: W 32 + 3 * 24 + 4 flags = 108; X tile 0 2 * 32 + 2 = 66, tile 1 2 * 24 + 2 = 50; outputs 2 BF16 = 32.
    # Steps: -2 DRAM fills 1 + 1 = 2; -1 PE fills ceil(108/6) + ceil(66/6) = 18 + 11 = 29 (GLB) beside tile 1's X
    # DRAM fill; 0 compute 6 + F beside tile 1's X PE fill ceil(50/6) = 9; 1 compute 4 + F beside drain 0 (1);
    # 2 write-back 0 ceil(32/6) = 6 beside drain 1; 3 write-back 1: 6.
    # F = 0: 2 + 29 + 9 + 4 + 6 + 6 = 56, GLB stalls 29 + (9 - 6) = 32, DRAM 2 + 6 + 6 = 14.
    # F = 3 (4 stages): step 0 = max(6 + 3, 9) = 9 hides the X fill: 2 + 29 + 9 + 7 + 6 + 6 = 59, GLB 29, fill 6.
    w, a = np.array([[1, 0], [0, 0]], bool), np.array([[1, 1], [0, 0]], bool)
    slow = {"memory.glb.read_bits_per_cycle": 6}
    mapping = Mapping("weight_stationary", 1, 2, 2)
    for depth, cycles, glb, fill in ((1, 56, 32, 0), (4, 59, 29, 6)):
        r = row(gemm(2, 2, 2, w, a), arch(depth=depth, **slow), mapping)
        assert (r.cycles, r.stall_glb_cycles, r.stall_dram_cycles, r.stall_fill_cycles) == (cycles, glb, 14, fill)
        assert r.cycles == r.compute_cycles + r.stall_imbalance_cycles + glb + 14 + fill


OPTIONS = {"collectors": {"weight_collector_blocks": 1, "psum_collector_entries": 2},
           "held": {"weight_collector_blocks": 64, "psum_collector_entries": 1},
           "fill": {"pipeline_depth": 5}, "both": {"weight_collector_blocks": 2, "psum_collector_entries": 3,
                                                   "pipeline_depth": 3}}


@pytest.mark.parametrize("option", OPTIONS)
def test_engines_agree_with_each_option_on(option):
    checked = 0
    for seed in range(40):
        a, trace, mapping = _case(seed)
        a = replace(a, pe_array=replace(a.pe_array, **OPTIONS[option]))
        try:
            tile = simulate(trace, a, mapping=mapping).to_frame()
        except MappingError:
            continue
        event = simulate(trace, a, engine="event", mapping=mapping).to_frame()
        assert not [c for c in tile.columns if c != "simpy_events" and not tile[c].equals(event[c])], seed
        analytic = simulate(trace, a, engine="analytic", mapping=mapping).to_frame()
        for frame in (tile, analytic):
            stalls = frame[[c for c in frame.columns if c.startswith("stall_")]].sum(axis=1)
            assert (frame.compute_cycles + stalls == frame.cycles).all(), seed
        assert (tile.bound_cycles <= tile.cycles).all() and (analytic.cycles == tile.bound_cycles).all()
        if "pipeline_depth" in OPTIONS[option]:
            assert (tile.stall_fill_cycles == tile.tiles * (OPTIONS[option]["pipeline_depth"] - 1)).all()
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("option", OPTIONS)
def test_tile_equals_reference_with_each_option_on(option):
    checked = reused = parked = 0
    for seed in range(48):
        a, trace, mapping = _case(seed)
        a = replace(a, pe_array=replace(a.pe_array, **OPTIONS[option]))
        if (tile := tile_matching_reference(trace, a, mapping, f"seed {seed}")) is None:
            continue
        checked += 1
        reused += bool((tile.weight_buffer_read_bits < tile.weight_collector_read_bits).any())
        parked += bool((tile.psum_collector_read_bits > 0).any())
    assert checked >= 20
    # the cases exercise what the option changes: weight reuse, partial sums parked between k-chunks
    if OPTIONS[option].get("weight_collector_blocks"):
        assert reused >= 10
    if option == "collectors":
        assert parked >= 3
