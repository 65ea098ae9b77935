"""The simulator's fast paths give the numbers of the plain computations they replace: word-wide group sums,
constant maps that are never read, and the caches kept across design points (tilings, tile plans)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.sim import mapping as mapping_module
from fgmpsim.sim.hw import traffic
from fgmpsim.sim.vector import map_counts
from fgmpsim.sim.vector.map_counts import count_maps, group_reduce, group_sum
from fgmpsim.sim.mapping import Mapping, plan_op
from fgmpsim.trace import GemmOp, Trace, gemm_trace


@pytest.mark.parametrize(("shape", "size"), [((1, 4096, 256), 8), ((3, 100, 16), 7), ((2, 37, 24), 255),
                                             ((5, 300, 8), 16), ((1, 33, 64), 5), ((2, 9, 8), 9),
                                             # int32 accumulators: 12 columns are not whole words; groups of 300
                                             ((2, 30, 12), 4), ((1, 600, 8), 300)])
def test_group_sum_equals_plain_sum_eight_columns_per_word_or_not(shape, size):
    rng = np.random.default_rng(size)
    for fp8 in (rng.random(shape) < 0.4, np.ones(shape, dtype=bool)):
        plain = np.add.reduceat(fp8.astype(np.int64), np.arange(0, shape[1], size), axis=1)
        got = group_sum(fp8, size, axis=1)
        assert got.dtype == np.int64 and got.shape == plain.shape
        np.testing.assert_array_equal(got, plain)
    np.testing.assert_array_equal(group_sum(fp8, size, axis=1),
                                  group_reduce(fp8.view(np.uint8), size, 1, dtype=np.int64))


@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary"])
@pytest.mark.parametrize("value", [True, False])
def test_constant_map_counts_equal_counts_of_the_materialized_map(dataflow, value):
    trace = gemm_trace(37, 160, 45, fp4_fraction=0.5, seed=3)
    arch = load_arch("fgmp", [f"pe_array.dataflow={dataflow}", "pe_array.lanes_per_pe=4", "pe_array.pes=3"])
    ws = dataflow == "weight_stationary"
    tiling = plan_op(arch, trace.ops[0], Mapping(dataflow, 5 if ws else 3, 4 if ws else 3, 3))
    w_shape, a_shape = (1, 45, 10), (1, 37, 10)
    constant = count_maps(np.broadcast_to(np.bool_(value), w_shape), np.broadcast_to(np.bool_(value), a_shape),
                          tiling, 4)
    materialized = count_maps(np.full(w_shape, value), np.full(a_shape, value), tiling, 4)
    for name in constant.__dataclass_fields__:
        got, want = getattr(constant, name), getattr(materialized, name)
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)


def test_a_new_design_point_after_cached_points_equals_the_same_point_in_a_fresh_cache():
    trace = gemm_trace(300, 1024, 520, fp4_fraction=0.7, seed=5)
    point = load_arch("fgmp_fp8_half_rate", ["pe_array.lanes_per_pe=8", "memory.glb.size_bytes=262144"])
    simulate(trace, load_arch("fgmp_fp8_half_rate"))
    simulate(trace, load_arch("fgmp_fp8_half_rate", ["clock_hz=2e9"]))
    after_others = simulate(trace, point).to_frame()
    mapping_module._TILINGS.clear()
    traffic.tile_plan.cache_clear()
    fresh = simulate(trace, point).to_frame()
    assert after_others.equals(fresh)
    again = simulate(trace, point).to_frame()  # every cache warm for exactly this point
    assert again.equals(fresh)


def test_map_counts_are_reused_for_immutable_maps_and_recomputed_for_writable_ones():
    from fgmpsim.trace import synth_trace

    arch, other_clock = load_arch("fgmp"), load_arch("fgmp", ["clock_hz=2e9"])
    lazy = synth_trace("smollm2-135m", tokens=32, fp4_fraction=0.7, seed=2)
    first = simulate(lazy, arch).to_frame()
    maps = {id(m) for op in lazy.ops for m in (op.weight_map, op.act_map)}
    # this trace's entries (not the cache's size: a process may hold other traces' counts from before)
    mine = {key: value[0][2] for key, value in map_counts._COUNTS._items.items() if key[0] in maps and key[1] in maps}
    assert len(mine) >= len(lazy.ops) // 2
    again = simulate(lazy, other_clock).to_frame()  # same tilings: counts come from the cache, the same objects
    assert all(map_counts._COUNTS._items[key][0][2] is counts for key, counts in mine.items())
    columns = ["cycles", "macs", "energy_dram_pj", "energy_mac_fp4xfp4_pj", "dram_read_bits", "macs_fp4xfp4"]
    assert again[columns].equals(first[columns])  # leakage per cycle depends on the clock, dynamic energy does not

    rng = np.random.default_rng(4)
    weight, act = rng.random((96, 16)) < 0.3, rng.random((64, 16)) < 0.3
    trace = Trace(name="arrays", ops=(GemmOp("g", 0, "linear", 64, 256, 96, 1, weight, act),), block_size=16)
    before = simulate(trace, arch).to_frame()
    weight[:] = True  # a writable map changed between two simulations
    after = simulate(trace, arch).to_frame()
    assert after["weight_fp8_fraction"].iloc[0] == 1.0 and (after["macs_fp4xfp4"] == 0).all()
    assert not after.equals(before)


def test_a_writable_activation_beside_a_read_only_weight_is_counted_again():
    # only counts of two immutable maps are cached: the read-only weight alone must not make the op cacheable
    weight, act = np.zeros((96, 16), bool), np.zeros((64, 16), bool)
    weight.setflags(write=False)
    trace = Trace(name="half", ops=(GemmOp("g", 0, "linear", 64, 256, 96, 1, weight, act),), block_size=16)
    before = simulate(trace, load_arch("fgmp")).to_frame().iloc[0]
    act[:] = True  # the writable activation map changed between two simulations
    after = simulate(trace, load_arch("fgmp")).to_frame().iloc[0]
    assert (before.macs_fp4xfp4, after.macs_fp4xfp4, after.macs_fp4xfp8) == (64 * 256 * 96, 0, 64 * 256 * 96)


def test_ops_sharing_a_read_only_weight_map_keep_their_own_activation_counts():
    """Two ops on one read-only all-FP4 W, one fed all-FP4 activations, the other all-FP8: 64 x 256 x 96 MACs
    each, all FP4 x FP4 for the first and all FP4 x FP8 for the second (the cache keys both maps)."""
    weight, fp4, fp8 = np.zeros((96, 16), bool), np.zeros((64, 16), bool), np.ones((64, 16), bool)
    for pmap in (weight, fp4, fp8):
        pmap.setflags(write=False)
    trace = Trace(name="shared", ops=(GemmOp("a", 0, "linear", 64, 256, 96, 1, weight, fp4),
                                      GemmOp("b", 1, "linear", 64, 256, 96, 1, weight, fp8)), block_size=16)
    frame = simulate(trace, load_arch("fgmp")).to_frame()
    assert list(frame.macs_fp4xfp4) == [64 * 256 * 96, 0] and list(frame.macs_fp4xfp8) == [0, 64 * 256 * 96]


def test_cached_counts_are_charged_the_bytes_their_buffers_keep_alive():
    base = np.zeros(100, np.int8)                                   # 100 B, also kept alive by its slice
    small = np.zeros(3, np.int16)                                   # 6 B behind a 50 x 3 broadcast view
    other = np.ones(7, np.float64)                                  # 56 B
    arrays = [base, base[10:20], np.broadcast_to(small, (50, 3)), other]
    assert map_counts._held_bytes(arrays) == 100 + 6 + 56


def test_a_trace_with_writable_maps_is_checked_again_on_every_simulation(tmp_path):
    """The trace check is skipped only for traces whose maps cannot change: an in-place reshape of a writable map
    after a first simulation is still refused; a trace loaded from disk has read-only maps and stays simulable."""
    from fgmpsim.errors import TraceError
    from fgmpsim.trace import load_trace

    rng = np.random.default_rng(1)
    op = GemmOp("g", 0, "linear", 8, 64, 8, 1, rng.random((8, 4)) < 0.5, rng.random((8, 4)) < 0.5)
    trace = Trace("writable", (op,), 16)
    arch = load_arch("fgmp")
    simulate(trace, arch)
    op.weight_map.shape = (4, 8)  # was [N = 8, K / 16 = 4]
    with pytest.raises(TraceError, match="weight_map"):
        simulate(trace, arch)
    op = GemmOp("g", 0, "linear", 8, 64, 8, 1, rng.random((8, 4)) < 0.5, rng.random((8, 4)) < 0.5)
    loaded = load_trace(Trace("stored", (op,), 16).save(tmp_path / "t"))
    assert not loaded.ops[0].weight_map.flags.writeable
    first, second = simulate(loaded, arch).summary(), simulate(loaded, arch).summary()
    assert first == second and first["macs"] == 8 * 64 * 8


def test_band_weight_counts_cut_from_the_op_equal_the_band_maps_counted():
    """A causal band's weight PE-group counts are cut from its op's (``Operands.w_groups``) when the band ends on a
    group boundary of the op's map: they equal counting the band's own (copied) map, and a band that ends inside
    a group is counted from its map."""
    from fgmpsim.sim.hw.causal import CausalBands
    from fgmpsim.sim.hw.operands import OperandCache
    from fgmpsim.trace import synth_trace

    trace = synth_trace("smollm2-135m", tokens=40, fp4_fraction=0.6, seed=4)
    causal = [op for op in trace.ops if op.causal][:4]
    cut_from_op = counted = 0
    for sets in (["pe_array.lanes_per_pe=4"], ["pe_array.lanes_per_pe=3", "pe_array.pes=5"],
                 ["pe_array.lanes_per_pe=8", "pe_array.pes=2"]):
        arch = load_arch("fgmp", sets)
        lpp = arch.pe_array.lanes_per_pe
        cache = OperandCache(trace, arch)
        bands = CausalBands(trace, cache, band_rows=8)
        for op in causal:
            for band in bands.of(op, cache.operands(op)):
                tiling = plan_op(arch, band.op)
                known = band.w_groups(tiling.mapping.tile_n, lpp)
                plain = count_maps(np.ascontiguousarray(band.w), np.ascontiguousarray(band.a), tiling, lpp)
                if known is None:
                    counted += 1
                    continue
                cut_from_op += 1
                fast = count_maps(band.w, band.a, tiling, lpp, known)
                for name in plain.__dataclass_fields__:
                    np.testing.assert_array_equal(np.asarray(getattr(fast, name)), np.asarray(getattr(plain, name)),
                                                  err_msg=f"{band.op.name} {sets} {name}")
    assert cut_from_op > 0 and counted > 0
