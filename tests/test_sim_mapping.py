"""The mapper and explicit mappings: tiles fit their buffers, fixed fields are kept, impossible ones name the field."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.sim.mapping import OpShape, _balanced, _glb_need, _max_chunk, choose_tiling, worst_block_bits
from fgmpsim.trace import GemmOp, Trace


def one_gemm(m=64, k=256, n=96, consumer=False, block=16) -> Trace:
    rng = np.random.default_rng(0)
    ops = [GemmOp("g", 0, "linear", m, k, n, 1, rng.random((n, k // block)) < 0.3,
                  rng.random((m, k // block)) < 0.3, consumer="c" if consumer else None)]
    if consumer:
        ops.append(GemmOp("c", 1, "linear", m, n, 16, 1, np.zeros((16, n // block), bool),
                          np.zeros((m, n // block), bool)))
    return Trace("one", tuple(ops), block_size=block)


@pytest.mark.parametrize("arch_name", ["fgmp", "fgmp_output_stationary", "fp8_baseline", "nvfp4"])
def test_mapper_tiles_fit_every_buffer_at_worst_case_block_bits(arch_name):
    arch = load_arch(arch_name, {"memory.glb.size_bytes": 262144})
    pe, bw, ps = arch.pe_array, worst_block_bits(arch), arch.storage.psum_bits
    rng = np.random.default_rng(1)
    for _ in range(40):
        shape = OpShape(int(rng.integers(1, 3000)), int(rng.integers(1, 700)), int(rng.integers(1, 12000)),
                        int(rng.integers(1, 3)), bool(rng.integers(0, 2)))
        t = choose_tiling(arch, shape)
        m = t.mapping
        usable = {level: getattr(arch.memory, level).usable_tile_bytes * 8
                  for level in ("weight_buffer", "input_buffer", "accum_buffer", "glb")}
        if t.ws:
            lanes = min(m.tile_n, pe.lanes_per_pe)
            assert m.tile_n <= pe.lanes and m.tile_n == min(shape.n, pe.lanes)
            assert lanes * m.tile_k_blocks * bw <= usable["weight_buffer"]
            assert m.tile_m * m.tile_k_blocks * bw <= usable["input_buffer"]
            assert lanes * m.tile_m * ps <= usable["accum_buffer"]
            assert m.chunk_m % m.tile_m == 0
        else:
            assert m.tile_m <= pe.pes and m.tile_n == min(shape.n, pe.lanes_per_pe)
            assert m.tile_n * m.tile_k_blocks * bw <= usable["weight_buffer"]
            assert m.tile_n * ps <= usable["accum_buffer"]
        assert m.tile_m <= shape.m and m.tile_n <= shape.n and m.tile_k_blocks <= shape.kb


def test_mapper_keeps_small_operands_resident_and_reads_weights_once():
    # X (64 x 16 blocks) and the partial sums of all 64 rows fit the 1 MiB usable GLB: one chunk, X resident.
    arch = load_arch("fgmp")
    r = simulate(one_gemm(), arch).to_frame().iloc[0]
    assert r.chunk_m >= r.M and r.x_resident


def test_fixed_arch_mapping_fields_are_respected():
    arch = load_arch("fgmp", {"mapping.tile_m": 4, "mapping.tile_k_blocks": 8})
    r = simulate(one_gemm(), arch).to_frame().iloc[0]
    assert (r.tile_m, r.tile_k_blocks, r.tile_n) == (4, 8, 96)


# The smallest tile is 1 row x 1 channel x 1 block. fgmp's worst block: an FP8 block, 16 x 8 = 128 bits, no block
# scale, + 1 metadata bit = 129 bits = 16.125 bytes; a partial sum is 32 bits = 4 bytes. Every buffer is double
# buffered, so half of size_bytes is usable. Weight stationary: the weight tile is per lane.
@pytest.mark.parametrize("level, size, dataflow, tile, need, usable", [
    ("input_buffer", 8, "weight_stationary", "an input tile of 1 row(s) x 1 block(s)", "16.125", "4"),
    ("weight_buffer", 8, "weight_stationary", "a weight tile of 1 lane(s) x 1 block(s)", "16.125", "4"),
    ("weight_buffer", 8, "output_stationary", "a weight tile of 1 column(s) x 1 block(s)", "16.125", "4"),
    ("accum_buffer", 2, "weight_stationary", "partial sums of 1 lane(s) x 1 row(s)", "4", "1"),
])
def test_buffer_too_small_for_the_smallest_tile_names_the_buffer(level, size, dataflow, tile, need, usable):
    arch = load_arch("fgmp", {f"memory.{level}.size_bytes": size, "pe_array.dataflow": dataflow})
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(), arch)
    assert (err.value.what, err.value.field, err.value.fix) == (
        f"the smallest tile ({tile}) needs {need} bytes but the buffer has {usable} usable bytes",
        f"memory.{level}.size_bytes", f"enlarge memory.{level}.size_bytes (or turn off its double buffering)")


@pytest.mark.parametrize("accum_bytes", [None, 8])
def test_glb_too_small_names_the_glb(accum_bytes):
    # 8 accumulation bytes leave 4 usable: exactly one 32-bit partial sum, which fits, so the GLB is to blame
    overrides = {"memory.glb.size_bytes": 64} | ({"memory.accum_buffer.size_bytes": accum_bytes} if accum_bytes else {})
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(), load_arch("fgmp", overrides))
    assert (err.value.what, err.value.field, err.value.fix) == (
        "even the smallest tile (1 row x 1 channel x 1 block) does not fit the global buffer",
        "memory.glb.size_bytes", "enlarge memory.glb.size_bytes")


@pytest.mark.parametrize("mapping, field", [
    (Mapping("weight_stationary", 8, 512, 4), "mapping.tile_n"),           # more channels than the 256 lanes
    (Mapping("weight_stationary", 8, 256, 16 * 64), "mapping.tile_k_blocks"),  # weight tile > weight buffer
    (Mapping("weight_stationary", 4096, 256, 16), "mapping.tile_m"),       # input tile > input buffer
    (Mapping("weight_stationary", 0, 256, 4), "mapping.tile_m"),
    (Mapping("weight_stationary", 8, 256, 4, chunk_m=12), "mapping.chunk_m"),
    (Mapping("output_stationary", 8, 16, 4), "mapping.dataflow"),
])
def test_impossible_explicit_mapping_names_the_field(mapping, field):
    trace = one_gemm(m=4096, k=16 * 1024, n=512)
    with pytest.raises(MappingError) as err:
        simulate(trace, load_arch("fgmp"), mapping=mapping)
    assert err.value.field == field


@pytest.mark.parametrize("chunk_m, field", [(None, "mapping.tile_m"), (8, "mapping.chunk_m")])
def test_explicit_tiles_over_the_glb_name_the_field_to_lower(chunk_m, field):
    # a 1 KiB double-buffered GLB (512 usable bytes) cannot hold a 256-channel weight tile: the tiles are to blame,
    # chunk_m when the mapping fixed it
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(m=4096, k=16 * 1024, n=512), load_arch("fgmp", {"memory.glb.size_bytes": 1024}),
                 mapping=Mapping("weight_stationary", 8, 256, 4, chunk_m=chunk_m))
    assert (err.value.what, err.value.field, err.value.fix) == (
        "the tiles of op shape M=4096 K=1024 blocks N=512 do not fit the global buffer (512 usable bytes)", field,
        "use smaller tiles or enlarge memory.glb.size_bytes")


def test_output_stationary_input_row_over_its_buffer_names_tile_k_blocks():
    """OS holds one input row of tile_k_blocks worst-case blocks per PE: 512 x (128 FP8 bits + 1 metadata bit) / 8
    = 8256 bytes, over the 16 KiB double-buffered input buffer's 8192 (one channel keeps the weight tile, 8256
    bytes, inside the weight buffer's 16384)."""
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(m=4096, k=16 * 1024, n=512), load_arch("fgmp_output_stationary"),
                 mapping=Mapping("output_stationary", 8, 1, 512))
    assert (err.value.what, err.value.field) == (
        "an input row of 512 block(s) needs 8256 bytes but memory.input_buffer has 8192 usable bytes",
        "mapping.tile_k_blocks")


