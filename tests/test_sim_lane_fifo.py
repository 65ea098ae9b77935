"""The bounded lane-skew buffer (``pe_array.lane_fifo_depth``): hand-computed FIFO stalls, the lock-step and
unbounded limits, validation, and the engines' agreement (tile == reference == event, compute + stalls = cycles,
bound <= cycles) on random small GEMMs with random depths."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_sim_engines import tile_matching_reference
from test_sim_reuse import arch, gemm, row

from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace

HALF = {"pe_array.cycles_per_block_pair.fp4xfp4": 1, "pe_array.cycles_per_block_pair.fp4xfp8": 2,
        "pe_array.cycles_per_block_pair.fp8xfp4": 2, "pe_array.cycles_per_block_pair.fp8xfp8": 2}
"""``fgmp_fp8_half_rate``'s mode cycles: 2 for any block pair with an FP8 operand."""

# Two channels, one row, six blocks, every activation block NVFP4: channel 0's weights FP8 on blocks 0-2, channel
# 1's on blocks 3-5, so lane 0 costs [2, 2, 2, 1, 1, 1] and lane 1 [1, 1, 1, 2, 2, 2] (9 cycles each, ideal 9).
SKEWED = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)


def one_tile(dataflow: str) -> Mapping:
    """The whole 1 x 2 x 6 GEMM as one tile: WS, the PE's two lanes are the channels; OS, PE 0 holds the row and its
    two lanes the columns. Either way the PE broadcasts the row's six activation blocks in block order."""
    return Mapping(dataflow, 1, 2, 6)


@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary"])
@pytest.mark.parametrize("depth, imbalance", [(None, 0), (1, 3), (2, 1), (3, 0), (6, 0)])
def test_fifo_stalls_by_hand(dataflow, depth, imbalance):
    """b[i] = max_l f_l[i - D] (0 for i < D), f_l[i] = max(f_l[i - 1], b[i]) + c_l[i]:

    * unbounded: each lane runs its 9 cycles: tile 9, no imbalance;
    * D = 1 (lock step): every item lasts its slower lane: 2 + 2 + 2 + 2 + 2 + 2 = 12, imbalance 3;
    * D = 2: f0 = 2, 4; f1 = 1, 2 (items 0, 1 at b = 0); item 2 waits for item 0 (b = 2): f0 = 6, f1 = 3; item 3
      b = H[1] = 4: f0 = 7, f1 = max(3, 4) + 2 = 6; item 4 b = H[2] = 6: f0 = 8, f1 = 8; item 5 b = H[3] = 7:
      f0 = 9, f1 = 10: tile 10, imbalance 1;
    * D = 3: f0 = 2, 4, 6; f1 = 1, 2, 3; item 3 b = 2: f0 = 7, f1 = 5; item 4 b = 4: f0 = 8, f1 = 7; item 5 b = 6:
      f0 = 9, f1 = 9: tile 9, no stall; D = 6 (= the tile's items) never binds.

    The transfers around the tile take the same cycles at every depth, so cycles grow by the imbalance alone."""
    mapping, modes = one_tile(dataflow), {**HALF, "pe_array.dataflow": dataflow}
    free = row(gemm(1, 6, 2, w=SKEWED), arch(**modes), mapping)
    assert (free.compute_cycles, free.stall_imbalance_cycles) == (9, 0)
    for engine in ("tile", "reference", "event"):
        r = row(gemm(1, 6, 2, w=SKEWED), arch(**modes, **{"pe_array.lane_fifo_depth": depth}), mapping, engine)
        assert (r.compute_cycles, r.stall_imbalance_cycles) == (9, imbalance), engine
        assert r.cycles == free.cycles + imbalance, engine


