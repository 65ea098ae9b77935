"""Unit costs kept across simulations (:mod:`fgmpsim.sim.unit_costs`): a point that changes only how a run is
priced reuses every unit's cost and gives the numbers of a fresh cache; a point that changes anything a cost is
derived from misses, and gives them too."""

from __future__ import annotations

from dataclasses import fields

import pytest

from fgmpsim.arch import Arch, load_arch
from fgmpsim.sim import simulate, unit_costs
from fgmpsim.trace import synth_trace


@pytest.fixture(scope="module")
def trace():
    # 64 tokens of SmolLM2-135M: dense ops and causal attention bands, lazy (immutable) maps
    return synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.7, seed=11)


def _fresh(trace, arch, engine="tile"):
    unit_costs.clear()
    return simulate(trace, arch, engine=engine, causal_band_rows=16).to_frame()


def test_every_arch_field_is_either_a_cost_field_or_a_pricing_field():
    names = {f.name for f in fields(Arch)}
    assert set(unit_costs.COST_FIELDS) | set(unit_costs.PRICING_FIELDS) == names
    assert not set(unit_costs.COST_FIELDS) & set(unit_costs.PRICING_FIELDS)


@pytest.mark.parametrize("engine", ["tile", "analytic"])
@pytest.mark.parametrize("sets", [["clock_hz=1.7e9"], ["energy.actions.dram_read_bit.pj=1"],
                                  ["static.enabled=false"], ["area.entries.glb_per_kib.mm2=1e-3"]])
def test_a_pricing_change_reuses_every_unit_and_equals_a_fresh_cache(trace, engine, sets):
    _fresh(trace, load_arch("fgmp"), engine)
    held = dict(unit_costs._SHARED)
    point = load_arch("fgmp", sets)
    reused = simulate(trace, point, engine=engine, causal_band_rows=16).to_frame()
    assert unit_costs._SHARED.keys() == held.keys()  # no unit was costed again
    assert all(unit_costs._SHARED[key][2] is value[2] for key, value in held.items())
    fresh = _fresh(trace, point, engine)
    assert reused.equals(fresh)
    assert (reused["causal_bands"] > 0).any()


@pytest.mark.parametrize("sets", [["memory.dram.read_bits_per_cycle=64"], ["aqu.blocks_per_cycle=2"],
                                  ["storage.metadata_bits_per_block=4"], ["pe_array.pipeline_depth=4"],
                                  ["mapping.tile_k_blocks=2"]])
def test_a_change_a_cost_is_derived_from_misses_and_equals_a_fresh_cache(trace, sets):
    default = _fresh(trace, load_arch("fgmp"))
    held = set(unit_costs._SHARED)
    point = load_arch("fgmp", sets)
    after = simulate(trace, point, causal_band_rows=16).to_frame()
    assert set(unit_costs._SHARED) - held  # the point's units were costed, not looked up
    fresh = _fresh(trace, point)
    assert after.equals(fresh)
    assert not after["cycles"].equals(default["cycles"]) or not after["energy_pj"].equals(default["energy_pj"])


def test_the_cache_keeps_at_most_max_units(trace, monkeypatch):
    monkeypatch.setattr(unit_costs, "MAX_UNITS", 5)
    frame = _fresh(trace, load_arch("fgmp"))
    assert len(unit_costs._SHARED) == 5
    again = simulate(trace, load_arch("fgmp", ["clock_hz=1.1e9"]), causal_band_rows=16).to_frame()
    assert again["macs"].equals(frame["macs"]) and again["cycles"].equals(frame["cycles"])


def test_the_cache_keeps_the_units_costed_last(trace, monkeypatch):
    _fresh(trace, load_arch("fgmp"))
    order = list(unit_costs._SHARED)  # every unit of the run, in the order it was costed
    monkeypatch.setattr(unit_costs, "MAX_UNITS", 5)
    _fresh(trace, load_arch("fgmp"))
    assert list(unit_costs._SHARED) == order[-5:]  # first in, first out


def test_the_engine_is_part_of_the_scope(trace):
    """The analytic engine's timing is a bound, the tile engine's a schedule: a run on one never reuses the
    other's costs."""
    arch = load_arch("fgmp")
    _fresh(trace, arch, "tile")
    analytic = simulate(trace, arch, engine="analytic", causal_band_rows=16).to_frame()
    assert analytic.equals(_fresh(trace, arch, "analytic"))
    assert not analytic["cycles"].equals(_fresh(trace, arch, "tile")["cycles"])


def test_scopes_are_equal_exactly_when_their_cost_fields_are():
    a, b = load_arch("fgmp"), load_arch("fgmp", ["clock_hz=2e9", "static.enabled=false"])
    c = load_arch("fgmp", ["memory.dram.read_bits_per_cycle=64"])
    assert unit_costs._Scope(a, "tile") == unit_costs._Scope(b, "tile")
    assert unit_costs._Scope(a, "tile") != unit_costs._Scope(c, "tile")
    assert unit_costs._Scope(a, "tile") != unit_costs._Scope(a, "analytic")
    assert unit_costs._Scope(a, "tile") != (a.pe_array, a.aqu, a.memory, a.storage, a.mapping, "tile")
    colliding = unit_costs._Scope(c, "tile")
    colliding._hash = hash(unit_costs._Scope(a, "tile"))  # a hash collision: the fields still decide
    assert colliding != unit_costs._Scope(a, "tile")


def _pair(weights, acts):
    """Two 64 x 256 x 96 ops with the given weight and activation maps (one per op)."""
    from fgmpsim.trace import GemmOp, Trace

    ops = tuple(GemmOp(name, i, "linear", 64, 256, 96, 1, w, x) for i, (name, w, x) in
                enumerate(zip(("a", "b"), weights, acts)))
    return Trace(name="pair", ops=ops, block_size=16)


def test_ops_sharing_a_read_only_activation_map_keep_their_own_weight_costs():
    import numpy as np

    fp4, fp8, act = np.zeros((96, 16), bool), np.ones((96, 16), bool), np.zeros((64, 16), bool)
    for pmap in (fp4, fp8, act):
        pmap.setflags(write=False)
    frame = simulate(_pair((fp4, fp8), (act, act)), load_arch("fgmp")).to_frame()
    assert list(frame.macs_fp4xfp4) == [64 * 256 * 96, 0] and list(frame.macs_fp8xfp4) == [0, 64 * 256 * 96]


def test_a_writable_weight_beside_a_read_only_activation_is_costed_again():
    import numpy as np

    weight, act = np.zeros((96, 16), bool), np.zeros((64, 16), bool)
    act.setflags(write=False)
    trace = _pair((weight,), (act,))
    before = simulate(trace, load_arch("fgmp")).to_frame().iloc[0]
    weight[:] = True  # the writable weight map changed between two simulations
    after = simulate(trace, load_arch("fgmp")).to_frame().iloc[0]
    assert (before.macs_fp4xfp4, after.macs_fp4xfp4, after.macs_fp8xfp4) == (64 * 256 * 96, 0, 64 * 256 * 96)
