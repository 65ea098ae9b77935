"""The event engine (SimPy block processes, one event per transfer and per tile compute) equals the tile engine in
every column but ``simpy_events`` on random tiny GEMMs (the generator of ``test_sim_engines``) under every
double-buffering combination with tight and loose buffers, and on medium GEMMs; it equals the per-cycle reference
engine on a few; it counts the events it processes and refuses traces above its step limit."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from test_sim_engines import BLOCK, LEVELS, _case, format_case, random_arch

import fgmpsim.cli as cli
from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, MappingError
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace

SEEDS = 128
DOUBLE_BUFFERING = tuple(itertools.product((False, True), repeat=len(LEVELS)))
LOOSE = 64
"""Buffer sizes are multiplied by this in the loose cases (the random ones are a few hundred bytes)."""


def rebuffered(arch, double_buffered: tuple[bool, ...], scale: int):
    """``arch`` with double buffering of (glb, weight, input, accum buffer) set and every buffer ``scale`` x larger."""
    mem = arch.memory
    levels = {name: replace(getattr(mem, name), double_buffered=flag, size_bytes=getattr(mem, name).size_bytes * scale)
              for name, flag in zip(LEVELS, double_buffered)}
    return replace(arch, memory=replace(mem, **levels))


def event_case(seed: int):
    """A random case of ``test_sim_engines`` (dataflow by the seed's parity) with the double buffering cycling through
    all 16 combinations every 32 seeds (so each meets both dataflows) and every third case's buffers loose."""
    arch, trace, mapping = _case(seed)
    return rebuffered(arch, DOUBLE_BUFFERING[seed // 2 % 16], LOOSE if seed % 3 == 0 else 1), trace, mapping


def differing(a, b) -> list[str]:
    return [c for c in a.columns if c != "simpy_events" and not a[c].equals(b[c])]


@pytest.fixture(scope="module")
def runs():
    """(seed, arch, trace, mapping, tile frame, event frame) of every feasible case."""
    out = []
    for seed in range(SEEDS):
        arch, trace, mapping = event_case(seed)
        try:
            tile = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue  # random explicit tiles that do not fit (the engines share the mapping check)
        event = simulate(trace, arch, engine="event", mapping=mapping).to_frame()
        out.append((seed, arch, trace, mapping, tile, event))
    return out


def test_event_engine_equals_tile_engine_in_every_column_but_simpy_events(runs):
    assert len(runs) >= 100
    failures = [(seed, cols, tile[cols].to_dict("list"), event[cols].to_dict("list"))
                for seed, _, _, _, tile, event in runs if (cols := differing(tile, event))]
    assert not failures, failures[:3]


def test_event_engine_equals_tile_engine_with_uniform_operand_formats():
    checked = 0
    for seed in range(60):
        arch, trace, mapping = format_case(seed)
        arch = rebuffered(arch, DOUBLE_BUFFERING[seed // 2 % 16], LOOSE if seed % 3 == 0 else 1)
        try:
            tile = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue
        event = simulate(trace, arch, engine="event", mapping=mapping).to_frame()
        assert not differing(tile, event), (seed, differing(tile, event))
        checked += 1
    assert checked >= 40


def test_ops_run_back_to_back_for_exactly_their_cycles_on_both_engines(runs):
    # the tile engine's op-level SimPy model once let the writer (drain and write-back side by side) stretch an op
    for seed, *_, tile, event in runs:
        for frame in (tile, event):
            assert (frame.end_cycle - frame.start_cycle == frame.cycles).all(), seed
            assert frame.start_cycle.tolist() == [0, *frame.end_cycle.tolist()[:-1]], seed


def test_random_cases_cover_both_dataflows_every_double_buffering_and_every_stall(runs):
    combos = {(arch.pe_array.dataflow, tuple(getattr(arch.memory, lv).double_buffered for lv in LEVELS))
              for _, arch, *_ in runs}
    assert len(combos) == 2 * 16
    frames = [event for *_, event in runs]
    for stall in ("stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles"):
        assert any((f[stall] > 0).any() for f in frames), stall
    aqu_stall_accum_db = {arch.memory.accum_buffer.double_buffered
                          for _, arch, *_, f in runs if (f.stall_aqu_cycles > 0).any()}
    assert aqu_stall_accum_db == {False, True}  # AQU stalls from serialized and from overlapped drains
    assert {bool(x) for f in frames for x in f.x_resident} == {False, True}
    loose = [arch.memory.glb.size_bytes >= LOOSE * 60 for _, arch, *_ in runs]
    assert any(loose) and not all(loose)


def test_event_engine_equals_reference_engine(runs):
    for seed, arch, trace, mapping, _, event in runs[:8]:
        reference = simulate(trace, arch, engine="reference", mapping=mapping).to_frame()
        assert not differing(event, reference), seed
        assert (reference.simpy_events == 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_event_engine_equals_tile_engine_on_medium_gemms(seed):
    # 16-48 rows and channels, 6-12 blocks of K on a random tiny array: a hundred to a few thousand tile steps
    rng = np.random.default_rng(1000 + seed)
    arch = random_arch(rng, ("weight_stationary", "output_stationary")[seed % 2], "fgmp")
    m, n = (int(v) for v in rng.integers(16, 49, 2))
    trace = gemm_trace(m, int(rng.integers(6, 13)) * BLOCK, n, fp4_fraction=float(rng.random()), seed=seed,
                       block_size=BLOCK)
    tile = simulate(trace, arch).to_frame()
    event = simulate(trace, arch, engine="event").to_frame()
    assert not differing(tile, event)
    assert tile.tiles[0] >= 50 and (tile.stall_dram_cycles + tile.stall_glb_cycles)[0] > 0
    # the tile engine's SimPy work is per op: fewer events than this op has tiles
    assert tile.simpy_events[0] < tile.tiles[0] < event.simpy_events[0]


def test_event_engine_processes_more_events_than_tiles(runs):
    for *_, tile, event in runs:
        # every tile's compute alone is four events: the order's put into the array's inbox, its get, the
        # compute timeout and the order's done event
        assert (event.simpy_events >= 4 * event.tiles).all()
        assert (tile.simpy_events > 0).all()
    seed, arch, trace, mapping, _, event = runs[0]
    again = simulate(trace, arch, engine="event", mapping=mapping)
    assert again.to_frame().simpy_events.tolist() == event.simpy_events.tolist()
    assert again.summary()["simpy_events"] == event.simpy_events.sum()
    assert simulate(trace, arch, engine="analytic", mapping=mapping).summary()["simpy_events"] == 0


@pytest.mark.parametrize("ops", [1, 2, 5])
def test_tile_engine_processes_23_simpy_events_per_op(ops):
    """The tile engine's SimPy model by hand: 6 processes start (5 blocks + the sequencer); per op the sequencer's
    5 puts, the blocks' 5 gets, the start event, 5 busy timeouts, 5 done events, the op's timeout and their all_of
    = 23; the sequencer's end = 1. The all_of retiring an op is processed as the sequencer records it, so it counts
    to the next op: op 0 = 6 + 22, the others 1 + 22, the last + 1 (its own all_of, the end); one op alone 30."""
    trace = gemm_trace(8, 2 * BLOCK, 8, fp4_fraction=0.5, seed=ops, block_size=BLOCK)
    chain = replace(trace, ops=tuple(replace(trace.ops[0], name=f"op{i}", layer=i) for i in range(ops)))
    events = simulate(chain, load_arch("fgmp", {"pe_array.vector_width": BLOCK})).to_frame().simpy_events
    want = [30] if ops == 1 else [28, *[23] * (ops - 2), 25]
    assert list(events) == want and sum(events) == 6 + 23 * ops + 1


def test_event_engine_refuses_traces_above_its_step_limit(runs):
    seed, arch, trace, mapping, tile, _ = runs[0]
    # steps of an op: its tiles plus 2 + 2 pipeline fill and drain steps
    steps = int(tile.tiles.sum()) + 4 * len(tile)
    simulate(trace, arch, engine="event", mapping=mapping, max_event_steps=steps)
    with pytest.raises(ConfigError) as err:
        simulate(trace, arch, engine="event", mapping=mapping, max_event_steps=steps - 1)
    assert (err.value.what, err.value.field, err.value.fix) == (
        f"the event engine runs every tile step as SimPy events and takes at most {steps - 1:,} steps, this trace "
        f"needs {steps:,}", "engine", "use engine='tile' (the same timing, vectorized) or raise max_event_steps")


def test_cli_runs_the_event_engine(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate",))
    trace_dir = gemm_trace(64, 256, 96, fp4_fraction=0.7, seed=0).save(tmp_path / "trace")
    out = tmp_path / "res.json"
    assert cli.main(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--engine", "event",
                     "--out", str(out)]) == 0
    assert "event engine" in capsys.readouterr().out
    document = json.loads(out.read_text())
    tile = simulate(gemm_trace(64, 256, 96, fp4_fraction=0.7, seed=0), load_arch("fgmp")).summary()
    assert document["engine"] == "event" and document["summary"]["cycles"] == tile["cycles"]
    assert document["summary"]["simpy_events"] > document["ops"][0]["tiles"]
