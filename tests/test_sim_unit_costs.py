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
