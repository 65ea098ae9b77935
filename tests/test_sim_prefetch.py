"""Next-op weight prefetch (memory.prefetch_next_weights, fgmpsim.sim.hw.prefetch): the next op's first weight fill
runs in the free DRAM-side cycles of the previous op's tail; hand-computed savings, the GLB room rule, unchanged
counts and dynamic energy, and tile == reference == event on random chains and causal bands."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_sim_causal import _attention_pair
from test_sim_engines import OWN, random_arch, random_mapping, random_trace, tile_matching_reference
from test_sim_events import differing, event_case
from test_sim_glb_residency import _overrides

from fgmpsim.arch import load_arch
from fgmpsim.energy import ACTIONS
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace

FAST = 10 ** 6
ENGINES = ("tile", "reference", "event")
ONE_TILE = Mapping("weight_stationary", 2, 2, 2)
STALLS = ("stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles", "stall_fill_cycles")
STATIC = {"leakage_cycles", "clock_cycles"}


def _arch(prefetch: bool, pair_cycles: int = 2, glb_bytes: int = 2 ** 20, **extra):
    """FP8 baseline, 1 PE x 2 lanes, 4-element blocks (FP8: 32 bits, no metadata), every buffer double buffered,
    every rate 10**6 bits/cycle (1 cycle per transfer) except DRAM reads: 8 bits/cycle (a 4-block tile: 16)."""
    o = {"pe_array.pes": 1, "pe_array.lanes_per_pe": 2, "pe_array.vector_width": 4,
         "pe_array.cycles_per_block_pair.fp8xfp8": pair_cycles, "memory.prefetch_next_weights": prefetch}
    for level in ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer"):
        o[f"memory.{level}.read_bits_per_cycle"] = o[f"memory.{level}.write_bits_per_cycle"] = FAST
        if level != "dram":
            o[f"memory.{level}.size_bytes"] = 2 ** 20
    o["memory.dram.read_bits_per_cycle"] = 8
    o["memory.glb.size_bytes"] = glb_bytes
    o.update(extra)
    return load_arch("fp8_baseline", o)


def _two_ops(operand: str = "act") -> Trace:
    """op0 and op1: 2 x 8 x 2 each (M x K x N: 2 x 2 blocks of X, 2 x 2 of W), all FP8; op0 feeds op1."""
    full = np.ones((2, 2), bool)
    return Trace("two", (GemmOp("op0", 0, "linear", 2, 8, 2, 1, full, full, consumer="op1", consumer_operand=operand),
                         GemmOp("op1", 1, "linear", 2, 8, 2, 1, full, full)), 4)


def _rows(arch, trace=None, engine="tile", **kw):
    return simulate(trace or _two_ops(), arch, engine=engine, mapping=ONE_TILE, **kw).to_frame()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pair_cycles,compute,saving", [(2, 8, 11), (4, 16, 16)])
def test_two_op_chain_by_hand(engine, pair_cycles, compute, saving):
    """One tile per op, steps 0-4 (LEAD = 2, everything double buffered):

    * step 0: DRAM -> GLB W (4 blocks x 32 bits / 8 = 16) + X (16) on the DRAM side: 32;
    * step 1: GLB -> PE W + X, 1 + 1 = 2 (GLB side);
    * step 2: compute, each lane 2 rows x 2 blocks x ``pair_cycles``: 8 (or 16);
    * step 3: drain 1 (GLB side); step 4: write-back 1 (DRAM side).

    op0 = 32 + 2 + 8 + 1 + 1 = 44 (52). Its tail window is steps 1-4 (its last fill is in step 0), free DRAM-side
    cycles T = 2 + 8 + 1 + 0 = 11 (2 + 16 + 1 = 19). op1's W fill alone is c = 16 cycles, so h = min(16, T) = 11
    (16) of it run in op0's tail: op1's step 0 drops from 32 to 21 (16): op1 = 44 - 11 = 33 (52 - 16 = 36), the
    saving all out of stall_dram (33 -> 22, 33 -> 17). op0 is unchanged; op1 keeps its 32 busy loader cycles."""
    off, on = _rows(_arch(False, pair_cycles), engine=engine), _rows(_arch(True, pair_cycles), engine=engine)
    op0 = 36 + compute
    assert list(off.cycles) == [op0, op0] and list(off.stall_dram_cycles) == [33, 33]
    assert list(on.cycles) == [op0, op0 - saving]
    assert list(on.stall_dram_cycles) == [33, 33 - saving]
    assert list(on.compute_cycles) == [compute, compute] and list(on.busy_loader_cycles) == [32, 32]
    assert list(on.start_cycle) == [0, op0] and list(on.end_cycle) == [op0, 2 * op0 - saving]
    for frame in (off, on):
        assert (frame.compute_cycles + frame[list(STALLS)].sum(axis=1) == frame.cycles).all()


def test_analytic_bound_takes_the_first_weight_fill_off_the_dram_side():
    """op1's DRAM side: (128 + 128 bits) / 8 per cycle + its 64-bit write-back / 10**6, rounded up: 33 cycles; with
    the prefetch its first W fill (16 cycles) comes off: 17, still below the tile engine's 33."""
    off, on = _rows(_arch(False), engine="analytic"), _rows(_arch(True), engine="analytic")
    assert list(off.cycles) == [33, 33] and list(on.cycles) == [33, 17]
    tile = _rows(_arch(True))
    assert list(tile.bound_cycles) == [33, 17] and (tile.cycles >= tile.bound_cycles).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_glb_without_room_for_the_tile_gives_no_prefetch(engine):
    """op0's GLB step (the mapper's worst case): W tile 128 + X rows 128 + output tile 32 = 288 bits, two in flight
    = 576 bits; op1's W tile needs 128 more: 704 bits = 88 bytes. At 87 bytes (still enough for the mapper: 43
    usable bytes >= 36) op1 runs exactly as without the option; at 88 it saves its 11 cycles."""
    off = _rows(_arch(False, glb_bytes=87), engine=engine)
    tight, room = (_rows(_arch(True, glb_bytes=size), engine=engine) for size in (87, 88))
    assert tight.equals(off)
    assert list(room.cycles) == [44, 33]