def test_fifo_couples_the_lanes_of_one_pe_only():
    """Two PEs of one lane each (WS, channels 0 and 1 on different PEs): no lane shares a broadcast, so even D = 1
    stalls nothing; one PE of two lanes stalls 3 cycles (the hand case above)."""
    mapping = one_tile("weight_stationary")
    apart = {**HALF, "pe_array.pes": 2, "pe_array.lanes_per_pe": 1, "pe_array.lane_fifo_depth": 1}
    for engine in ("tile", "reference"):
        assert row(gemm(1, 6, 2, w=SKEWED), arch(**apart), mapping, engine).stall_imbalance_cycles == 0
        shared = arch(**HALF, **{"pe_array.lane_fifo_depth": 1})
        assert row(gemm(1, 6, 2, w=SKEWED), shared, mapping, engine).stall_imbalance_cycles == 3


@pytest.mark.parametrize("seed", range(12))
def test_depth_one_is_lock_step(seed):
    """D = 1: every block pair lasts as long as its PE's slowest lane on it, so one tile's compute (no fill) is
    ``max over PEs of sum over items of max over the PE's lanes of c`` (computed here from the maps directly)."""
    rng = np.random.default_rng(seed)
    m, kb, n = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(2, 7))
    lanes = int(rng.integers(1, 4))
    cycles = rng.integers(1, 5, 4)
    w, a = rng.random((n, kb)) < 0.5, rng.random((m, kb)) < 0.5
    table = cycles.reshape(2, 2)                                    # [w_fp8][a_fp8]: fp4xfp4, fp4xfp8, ...
    modes = dict(zip(("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8"), (int(c) for c in cycles)))
    o = {f"pe_array.cycles_per_block_pair.{k}": c for k, c in modes.items()}
    o.update({"pe_array.pes": -(-n // lanes), "pe_array.lanes_per_pe": lanes, "pe_array.lane_fifo_depth": 1})
    cost = table[w.astype(int)[:, None, :], a.astype(int)[None, :, :]]          # [n, m, kb], items row-major
    per_pe = [cost[p:p + lanes].reshape(len(cost[p:p + lanes]), -1).max(axis=0).sum() for p in range(0, n, lanes)]
    r = row(gemm(m, kb, n, w, a), arch(**o), Mapping("weight_stationary", m, n, kb))
    assert r.compute_cycles + r.stall_imbalance_cycles == max(per_pe)


def _random_case(seed: int, half_rate: bool):
    """A tiny GEMM (repeats, 2-D or 3-D maps) on 1-3 PEs x 1-4 lanes with a random depth 1-3 (collectors and a
    VMAC pipeline at random), random or half-rate mode cycles, and a random tiling of several items per tile."""
    rng = np.random.default_rng([seed, 5])
    ws = seed % 2 == 0
    pes, lanes = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    modes = HALF if half_rate else {f"pe_array.cycles_per_block_pair.{k}": int(c) for k, c in
                                    zip(("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8"), rng.integers(1, 4, 4))}
    dw, dp = (int(rng.integers(0, 4)), int(rng.integers(1, 4))) if ws and rng.random() < 0.5 else (0, 1)
    o = {**modes, "pe_array.pes": pes, "pe_array.lanes_per_pe": lanes,
         "pe_array.lane_fifo_depth": int(rng.integers(1, 4)),
         "pe_array.dataflow": "weight_stationary" if ws else "output_stationary"}
    a = arch(dw, dp, int(rng.integers(1, 3)), **o)
    m, kb, n = (int(x) for x in rng.integers(2, 11, 3))
    rep = int(rng.integers(1, 3))
    w = rng.random(((rep,) if rng.random() < 0.5 else ()) + (n, kb)) < rng.random()
    # half rate: an FP8 activation block costs every lane 2 (no skew), so mostly NVFP4 activations
    x = rng.random(((rep,) if rng.random() < 0.5 else ()) + (m, kb)) < rng.random() * (0.4 if half_rate else 1)
    trace = Trace("fifo", (GemmOp("g", 0, "linear", m, 4 * kb, n, rep, w, x),), block_size=4)
    tn = int(rng.integers(1, min(n, pes * lanes if ws else lanes) + 1))
    tm = int(rng.integers(1, (m if ws else min(m, pes)) + 1))
    mapping = Mapping(o["pe_array.dataflow"], tm, tn, int(rng.integers(max(1, kb // 2), kb + 1)))
    return a, trace, mapping


def with_depth(a, depth):
    """``a`` with lane FIFOs of ``depth`` block pairs (``None``: unbounded)."""
    return replace(a, pe_array=replace(a.pe_array, lane_fifo_depth=depth))


@pytest.mark.parametrize("half_rate", [True, False])
def test_tile_equals_reference_and_event_with_bounded_fifos(half_rate):
    checked = stalled = 0
    for seed in range(60):
        a, trace, mapping = _random_case(seed, half_rate)
        if (tile := tile_matching_reference(trace, a, mapping, f"seed {seed}")) is None:
            continue
        event = simulate(trace, a, engine="event", mapping=mapping).to_frame()
        assert not [c for c in tile.columns if c != "simpy_events" and not tile[c].equals(event[c])], seed
        stalls = tile[[c for c in tile.columns if c.startswith("stall_")]].sum(axis=1)
        assert (tile.compute_cycles + stalls == tile.cycles).all() and (tile.bound_cycles <= tile.cycles).all()
        free = simulate(trace, with_depth(a, None), mapping=mapping).to_frame()
        assert (tile.cycles >= free.cycles).all(), seed
        stalled += int((tile.cycles > free.cycles).any())
        checked += 1
    assert checked >= 40 and stalled >= 3  # the FIFOs bind on some cases (3 of these 60 on half-rate costs)


@pytest.mark.parametrize("seed", range(6))
def test_cycles_never_grow_with_depth_and_a_depth_of_a_whole_tile_is_unbounded(seed):
    a, trace, mapping = _random_case(seed, half_rate=True)
    try:
        frames = [simulate(trace, with_depth(a, d), mapping=mapping).to_frame() for d in (1, 2, 3, 4, 10 ** 6, None)]
    except MappingError:
        pytest.skip("random tiling does not fit")
    cycles = [int(f.cycles.sum()) for f in frames]
    assert cycles == sorted(cycles, reverse=True)
    assert frames[-2].drop(columns="simpy_events").equals(frames[-1].drop(columns="simpy_events"))


def test_uniform_mode_cycles_never_stall():
    """``fgmp`` (every mode 1 cycle): the lanes of a PE run the same costs, so D = 1 changes nothing but the static
    energy of the FIFO's flip-flops (an unbounded FIFO has no area)."""
    trace = gemm(5, 7, 6, np.random.default_rng(1).random((6, 7)) < 0.5, np.random.default_rng(2).random((5, 7)) < 0.5)
    mapping = Mapping("weight_stationary", 3, 6, 4)
    fast = {"pe_array.pes": 2, "pe_array.lanes_per_pe": 3}
    free = row(trace, arch(**fast, **{f"pe_array.cycles_per_block_pair.{k}": 1 for k in
                                      ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")}), mapping)
    lock = row(trace, arch(**fast, **{f"pe_array.cycles_per_block_pair.{k}": 1 for k in
                                      ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")},
                           **{"pe_array.lane_fifo_depth": 1}), mapping, "reference")
    energy = [c for c in free.index if c.startswith("energy_") or c in ("pj_per_mac", "simpy_events")]
    assert free.drop(energy).equals(lock.drop(energy)) and free.stall_imbalance_cycles == 0
    static = ["energy_leakage_pj", "energy_clock_pj"]
    assert (free[static] < lock[static]).all()
    assert free.energy_pj - free[static].sum() == pytest.approx(lock.energy_pj - lock[static].sum(), rel=1e-12)


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_bad_depths_are_config_errors(value):
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp_fp8_half_rate", {"pe_array.lane_fifo_depth": value})
    assert err.value.field == "pe_array.lane_fifo_depth"


def test_a_systolic_array_has_no_lane_fifo():
    with pytest.raises(ConfigError) as err:
        load_arch("systolic_16x16", {"pe_array.lane_fifo_depth": 4})
    assert err.value.field == "pe_array.lane_fifo_depth" and "null" in err.value.fix


def test_shipped_archs_are_unbounded():
    for name in ("fgmp", "fgmp_fp8_half_rate", "fp8_baseline"):
        assert load_arch(name).pe_array.lane_fifo_depth is None
