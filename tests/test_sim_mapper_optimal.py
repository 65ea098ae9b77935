"""The mapper's choice is optimal under its documented objective, checked by brute force on small GEMMs.

For each random tiny arch and GEMM this file enumerates every legal tiling itself (every tile_m, tile_k_blocks,
M-chunk and residency at the full lane width, legal when the buffer table of :mod:`fgmpsim.sim.mapping` says it
fits; a whole resident W of static weights at its exact size in a packed GLB, docs/microarchitecture.md) and prices
it with worst-case DRAM bits, then GLB bits, then the tile count, written here from the data
movement of :mod:`fgmpsim.sim.hw.traffic` with every block at its worst-case size (the largest block the datapath
stores plus its metadata):

* DRAM: the weights once per M-chunk (WS) or once / once per m-tile (OS, resident or not), X once (resident) or
  once per n-tile, the outputs once (the same for every tiling, left out);
* GLB: every DRAM fill written once; the weights read once per fill to the PEs (WS: per chunk; OS: per m-tile),
  X read once per n-tile; WS partial sums written and read back ``k_tiles - 1`` times for every row of a chunk of
  more than one m-tile; the outputs (the same for every tiling, left out).

The mapper's choice must be legal and no legal tiling may beat it: ``(dram, glb, tiles)`` is lexicographically
minimal. An explicit mapping must be refused exactly when none of its residencies is legal."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.errors import MappingError
from fgmpsim.sim import Mapping
from fgmpsim.sim.mapping import plan_op
from fgmpsim.trace import GemmOp

BLOCK = 4


def _arch(rng: np.random.Generator, dataflow: str):
    over = {"pe_array.pes": int(rng.integers(1, 4)), "pe_array.lanes_per_pe": int(rng.integers(1, 4)),
            "pe_array.vector_width": BLOCK, "pe_array.dataflow": dataflow,
            "memory.glb.size_bytes": int(rng.integers(40, 400)),
            "memory.weight_buffer.size_bytes": int(rng.integers(16, 120)),
            "memory.input_buffer.size_bytes": int(rng.integers(16, 120)),
            "memory.accum_buffer.size_bytes": int(rng.integers(16, 120))}
    for level in ("glb", "weight_buffer", "input_buffer", "accum_buffer"):
        over[f"memory.{level}.double_buffered"] = bool(rng.integers(0, 2))
    return load_arch(("fgmp", "fp8_baseline", "nvfp4")[int(rng.integers(0, 3))], over)


def _usable(level) -> float:
    """Usable bits for one tile: whole bytes, half of them (rounded down) when double buffered."""
    return level.size_bytes // (2 if level.double_buffered else 1) * 8


def _worst_block(arch) -> int:
    st, vw = arch.storage, arch.pe_array.vector_width
    sizes = {"fp4": vw * st.fp4_value_bits + st.fp4_scale_bits, "fp8": vw * st.fp8_value_bits + st.fp8_scale_bits}
    return max(sizes[p] for p in arch.pe_array.datapath_precisions) + st.metadata_bits_per_block


def _resident_w(arch, n: int, kb: int) -> int:
    """GLB bits of all of W when resident (OS). The weights are static and known when the op is compiled: a packed
    GLB on a mixed datapath reserves their exact size (here every block is NVFP4: the test's maps are all FP4),
    elsewhere every block is reserved at the worst case."""
    st, vw = arch.storage, arch.pe_array.vector_width
    if set(arch.pe_array.datapath_precisions) == {"fp4", "fp8"} and st.layout.glb == "packed":
        return n * kb * (vw * st.fp4_value_bits + st.fp4_scale_bits + st.metadata_bits_per_block)
    return n * kb * _worst_block(arch)


def _full_width(arch, n: int) -> int:
    pe = arch.pe_array
    return min(n, pe.lanes if pe.dataflow == "weight_stationary" else pe.lanes_per_pe)


def _tilings(arch, m: int, kb: int, n: int, consumer: bool, tn: int | None = None):
    """Every legal tiling with ``tn`` channels per tile (default: the full lane width): (tile_m, tile_n,
    tile_k_blocks, m-tiles per chunk, x_resident, w_resident)."""
    pe, mem, st = arch.pe_array, arch.memory, arch.storage
    ws = pe.dataflow == "weight_stationary"
    bw, ps, vw = _worst_block(arch), st.psum_bits, pe.vector_width
    tn = tn or _full_width(arch, n)
    lanes = min(tn, pe.lanes_per_pe)
    for tm in range(1, (m if ws else min(m, pe.pes)) + 1):
        mt = -(-m // tm)
        for tk in range(1, kb + 1):
            kt = -(-kb // tk)
            if ws:
                pe_needs = ((mem.weight_buffer, lanes * tk * bw), (mem.input_buffer, tm * tk * bw),
                            (mem.accum_buffer, lanes * tm * ps))
            else:
                pe_needs = ((mem.weight_buffer, tn * tk * bw), (mem.input_buffer, tk * bw),
                            (mem.accum_buffer, tn * ps))
            if any(need > _usable(level) for level, need in pe_needs):
                continue
            out = -(-tm * tn // vw) * bw if consumer else tm * tn * st.unquantized_output_bits
            for chunk in (range(1, mt + 1) if ws else (1,)):
                rows = min(chunk * tm, m)
                for x_res in (True, False):
                    for w_res in ((False,) if ws else (True, False)):
                        if ws:
                            glb = (tn * tk * bw + (rows * kb * bw if x_res else tm * tk * bw)
                                   + (rows * tn * ps if kt > 1 and chunk > 1 else 0) + out)
                        else:
                            glb = (_resident_w(arch, n, kb) if w_res else tn * tk * bw) \
                                + (tm * kb * bw if x_res else tm * tk * bw) + out
                        if glb <= _usable(mem.glb):
                            yield tm, tn, tk, chunk, x_res, w_res


def _objective(arch, m: int, kb: int, n: int, repeat: int, tiling: tuple) -> tuple[int, int, int]:
    tm, tn, tk, chunk, x_res, w_res = tiling
    bw, ps = _worst_block(arch), arch.storage.psum_bits
    mt, nt, kt = -(-m // tm), -(-n // tn), -(-kb // tk)
    w_bits, x_bits = n * kb * bw, m * kb * bw
    x_loads = 1 if x_res else nt
    if arch.pe_array.dataflow == "weight_stationary":
        chunks = [min(chunk, mt - c) for c in range(0, mt, chunk)]
        spilled = sum(min(m, (c + length) * tm) - c * tm for c, length in zip(range(0, mt, chunk), chunks)
                      if length > 1 and kt > 1)
        dram = w_bits * len(chunks) + x_bits * x_loads
        glb = 2 * w_bits * len(chunks) + x_bits * (x_loads + nt) + 2 * spilled * n * ps * (kt - 1)
    else:
        w_loads = 1 if w_res else mt
        dram = w_bits * w_loads + x_bits * x_loads
        glb = w_bits * (w_loads + mt) + x_bits * (x_loads + nt)
    return dram * repeat, glb * repeat, repeat * mt * nt * kt


def _chosen(tiling) -> tuple:
    mp = tiling.mapping
    chunk = tiling.m_tiles if mp.chunk_m is None else min(tiling.m_tiles, mp.chunk_m // mp.tile_m)
    return (mp.tile_m, mp.tile_n, mp.tile_k_blocks, chunk if tiling.ws else 1, tiling.x_resident,
            tiling.w_resident)


@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary"])
def test_mapper_choice_is_optimal_against_brute_force(dataflow):
    checked = 0
    for seed in range(300):
        rng = np.random.default_rng([seed, dataflow == "weight_stationary"])
        arch = _arch(rng, dataflow)
        m, kb, n, repeat = (int(rng.integers(1, 9)), int(rng.integers(1, 7)), int(rng.integers(1, 9)),
                            int(rng.integers(1, 3)))
        consumer = bool(rng.integers(0, 2))
        legal = list(_tilings(arch, m, kb, n, consumer))
        if not legal:
            continue  # nothing fits at the full lane width: the mapper narrows the tiles (not checked here)
        op = GemmOp("g", 0, "linear", m, kb * BLOCK, n, repeat, np.zeros((n, kb), bool), np.zeros((m, kb), bool),
                    consumer="c" if consumer else None)
        chosen = _chosen(plan_op(arch, op))
        assert chosen in legal, f"seed {seed}: the mapper chose an illegal tiling {chosen}"
        best = min(_objective(arch, m, kb, n, repeat, t) for t in legal)
        got = _objective(arch, m, kb, n, repeat, chosen)
        assert got == best, f"seed {seed} (M={m} KB={kb} N={n}): mapper {chosen} costs {got}, optimum {best}"
        checked += 1
    assert checked >= 150


@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary"])
def test_explicit_mappings_are_accepted_exactly_when_they_fit(dataflow):
    """A random explicit mapping (tile sizes, WS chunk) is refused exactly when no residency of it fits the buffer
    table; accepted, its residency is legal and the best of that mapping's legal residencies."""
    refused = accepted = 0
    for seed in range(300):
        rng = np.random.default_rng([seed, 7, dataflow == "weight_stationary"])
        arch = _arch(rng, dataflow)
        pe, ws = arch.pe_array, dataflow == "weight_stationary"
        m, kb, n = int(rng.integers(1, 9)), int(rng.integers(1, 7)), int(rng.integers(1, 9))
        tm = int(rng.integers(1, (m if ws else min(m, pe.pes)) + 1))
        tn, tk = int(rng.integers(1, _full_width(arch, n) + 1)), int(rng.integers(1, kb + 1))
        chunk = int(rng.integers(1, -(-m // tm) + 1)) if ws and rng.random() < 0.5 else None
        mapping = Mapping(dataflow, tm, tn, tk, None if chunk is None else chunk * tm)
        consumer = bool(rng.integers(0, 2))
        legal = [t for t in _tilings(arch, m, kb, n, consumer, tn)
                 if t[:3] == (tm, tn, tk) and (not ws or chunk is None or t[3] == chunk)]
        op = GemmOp("g", 0, "linear", m, kb * BLOCK, n, 1, np.zeros((n, kb), bool), np.zeros((m, kb), bool),
                    consumer="c" if consumer else None)
        try:
            chosen = _chosen(plan_op(arch, op, mapping))
        except MappingError:
            assert not legal, f"seed {seed}: {mapping} refused, but {legal[0]} fits"
            refused += 1
            continue
        assert chosen in legal, f"seed {seed}: {mapping} accepted as {chosen}, which does not fit"
        assert _objective(arch, m, kb, n, 1, chosen) == min(_objective(arch, m, kb, n, 1, t) for t in legal)
        accepted += 1
    assert refused >= 30 and accepted >= 30


def test_a_resident_w_reserves_its_fp8_blocks_at_their_size():
    """fgmp OS, packed single-buffered GLB, 16-element blocks: a 4 x 32 x 4 op whose W is all FP8 (8 blocks of
    16 x 8 + 1 metadata bit = 129 bits: 1032, not the 8 x 73 = 584 of NVFP4 blocks) on 1 x 1 x 1 tiles. Resident W
    and X need 1032 + X (2 worst-case blocks, 258) + the output tile (one BF16 value, 16) = 1306 bits: W stays
    from 164 bytes on and streams at 163."""
    op = GemmOp("g", 0, "linear", 4, 32, 4, 1, np.ones((4, 2), bool), np.zeros((4, 2), bool))
    for size, resident in ((163, False), (164, True)):
        arch = load_arch("fgmp_output_stationary", {"memory.glb.size_bytes": size,
                                                    "memory.glb.double_buffered": False})
        assert plan_op(arch, op, Mapping("output_stationary", 1, 1, 1)).w_resident is resident