@pytest.mark.parametrize("engine", ENGINES)
def test_glb_room_counts_the_output_the_previous_op_keeps(engine):
    """With kept outputs op0's 64-bit output (2 rows x one 4-element FP8 block of 32 bits, its write-back without
    the option) stays in the GLB during op0, beside its two 288-bit steps in flight; op1's 128-bit W tile needs
    room on top: 128 + 576 + 64 = 768 bits = 96 bytes. (Keeping needs 64 + 2 x 320 = 704 bits on op1's side: W
    128 + X 128 + its unconsumed output tile, 4 x 16-bit outputs; both sizes keep.) At 95 bytes op1 runs as without
    the option; at 96 it saves op0's free tail T = 2 + 8 + 1 = 11 cycles (no write-back step): 28 -> 17."""
    keep = {"memory.glb.keep_outputs": True}
    off = _rows(_arch(False, glb_bytes=95, **keep), engine=engine)
    tight, room = (_rows(_arch(True, glb_bytes=size, **keep), engine=engine) for size in (95, 96))
    assert list(off.dram_write_bits) == [0, 64] and list(off.cycles) == [43, 28]
    assert tight.equals(off)
    assert list(room.cycles) == [43, 17]


def test_weights_written_by_the_previous_op_are_not_prefetched():
    """op1's W is op0's output (consumer_operand = weight): not in DRAM before op0 ends, so no saving."""
    trace = _two_ops("weight")
    assert _rows(_arch(True), trace).equals(_rows(_arch(False), trace))


@pytest.mark.parametrize("static", ["true", "false"])
def test_counts_and_dynamic_energy_are_unchanged(static):
    """Same bits moved: every action count but the static cycles equal, every dynamic energy component equal;
    static energy (per cycle) falls by the saved cycles x (leakage + clock pJ per cycle), 0 when static is off."""
    arch = _arch(True, **{"static.enabled": static})
    off, on = _rows(_arch(False, **{"static.enabled": static})), _rows(arch)
    for action in set(ACTIONS) - STATIC:
        assert list(on[action]) == list(off[action]), action
    dynamic = [c for c in on.columns
               if c.startswith("energy_") and c not in ("energy_pj", "energy_leakage_pj", "energy_clock_pj")]
    assert on[dynamic].equals(off[dynamic])
    saved = off.cycles - on.cycles
    assert list(saved) == [0, 11]
    per_cycle = arch.energy.leakage_pj_per_cycle + arch.energy.clock_pj_per_cycle
    static_pj = off.energy_leakage_pj + off.energy_clock_pj - on.energy_leakage_pj - on.energy_clock_pj
    assert np.allclose(static_pj, saved * per_cycle)
    assert np.allclose(off.energy_pj - on.energy_pj, saved * per_cycle)
    assert (static == "false") == (per_cycle == 0)