@pytest.mark.parametrize("mapping, what, field", [
    (Mapping("output_stationary", 32, 4, 4), "tile_m=32 exceeds the array's 16 PEs", "mapping.tile_m"),
    (Mapping("output_stationary", 4, 64, 4), "tile_n=64 exceeds the array's 16 lanes per PE", "mapping.tile_n"),
])
def test_output_stationary_limits_tiles_to_pes_and_lanes(mapping, what, field):
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(), load_arch("fgmp_output_stationary"), mapping=mapping)
    assert (err.value.what, err.value.field, err.value.fix) == (what, field, "use at most 16")


@pytest.mark.parametrize("mapping, what", [
    ({"nope": Mapping("weight_stationary", 1, 1, 1)}, "mappings given for ops not in trace 'one': nope"),
    (("weight_stationary", 1, 1, 1), "mapping must be a Mapping or a dict of op name -> Mapping, got tuple"),
])
def test_mapping_must_be_a_mapping_keyed_by_ops(mapping, what):
    with pytest.raises(MappingError) as err:
        simulate(one_gemm(), load_arch("fgmp"), mapping=mapping)
    assert (err.value.what, err.value.field) == (what, "mapping")


def test_tile_size_candidates_are_the_eight_largest_equal_splits_and_the_powers_of_two():
    # 25 split into 1..13 equal parts: 25, 13, 9, 7, 5, 5, 4, 4, 3, 3, 3, 3, 2: the first eight distinct sizes are
    # 25, 13, 9, 7, 5, 4, 3, 2; with the powers of two up to 25 (1, 2, 4, 8, 16)
    assert _balanced(25, 25) == [25, 16, 13, 9, 8, 7, 5, 4, 3, 2, 1]
    assert _balanced(25, 6) == [5, 4, 3, 2, 1]  # from 5 parts on (each <= 6), and the powers 1, 2, 4


