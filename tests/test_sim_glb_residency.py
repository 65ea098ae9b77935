"""GLB-resident outputs (memory.glb.keep_outputs, fgmpsim.sim.hw.glb_residency): the producer's write-back and the
consumer's DRAM fill of that operand disappear when the output fits; every engine agrees."""

from __future__ import annotations

import numpy as np
import pytest
from test_sim_causal import _attention_pair
from test_sim_engines import OWN, random_arch, random_mapping, random_trace

from fgmpsim.arch import load_arch
from fgmpsim.errors import MappingError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace

ONES = np.ones


def _chain(operand: str = "act") -> Trace:
    """op0 (4 x 16 x 16) feeds op1 (4 rows, K = 16, N = 8) as its X (or, ``weight``, op2 with N = 4 as its W)."""
    op0 = GemmOp("op0", 0, "linear", 4, 16, 16, 1, ONES((16, 1), bool), ONES((4, 1), bool), consumer="op1",
                 consumer_operand=operand)
    if operand == "act":
        op1 = GemmOp("op1", 1, "linear", 4, 16, 8, 1, ONES((8, 1), bool), ONES((4, 1), bool))
    else:  # op0's 4 x 16 output is op1's W [N = 4, K = 16]
        op1 = GemmOp("op1", 1, "attn_qk", 2, 16, 4, 1, ONES((4, 1), bool), ONES((2, 1), bool), False)
    return Trace("chain", (op0, op1), 16)


@pytest.mark.parametrize("operand", ["act", "weight"])
def test_kept_output_by_hand(operand):
    """All FP8 on the FP8 baseline (128-bit blocks, no metadata): op0 writes 4 output blocks, op1 then reads only
    its other operand from DRAM (act: W = 8 blocks; weight: X = 2 blocks)."""
    trace = _chain(operand)
    off, on = (simulate(trace, load_arch("fp8_baseline", [f"memory.glb.keep_outputs={v}"])).rows
               for v in ("false", "true"))
    other = 8 if operand == "act" else 2
    assert off[0]["dram_write_bits"] == 4 * 128 and on[0]["dram_write_bits"] == 0
    assert off[1]["dram_read_bits"] == (other + 4) * 128 and on[1]["dram_read_bits"] == other * 128
    assert on[0]["glb_read_bits"] == off[0]["glb_read_bits"] - 4 * 128      # no write-back read
    assert on[1]["glb_write_bits"] == off[1]["glb_write_bits"] - 4 * 128    # no fill written
    assert on[0]["busy_writer_cycles"] < off[0]["busy_writer_cycles"]
    assert on[1]["busy_loader_cycles"] < off[1]["busy_loader_cycles"]
    assert on[1]["dram_write_bits"] == off[1]["dram_write_bits"]           # the last op writes back as before


def test_kept_output_still_passes_the_alignment_network_into_the_packed_glb():
    """On fgmp (every level packed) op0's AQU writes its 4 output blocks into the GLB through the alignment network
    whether or not they are written back: op0's aligned blocks are its lane reads + 4 either way."""
    trace = _chain("act")
    off, on = (simulate(trace, load_arch("fgmp", [f"memory.glb.keep_outputs={v}"])).rows for v in ("false", "true"))
    assert on[0]["dram_write_metadata_bits"] == 0 < off[0]["dram_write_metadata_bits"]
    meta = load_arch("fgmp").storage.metadata_bits_per_block
    lane_reads = (off[0]["weight_buffer_read_metadata_bits"] + off[0]["input_buffer_read_metadata_bits"]) // meta
    assert on[0]["align_blocks"] == off[0]["align_blocks"] == lane_reads + 4


def test_output_that_does_not_fit_goes_to_dram():
    """A 4 x 4096 FP8 output (1024 blocks x 128 bits = 16 KiB) cannot stay in a 4 KiB GLB."""
    op0 = GemmOp("op0", 0, "linear", 4, 16, 4096, 1, ONES((4096, 1), bool), ONES((4, 1), bool), consumer="op1")
    op1 = GemmOp("op1", 1, "linear", 4, 4096, 8, 1, ONES((8, 256), bool), ONES((4, 256), bool))
    trace = Trace("big", (op0, op1), 16)
    arch = load_arch("fp8_baseline", ["memory.glb.keep_outputs=true", "memory.glb.size_bytes=4096"])
    row = simulate(trace, arch).rows[0]
    assert row["dram_write_bits"] == 1024 * 128


def test_an_output_fits_the_glb_exactly_at_its_bits_plus_two_steps():
    """op0's kept output is 4 FP8 blocks = 512 bits. The mapper tiles op0 as one 4 x 16 x 1-block tile: a GLB step
    holds its W tile (16 blocks), X tile (4) and output tile (4 blocks) = 24 x 128 = 3072 bits, twice (double
    buffered): 512 + 6144 = 6656 bits = 832 bytes (op1's step, 8 + 4 blocks + 4 x 8 BF16 outputs = 2048 bits,
    needs less). A GLB of 832 bytes keeps the output; 831 bytes write it back to DRAM."""
    for size, kept in ((832, True), (831, False)):
        rows = simulate(_chain("act"), load_arch("fp8_baseline", ["memory.glb.keep_outputs=true",
                                                                  f"memory.glb.size_bytes={size}"])).rows
        assert [(r["tile_m"], r["tile_n"], r["tile_k_blocks"]) for r in rows] == [(4, 16, 1), (4, 8, 1)]
        assert rows[0]["dram_write_bits"] == (0 if kept else 4 * 128)
        assert rows[1]["dram_read_bits"] == (8 if kept else 12) * 128