def test_systolic_array_refuses_the_option():
    with pytest.raises(ConfigError, match="memory.prefetch_next_weights"):
        load_arch("systolic_16x16", ["memory.prefetch_next_weights=true"])


@pytest.mark.parametrize("block", range(3))
def test_engines_agree_with_prefetch_on_random_chains(block):
    """tile == reference == event on random chains of tiny GEMMs (random buffering, rates, tiny GLBs, kept outputs
    on a quarter of them); no op slower than without the option and the first op unchanged, every count but the
    static cycles unchanged, analytic below tile, compute + stalls = cycles and the ops back to back."""
    checked = saved = 0
    for seed in range(block * 40, block * 40 + 40):
        rng = np.random.default_rng(seed + 5000)
        name = ("fgmp", "fp8_baseline")[seed % 3 == 0]
        base = random_arch(rng, ("weight_stationary", "output_stationary")[seed % 2], name)
        sets = [f"{key}={value}" for key, value in _overrides(base).items()]
        sets += ["memory.glb.keep_outputs=true"] if seed % 4 == 0 else []
        arch, plain = load_arch(name, sets + ["memory.prefetch_next_weights=true"]), load_arch(name, sets)
        trace = random_trace(rng, 3)
        mapping = random_mapping(rng, arch) if rng.random() < 0.4 else None
        try:
            tile = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue
        off = simulate(trace, plain, mapping=mapping).to_frame()
        for engine in ("reference", "event"):
            other = simulate(trace, arch, engine=engine, mapping=mapping).to_frame()
            differing = [c for c in OWN if not tile[c].equals(other[c])]
            assert not differing, (seed, engine, differing)
        analytic = simulate(trace, arch, engine="analytic", mapping=mapping).to_frame()
        assert (tile.cycles >= analytic.cycles).all() and (tile.cycles >= tile.bound_cycles).all(), seed
        assert (tile.cycles <= off.cycles).all() and tile.cycles.iloc[0] == off.cycles.iloc[0], seed
        assert (tile.compute_cycles + tile[list(STALLS)].sum(axis=1) == tile.cycles).all(), seed
        assert list(tile.end_cycle) == list(tile.cycles.cumsum()), seed
        for action in set(ACTIONS) - STATIC:
            assert tile[action].equals(off[action]), (seed, action)
        saved += int((off.cycles - tile.cycles).sum())
        checked += 1
    assert checked >= 30 and saved > 0


@pytest.mark.parametrize("arch_name", ["fgmp", "fgmp_output_stationary"])
def test_causal_bands_prefetch_from_the_band_before(arch_name):
    """A causal qk -> pv -> linear chain in 16-row bands, DRAM slowed to 64 bits/cycle so fills are exposed: every
    band is a unit of the chain, tile == reference == event, and the bands after the first save cycles."""
    sets = ["memory.dram.read_bits_per_cycle=64"]
    trace = _attention_pair(np.random.default_rng(7), 40, 40, 2)
    runs = {engine: simulate(trace, load_arch(arch_name, sets + ["memory.prefetch_next_weights=true"]), engine=engine,
                             causal_band_rows=16).to_frame() for engine in ENGINES}
    off = simulate(trace, load_arch(arch_name, sets), causal_band_rows=16).to_frame()
    for engine in ("reference", "event"):
        differing = [c for c in OWN if not runs[engine][c].equals(runs["tile"][c])]
        assert not differing, (engine, differing)
    assert (runs["tile"].cycles < off.cycles).all()


@pytest.mark.parametrize("block", range(2))
def test_event_equals_tile_with_prefetch_in_every_buffering(block):
    """The event engine's cases (every double-buffering combination, tight and loose buffers) with the option on:
    event == tile in every column but simpy_events, reference == tile on its own columns (seed 36 once caught a
    tail window that moved when the op's own first fill had been hidden entirely)."""
    checked = 0
    for seed in range(block * 32, block * 32 + 32):
        arch, trace, mapping = event_case(seed)
        arch = replace(arch, memory=replace(arch.memory, prefetch_next_weights=True))
        if (tile := tile_matching_reference(trace, arch, mapping, f"seed {seed}")) is None:
            continue
        event = simulate(trace, arch, engine="event", mapping=mapping).to_frame()
        assert not differing(tile, event), (seed, differing(tile, event))
        checked += 1
    assert checked >= 25
