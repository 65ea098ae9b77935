"""Fuzzed sweep specs end in a typed fgmpsim error or in points that simulate: never an untyped exception."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fgmpsim
from fgmpsim.errors import FgmpsimError

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["fgmp", "fp8_baseline", "llama-2-7b", "smollm2-135m",
                                                          "prefill", "decode", "1e9", "[fp8]"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                    max_leaves=6)
SYNTH_KEYS = ["model", "tokens", "batch", "phase", "kv_len", "fp4_fraction", "act_fp4_fraction", "seed", "tokns"]
GEMM_KEYS = ["m", "k", "n", "fp4_fraction", "seed", "repeat", "mm"]
PATHS = ["pe_array.lanes_per_pe", "pe_array.pes", "clock_hz", "memory.glb.size_bytes", "pe_array.dataflow",
         "aqu.enabled", "mapping.tile_m", "energy.actions.dram_read_bit.pj", "pe_array", "pe_array.lanes_pe", "x"]


def _values(strategy):
    return st.one_of(strategy, st.lists(strategy, max_size=3))


RECIPE_VALUES = st.one_of(st.integers(0, 300), st.floats(-1, 2), st.sampled_from(["prefill", "decode", "llama-2-7b",
                                                                                 "smollm2-135m", "x.json"]), JSON)
TRACE = st.one_of(
    st.sampled_from(["traces/smollm2-135m-fgmp70", "no/such/dir"]),
    st.fixed_dictionaries({"synth": st.fixed_dictionaries(
        {"model": st.sampled_from(["smollm2-135m", "llama-2-7b", "x.json", "nope"])},
        optional={key: _values(RECIPE_VALUES) for key in SYNTH_KEYS[1:]})}),
    st.fixed_dictionaries({"gemm": st.fixed_dictionaries(
        {key: _values(st.one_of(st.integers(-1, 300), RECIPE_VALUES)) for key in GEMM_KEYS[:3]},
        optional={key: _values(RECIPE_VALUES) for key in GEMM_KEYS[3:]})}),
    JSON)
GRID = st.dictionaries(st.sampled_from(PATHS), st.one_of(st.lists(SCALARS, max_size=3), SCALARS), max_size=2)
SPEC = st.fixed_dictionaries(
    {"traces": st.lists(TRACE, min_size=1, max_size=2),
     "archs": st.lists(st.sampled_from(["fgmp", "fp8_baseline", "nvfp4", "fgmp_output_stationary", "fgmpp"]),
                       min_size=1, max_size=2)},
    optional={"grid": GRID, "points": st.lists(GRID, max_size=2),
              "baseline": st.sampled_from(["fp8_baseline", "nope"]), "engine": st.sampled_from(["tile", "analytic"]),
              "gird": JSON})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPEC)
def test_fuzzed_spec_is_a_typed_error_or_valid_points(document):
    try:
        points = fgmpsim.sweep.expand(fgmpsim.sweep.load_spec(document))
    except FgmpsimError as err:
        assert str(err) and "\n" not in str(err)
        event(f"{type(err).__name__} at {(err.field or '').split('.')[0]}")
        return
    event("valid")
    assert points and len({p.key for p in points}) == len(points)