def test_the_output_must_fit_beside_the_consumers_steps_too():
    """4-element FP8 blocks (32 bits), one tile per op. op0 (2 x 8 x 2) keeps its 64-bit output (2 rows, one
    partial block each) for op1 only if it fits beside two GLB steps of either op. op0's step (the mapper's worst
    case): W 128 + X 128 + its output tile, ceil(4 / 4) = 1 block = 288 bits; op1's (no consumer): W 128 + X 128 +
    4 16-bit outputs = 320. op1 sets the size: 64 + 2 x 320 = 704 bits = 88 bytes; at 87 op0 writes back. op2
    after them (1 x 4 x 1, an 80-bit step) changes nothing."""
    full, one = ONES((2, 2), bool), ONES((1, 1), bool)
    trace = Trace("three", (GemmOp("op0", 0, "linear", 2, 8, 2, 1, full, full, consumer="op1"),
                            GemmOp("op1", 1, "linear", 2, 8, 2, 1, full, full),
                            GemmOp("op2", 2, "linear", 1, 4, 1, 1, one, one)), 4)
    for size, kept in ((87, False), (88, True)):
        arch = load_arch("fp8_baseline", {"pe_array.vector_width": 4, "memory.glb.size_bytes": size,
                                          "memory.glb.keep_outputs": True})
        rows = simulate(trace, arch, mapping=Mapping("weight_stationary", 2, 2, 2)).rows
        assert [r["dram_write_bits"] for r in rows] == [0 if kept else 64, 64, 16]


def test_only_the_next_op_is_fed():
    """op0 feeds op2 with op1 in between: nothing stays."""
    ops = list(_chain().ops)
    ops[0] = GemmOp("op0", 0, "linear", 4, 16, 16, 1, ONES((16, 1), bool), ONES((4, 1), bool), consumer="op2")
    ops.append(GemmOp("op2", 2, "linear", 4, 16, 8, 1, ONES((8, 1), bool), ONES((4, 1), bool)))
    rows = simulate(Trace("gap", tuple(ops), 16), load_arch("fp8_baseline", ["memory.glb.keep_outputs=true"])).rows
    assert rows[0]["dram_write_bits"] == 4 * 128


def test_nothing_stays_beside_causal_bands():
    """q -> qk -> pv -> out with qk and pv causal: every pair has a banded op (q's consumer, both of the middle
    pair, out's producer), so in 16-row bands the run equals the one without the option; dense, all three
    outputs stay (the pairs fit: the option is what decides)."""
    rng = np.random.default_rng(3)
    q = GemmOp("q", 0, "linear", 40, 32, 32, 1, rng.random((32, 2)) < 0.4, rng.random((40, 2)) < 0.4,
               consumer="qk", consumer_operand="act")
    trace = Trace("q_pair", (q, *_attention_pair(rng, 40, 40, 1).ops), 16)
    runs = {(attention, keep): simulate(trace, load_arch("fgmp", [f"memory.glb.keep_outputs={keep}"]),
                                        attention=attention, causal_band_rows=16).to_frame()
            for attention in ("causal", "dense") for keep in ("false", "true")}
    assert runs["causal", "true"].equals(runs["causal", "false"])
    assert (runs["causal", "true"].dram_write_bits > 0).all()
    assert list(runs["dense", "true"].dram_write_bits[:3]) == [0, 0, 0]


@pytest.mark.parametrize("block", range(3))
def test_engines_agree_with_kept_outputs(block):
    """tile == reference == event, counts of analytic equal, on random chains of tiny GEMMs in tiny GLBs."""
    kept = checked = 0
    for seed in range(block * 40, block * 40 + 40):
        rng = np.random.default_rng(seed + 1000)
        dataflow = ("weight_stationary", "output_stationary")[seed % 2]
        base = random_arch(rng, dataflow, ("fgmp", "fp8_baseline")[seed % 3 == 0])
        arch = load_arch(("fgmp", "fp8_baseline")[seed % 3 == 0], [
            f"{key}={value}" for key, value in _overrides(base).items()] + ["memory.glb.keep_outputs=true"])
        trace = random_trace(rng, 3)
        mapping = random_mapping(rng, arch) if rng.random() < 0.4 else None
        try:
            tile = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue
        for engine in ("reference", "event"):
            other = simulate(trace, arch, engine=engine, mapping=mapping).to_frame()
            differing = [c for c in OWN if not tile[c].equals(other[c])]
            assert not differing, (seed, engine, differing)
        analytic = simulate(trace, arch, engine="analytic", mapping=mapping).to_frame()
        assert (tile.cycles >= analytic.cycles).all()
        kept += int((tile.dram_write_bits == 0).sum())
        checked += 1
    assert checked >= 20 and kept >= 3


def _overrides(arch) -> dict[str, object]:
    """The random arch's fields as --set overrides (so keep_outputs can be added on the same loader path)."""
    pe, mem = arch.pe_array, arch.memory
    out: dict[str, object] = {"pe_array.pes": pe.pes, "pe_array.lanes_per_pe": pe.lanes_per_pe,
                              "pe_array.vector_width": pe.vector_width, "pe_array.dataflow": pe.dataflow,
                              "aqu.blocks_per_cycle": arch.aqu.blocks_per_cycle,
                              "aqu.latency_cycles": arch.aqu.latency_cycles}
    for mode, cycles in zip(("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8"),
                            (c for row in pe.cycles_per_block_pair.as_table() for c in row)):
        out[f"pe_array.cycles_per_block_pair.{mode}"] = cycles
    for level in mem.levels():
        for field in ("size_bytes", "read_bits_per_cycle", "write_bits_per_cycle", "double_buffered"):
            value = getattr(level, field)
            if value is not None:
                out[f"memory.{level.name}.{field}"] = value
    return out
