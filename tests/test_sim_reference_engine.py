"""The per-cycle reference engine on its own: it imports nothing of the tile engine, counts a partial last block
along K as a whole block, adds an FP8 block scale to every FP8 block, and rounds the output's FP8 share half up
(hand numbers in the docstrings)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from test_sim_hand import hand_arch

import fgmpsim.sim.engines.reference as reference
from fgmpsim.arch import load_arch
from fgmpsim.errors import TraceError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.sim.engines.reference import Decision, check_size, reference_op
from fgmpsim.sim.engines.reference.cycles import Job, Port, Step, build_steps, stepped_cycles
from fgmpsim.sim.engines.reference.operands import output_of, stored_map
from fgmpsim.sim.engines.reference.tiles import OpBuilder
from fgmpsim.trace import GemmOp, Trace

FORBIDDEN = ("fgmpsim.sim.hw", "fgmpsim.sim.vector", "fgmpsim.sim.schedule", "fgmpsim.sim.mapping",
             "fgmpsim.sim.engines.tile", "fgmpsim.sim.engines.event", "fgmpsim.sim.engines.analytic",
             "fgmpsim.sim.limits", "fgmpsim.energy")


def test_reference_engine_imports_nothing_of_the_tile_engine():
    package = Path(reference.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    shared = sorted(m for m in imported if m.startswith(FORBIDDEN))
    assert not shared, f"the reference engine imports tile-engine code: {shared}"


def _op(k: int, name: str = "g") -> GemmOp:
    rng = np.random.default_rng(7)
    return GemmOp(name, 0, "linear", 3, k, 2, 2, rng.random((2, 2, 3)) < 0.5, rng.random((3, 3)) < 0.5)


@pytest.mark.parametrize("dataflow, decision", [
    ("weight_stationary", Decision("weight_stationary", 2, 2, 2, 2, False, False)),
    ("output_stationary", Decision("output_stationary", 2, 2, 1, None, True, False)),
])
def test_a_partial_last_block_costs_a_whole_block(dataflow, decision):
    """K = 10 on 4-element blocks is KB = ceil(10 / 4) = 3 blocks, the last one half padding: every count and
    cycle equals K = 12's with the same maps, and the MACs are M * N * KB * 4 per repeat = 3 * 2 * 3 * 4 * 2 = 144."""
    arch = hand_arch(dataflow, pes=2, **{"memory.dram.read_bits_per_cycle": 7})
    partial, whole = _op(10), _op(12)
    got = reference_op(Trace("partial", (partial,), block_size=4), partial, arch, decision)
    want = reference_op(Trace("whole", (whole,), block_size=4), whole, arch, decision)
    assert (got.counts, got.timing, got.operands) == (want.counts, want.timing, want.operands)
    assert sum(got.counts[f"macs_fp{w}xfp{a}"] for w in (4, 8) for a in (4, 8)) == 144
    assert got.counts["block_pairs"] == 3 * 2 * 3 * 2


@pytest.mark.parametrize("engine", ["reference", "tile"])
def test_an_fp8_block_scale_adds_its_bits_to_every_fp8_block(engine):
    """storage.fp8_scale_bits = 8 (the headline's "FP8 blocks carry an 8-bit scale too"): a 2 x 32 x 2 all-FP8 GEMM
    on 16-element blocks reads its 4 W and 4 X blocks from DRAM once, (16 x 8 + 8) bits each = 1088 bits
    (1024 without the scale)."""
    op = GemmOp("g", 0, "linear", 2, 32, 2, 1, np.ones((2, 2), bool), np.ones((2, 2), bool))
    trace = Trace("scaled", (op,), block_size=16)
    for scale, bits in ((8, 8 * (16 * 8 + 8)), (0, 8 * 16 * 8)):
        arch = load_arch("fp8_baseline", [f"storage.fp8_scale_bits={scale}"])
        assert simulate(trace, arch, engine=engine).rows[0]["dram_read_bits"] == bits


def test_size_guard_counts_partial_blocks():
    """201 x 1000 x 1 with K = 1 on 1-element blocks is 201,000 block pairs; with K = 3 on 4-element blocks each
    row still has one (partial) block: 201,000 block pairs, over the 200,000 the engine takes."""
    op = GemmOp("big", 0, "linear", 201, 3, 1000, 1, np.zeros((1000, 1), bool), np.zeros((201, 1), bool))
    with pytest.raises(TraceError) as err:
        check_size(Trace("big", (op,), block_size=4))
    assert err.value.field == "engine" and "200000" in str(err.value)


def test_size_guard_takes_exactly_its_limit_counting_every_repeat():
    """100 x 1 x 1000 on 1-element blocks is 100,000 block pairs per repeat: 2 repeats are exactly the 200,000 the
    engine takes, 3 are over."""
    def trace(repeat):
        op = GemmOp("r", 0, "linear", 100, 1, 1000, repeat, np.zeros((repeat, 1000, 1), bool),
                    np.zeros((repeat, 100, 1), bool))
        return Trace("r", (op,), block_size=1)

    check_size(trace(2))
    with pytest.raises(TraceError) as err:
        check_size(trace(3))
    assert (err.value.what, err.value.field, err.value.fix) == (
        "the reference engine steps every cycle and takes at most 200000 block pairs, this trace has 300000",
        "engine", "use engine='tile' (exact, vectorized) or a smaller GEMM")