def test_explicit_tiles_larger_than_the_gemm_are_clamped():
    r = simulate(one_gemm(m=3, k=32, n=5), load_arch("fgmp"),
                 mapping=Mapping("weight_stationary", 8, 256, 64)).to_frame().iloc[0]
    assert (r.tile_m, r.tile_n, r.tile_k_blocks, r.tiles) == (3, 5, 2, 1)


def test_block_size_must_match_the_vector_width():
    with pytest.raises(ConfigError) as err:
        simulate(one_gemm(block=8), load_arch("fgmp"))
    assert err.value.field == "pe_array.vector_width"


@pytest.mark.parametrize("glb_bytes", [64, 4096, 65536, 1 << 20])
def test_ws_chunk_is_the_largest_that_fits_the_glb(glb_bytes):
    """The WS chunk is solved for in closed form; checked here against the GLB need of every chunk size one by
    one: the chosen chunk fits and one more m-tile would not (or the chunk is all of M)."""
    arch = load_arch("fgmp", [f"memory.glb.size_bytes={glb_bytes}"])
    bw, usable = worst_block_bits(arch), arch.memory.glb.usable_tile_bytes * 8
    rng = np.random.default_rng(glb_bytes)
    for _ in range(300):
        m, kb, n = (int(v) for v in rng.integers(1, (600, 80, 3000)))
        shape = OpShape(m, kb, n, 1, bool(rng.integers(2)))
        tm, tn, tkb = (int(v) for v in rng.integers(1, (40, 128, 40)))
        mt = -(-m // tm)
        for x_res in (True, False):
            fits = [_glb_need(arch, bw, shape, tm, tn, tkb, ct, x_res, False, True) <= usable
                    for ct in range(1, mt + 1)]
            expected = max((ct for ct, ok in enumerate(fits, 1) if ok), default=0)
            assert all(fits[:expected]) and _max_chunk(arch, bw, shape, Mapping("weight_stationary", tm, tn, tkb),
                                                       x_res) == expected