@pytest.mark.parametrize("engine", ["tile", "reference"])
def test_output_fp8_share_rounds_half_up(engine):
    """g (M = 3, N = 4) feeds the activations of c, whose map is one FP8 block in 2: g's output is 3 rows of one
    4-element block, FP8 share 3 * 1 / 2 = 1.5 -> 2 blocks (half up), so 2 x 32 + 24 = 88 data bits and 3
    metadata bits are written back, and the AQU quantizes 3 blocks."""
    g = GemmOp("g", 0, "linear", 3, 4, 4, 1, np.zeros((4, 1), bool), np.zeros((3, 1), bool), consumer="c")
    c = GemmOp("c", 1, "linear", 2, 4, 1, 1, np.zeros((1, 1), bool), np.array([[True], [False]]))
    arch = hand_arch(**{"pe_array.lanes_per_pe": 4})
    r = simulate(Trace("half", (g, c), block_size=4), arch, engine=engine,
                 mapping={"g": Mapping("weight_stationary", 3, 4, 1)}).to_frame().iloc[0]
    assert (r.output_blocks, r.output_fp8_blocks) == (3, 2)
    assert (r.dram_write_bits, r.dram_write_metadata_bits, r.aqu_blocks) == (88, 3, 3)


@pytest.mark.parametrize("engine", ["tile", "reference"])
def test_an_output_that_becomes_v_is_blocked_along_its_tokens(engine):
    """v (4 tokens x 8 channels) is attn_pv's V (its W): its blocks run along the tokens, counted by elements,
    ceil(32 / 16) = 2 blocks (each of its 4 rows padded to a block would be 4); FP8 baseline: 2 x 128 bits
    written back."""
    v = GemmOp("v", 0, "linear", 4, 16, 8, 1, np.zeros((8, 1), bool), np.zeros((4, 1), bool), consumer="pv",
               consumer_operand="weight")
    pv = GemmOp("pv", 0, "attn_pv", 2, 4, 8, 1, np.zeros((8, 1), bool), np.zeros((2, 1), bool), False)
    r = simulate(Trace("v", (v, pv), block_size=16), load_arch("fp8_baseline"), engine=engine).rows[0]
    assert (r["output_blocks"], r["dram_write_bits"]) == (2, 2 * 128)


def test_the_stepped_cycle_estimate_counts_every_lane_and_port_cycle():
    """The guard's work estimate, by hand. Step 0: one PE whose 2 lanes take 3, 2 and 4, 1 block-pair cycles,
    pipeline drain 2: in lock step each pair lasts its slowest lane's, max(3, 4) + max(2, 1) = 6, plus the drain 2,
    for each of the 2 lanes = 16; a serialized drain, GLB part 10 bits at 4 per cycle
    (3 cycles, 1 port) and AQU part 6 outputs at 2 per cycle after a 3-cycle latency (6 cycles, 1 port); a queued
    DRAM fill through 2 ports, 7 bits at 2 and 5 at 5 per cycle: max(4, 1) = 4 cycles x 2 ports = 8. Step 1 (no
    tile): a queued GLB fill of 9 bits at 3 per cycle, 3. In all 16 + 3 + 6 + 8 + 3 = 36."""
    first = Step(lanes=[[[3, 2], [4, 1]]], drain=2,
                 serial=[("glb", Job("writer", [Port(10, 4)]), Job("aqu", [Port(6, 2, 3)]))])
    first.queues["dram"].append(Job("loader", [Port(7, 2), Port(5, 5)]))
    second = Step()
    second.queues["glb"].append(Job("distributor", [Port(9, 3)]))
    assert stepped_cycles({0: first, 1: second}) == 36


def test_the_stepped_cycle_guard_takes_exactly_its_limit(monkeypatch):
    """An op whose estimate is exactly the limit runs; one cycle less of limit refuses it, naming the op."""
    op = _op(12)
    trace, arch = Trace("guard", (op,), block_size=4), hand_arch(pes=2)
    decision = Decision("weight_stationary", 2, 2, 2, 2, False, False)
    builder = OpBuilder(arch, decision, stored_map(op.weight_map, arch, op.weight_format),
                        stored_map(op.act_map, arch, op.act_format), output_of(trace, op, arch), op.m, op.n, 3,
                        op.repeat, (op.weight_format, op.act_format))
    builder.build()
    work = stepped_cycles(build_steps(builder.lanes, builder.moves, arch)[0])
    monkeypatch.setattr(reference, "MAX_STEPPED_CYCLES", work)
    reference_op(trace, op, arch, decision)
    monkeypatch.setattr(reference, "MAX_STEPPED_CYCLES", work - 1)
    with pytest.raises(TraceError) as err:
        reference_op(trace, op, arch, decision)
    assert err.value.field == "engine" and f"op {op.name!r} would take {work:,} lane and transfer cycles" in str(
        err.value)
    assert work < 10 ** 6 and "(~0 s at ~2 M per second)" in str(err.value)   # under a second at 2 M cycles/s
