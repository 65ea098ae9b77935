"""The tile engine equals the per-cycle reference engine cycle for cycle and count for count, and is never below the
analytic bound, on hundreds of random tiny GEMMs (random maps, all four modes at unequal costs, both dataflows,
every double-buffering combination, tight and loose buffers, random explicit mappings).

The reference engine (:mod:`fgmpsim.sim.engines.reference`) shares no code with the tile engine; the two are
compared on the columns the reference derives itself (:data:`OWN`: every action count, every cycle, stall and busy
column, the operand columns), not on columns both sides compute from those with the same function (bytes per
level, energy, ``bound_cycles``, ``macs``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, MappingError, TraceError
from fgmpsim.energy import ACTIONS
from fgmpsim.sim import Mapping, simulate
from fgmpsim.sim.engines.reference import TIMING
from fgmpsim.sim.engines.reference.tiles import action_names
from fgmpsim.trace import GemmOp, Trace
from fgmpsim.trace.formats import MIXED, OperandFormat

BLOCK = 4
LEVELS = ("glb", "weight_buffer", "input_buffer", "accum_buffer")
OPERAND_COLUMNS = ("weight_bits", "weight_elements", "weight_fp8_fraction", "act_fp8_fraction", "output_blocks",
                   "output_fp8_blocks")
OWN = (*TIMING, *action_names(), *OPERAND_COLUMNS, "start_cycle", "end_cycle")


def tile_matching_reference(trace: Trace, arch, mapping, what: str):
    """The tile engine's frame of ``trace`` on ``arch``, after asserting that the reference engine gives every one
    of its own columns (:data:`OWN`) equal; None when random explicit tiles do not fit (the reference refuses them
    identically). ``what`` names the case in a failure."""
    try:
        tile = simulate(trace, arch, mapping=mapping).to_frame()
    except MappingError:
        return None
    reference = simulate(trace, arch, engine="reference", mapping=mapping).to_frame()
    differing = [c for c in OWN if not tile[c].equals(reference[c])]
    assert not differing, f"{what}: {differing}\n{tile[differing]}\n{reference[differing]}"
    return tile
"""Row columns the reference engine derives itself (start/end cycles: the tile engine's come from its SimPy op
sequence, the reference's from its own cycles)."""


def random_arch(rng: np.random.Generator, dataflow: str, base: str, layout: tuple[str, str, str] = ("packed",) * 3,
                extra: dict | None = None):
    """A tiny arch: 1-3 PEs x 1-3 lanes, 4-wide blocks, random mode cycles (1-3), rates and buffer sizes, random
    double buffering per level; ``layout``: storage layout of DRAM, the GLB and the PE buffers; ``extra``: more
    overrides."""
    cycles = rng.integers(1, 4, 4)
    overrides = {
        "pe_array.pes": int(rng.integers(1, 4)), "pe_array.lanes_per_pe": int(rng.integers(1, 4)),
        "pe_array.vector_width": BLOCK, "pe_array.dataflow": dataflow,
        **{f"pe_array.cycles_per_block_pair.{mode}": int(c)
           for mode, c in zip(("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8"), cycles)},
        "memory.dram.read_bits_per_cycle": int(rng.integers(8, 64)),
        "memory.dram.write_bits_per_cycle": int(rng.integers(8, 64)),
        "memory.glb.size_bytes": int(rng.integers(60, 600)),
        "memory.weight_buffer.size_bytes": int(rng.integers(24, 200)),
        "memory.input_buffer.size_bytes": int(rng.integers(24, 200)),
        "memory.accum_buffer.size_bytes": int(rng.integers(16, 200)),
    }
    for level in LEVELS:
        overrides[f"memory.{level}.double_buffered"] = bool(rng.integers(0, 2))
        overrides[f"memory.{level}.read_bits_per_cycle"] = int(rng.integers(4, 64))
        overrides[f"memory.{level}.write_bits_per_cycle"] = int(rng.integers(4, 64))
    overrides.update({f"storage.layout.{level}": value for level, value in zip(("dram", "glb", "pe_buffers"), layout)})
    if base == "fgmp":
        overrides["aqu.blocks_per_cycle"] = int(rng.integers(1, 3))
        overrides["aqu.latency_cycles"] = int(rng.integers(0, 4))
    return load_arch(base, {**overrides, **(extra or {})})


def random_trace(rng: np.random.Generator, n_ops: int) -> Trace:
    """1-3 chained GEMMs, M and N 1-8, K 1-5 blocks, repeat 1-2, 2-D or 3-D maps with random FP8 fractions."""
    shapes = [(int(rng.integers(1, 9)), int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1, 3)))
              for _ in range(n_ops)]
    ops = []
    for i, (m, kb, n, repeat) in enumerate(shapes):
        def pmap(rows: int) -> np.ndarray:
            shape = (repeat, rows, kb) if rng.random() < 0.5 else (rows, kb)
            return rng.random(shape) < rng.random()
        consumer = f"op{i + 1}" if i + 1 < n_ops and rng.random() < 0.7 else None
        ops.append(GemmOp(f"op{i}", i, "linear", m, kb * BLOCK, n, repeat, pmap(n), pmap(m), consumer=consumer,
                          consumer_operand="act" if rng.random() < 0.7 else "weight"))
    return Trace("random", tuple(ops), block_size=BLOCK)


def random_mapping(rng: np.random.Generator, arch) -> Mapping:
    pe = arch.pe_array
    ws = pe.dataflow == "weight_stationary"
    tile_m = int(rng.integers(1, 9 if ws else pe.pes + 1))
    chunk = tile_m * int(rng.integers(1, 4)) if ws and rng.random() < 0.5 else None
    return Mapping(pe.dataflow, tile_m, int(rng.integers(1, (pe.lanes if ws else pe.lanes_per_pe) + 1)),
                   int(rng.integers(1, 4)), chunk)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    dataflow = ("weight_stationary", "output_stationary")[seed % 2]
    base = ("fgmp", "fgmp", "fp8_baseline", "nvfp4")[int(rng.integers(0, 4))]
    # layouts from their own stream, so the other draws of a seed do not depend on them
    layout = tuple(("packed", "slotted")[int(b)] for b in np.random.default_rng([seed, 1]).integers(0, 2, 3))
    arch = random_arch(rng, dataflow, base, layout)
    trace = random_trace(rng, int(rng.integers(1, 4)))
    mapping = random_mapping(rng, arch) if rng.random() < 0.6 else None
    return arch, trace, mapping


def test_reference_counts_every_action_and_fills_every_row_column():
    # simulate derives these six from every engine's own counts and cycles (MACs on a mixed lane, alignment blocks
    # from the flags moved, cast blocks from the block pairs and input reads, an INT lane's group rescales from its
    # block pairs, the op's cycles for static energy)
    derived = {"macs_fgmp_extra", "align_blocks", "cast_blocks", "int_group_scales", "leakage_cycles",
               "clock_cycles"}
    assert set(action_names()) == set(ACTIONS) - derived
    arch, trace, mapping = _case(3)
    tile = simulate(trace, arch, mapping=mapping).to_frame()
    reference = simulate(trace, arch, engine="reference", mapping=mapping).to_frame()
    assert list(reference.columns) == list(tile.columns)


@pytest.mark.parametrize("block", range(8))
def test_tile_engine_equals_reference_cycle_for_cycle_and_count_for_count(block):
    checked = 0
    for seed in range(block * 50, block * 50 + 50):
        arch, trace, mapping = _case(seed)
        if (tile := tile_matching_reference(trace, arch, mapping, f"seed {seed}")) is None:
            continue
        analytic = simulate(trace, arch, engine="analytic", mapping=mapping).to_frame()
        assert (tile.cycles >= analytic.cycles).all(), f"seed {seed}"
        checked += 1
    assert checked >= 40  # most random cases are feasible


def test_random_cases_cover_every_path():
    """The random cases above exercise spills, chunks, residency, every stall cause and unequal mode costs."""
    seen = set()
    for seed in range(400):
        arch, trace, mapping = _case(seed)
        try:
            frame = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue
        ws = arch.pe_array.dataflow == "weight_stationary"
        k_tiles = -(-frame.K // BLOCK // frame.tile_k_blocks)
        psum_bits = frame.M * frame.N * frame.repeat * arch.storage.psum_bits * k_tiles
        seen.update(name for name, hit in (
            ("ws", ws), ("os", not ws),
            ("spill", (frame.accum_buffer_write_bits > psum_bits).any()),
            ("chunks", (ws & (frame.chunk_m < frame.M)).any()),
            ("x streamed", (~frame.x_resident).any()), ("w streamed", (~ws & ~frame.w_resident).any()),
            ("dram", (frame.stall_dram_cycles > 0).any()), ("glb", (frame.stall_glb_cycles > 0).any()),
            ("aqu", (frame.stall_aqu_cycles > 0).any()), ("imbalance", (frame.stall_imbalance_cycles > 0).any()),
            ("serial drain", not arch.memory.accum_buffer.double_buffered),
            ("slotted", base_mixed(arch) and "slotted" in vars(arch.storage.layout).values()),
            ("packed", base_mixed(arch) and "packed" in vars(arch.storage.layout).values()),
            ("all db", all(getattr(arch.memory, lv).double_buffered for lv in LEVELS)),
        ) if hit)
    assert seen == {"ws", "os", "spill", "chunks", "x streamed", "w streamed", "dram", "glb", "aqu", "imbalance",
                    "serial drain", "all db", "slotted", "packed"}


def base_mixed(arch) -> bool:
    """A mixed FP4/FP8 datapath: the only one whose blocks come in two sizes (where the layout matters)."""
    return set(arch.pe_array.datapath_precisions) == {"fp4", "fp8"}


def test_reference_refuses_large_gemms():
    arch = load_arch("fgmp")
    big = GemmOp("big", 0, "linear", 256, 4096, 256, 1, np.zeros((256, 256), bool), np.zeros((256, 256), bool))
    with pytest.raises(TraceError) as err:
        simulate(Trace("big", (big,)), arch, engine="reference")
    assert err.value.field == "engine" and "tile" in err.value.fix


def test_unknown_engine_is_a_config_error():
    arch = load_arch("fgmp")
    op = GemmOp("g", 0, "linear", 1, 16, 1, 1, np.zeros((1, 1), bool), np.zeros((1, 1), bool))
    with pytest.raises(ConfigError) as err:
        simulate(Trace("t", (op,)), arch, engine="fast")
    assert err.value.field == "engine"


def random_format(rng: np.random.Generator, kb: int, rows: int, weight: bool, accepted: tuple[str, ...]):
    """A random operand format the arch accepts (``mixed`` included when listed): ``fp4_pow2`` with a group of a
    whole number of blocks dividing K (and, for a weight, a random M2 channel scale and LoRC rank), or ``fp8`` with
    one scale per row."""
    name = accepted[int(rng.integers(0, len(accepted)))]
    if name == "fp4_pow2":
        groups = [d for d in range(1, kb + 1) if kb % d == 0]
        rank = int(rng.integers(0, min(rows, kb * BLOCK) + 1)) if weight and rng.random() < 0.5 else 0
        return OperandFormat(name, BLOCK * groups[int(rng.integers(0, len(groups)))],
                             weight and bool(rng.random() < 0.5), rank)
    return OperandFormat(name) if name == "fp8" else MIXED


def format_case(seed: int):
    """A random case on an array that accepts uniform formats: ``zqfp_w4a8`` (FP4 cast to FP8 lanes, FP8 native) or
    ``fgmp`` with FP8 and FP4 formats native; every operand in a random accepted format, uniform maps constant."""
    rng = np.random.default_rng([seed, 13])
    dataflow = ("weight_stationary", "output_stationary")[seed % 2]
    base = ("zqfp_w4a8", "fgmp")[seed % 3 == 0]
    native = {"pe_array.storage_formats": {"mixed": "map", "fp8": "native", "fp4_pow2": "native"}}
    arch = random_arch(rng, dataflow, base, extra=native if base == "fgmp" else None)
    accepted = tuple(fmt for fmt, _ in arch.pe_array.storage_formats)
    trace = random_trace(rng, int(rng.integers(1, 4)))
    ops = []
    for op in trace.ops:
        kb = op.k // BLOCK
        wf = random_format(rng, kb, op.n, True, accepted)
        af = random_format(rng, kb, op.m, False, accepted)
        w = np.full(op.weight_map.shape, wf.spec.wide) if wf.uniform else op.weight_map
        a = np.full(op.act_map.shape, af.spec.wide) if af.uniform else op.act_map
        ops.append(replace(op, weight_map=w, act_map=a, weight_format=wf, act_format=af))
    mapping = random_mapping(rng, arch) if rng.random() < 0.6 else None
    return arch, Trace("random-formats", tuple(ops), block_size=BLOCK), mapping


@pytest.mark.parametrize("block", range(2))
def test_tile_engine_equals_reference_with_uniform_operand_formats(block):
    checked, casts, formats = 0, 0, set()
    for seed in range(block * 60, block * 60 + 60):
        arch, trace, mapping = format_case(seed)
        try:
            tile = simulate(trace, arch, mapping=mapping).to_frame()
        except MappingError:
            continue
        reference = simulate(trace, arch, engine="reference", mapping=mapping).to_frame()
        differing = [c for c in (*OWN, "cast_blocks") if not tile[c].equals(reference[c])]
        assert not differing, f"seed {seed}: {differing}\n{tile[differing]}\n{reference[differing]}"
        casts += int(tile.cast_blocks.sum() > 0)
        formats.update(f.name for op in trace.ops for f in (op.weight_format, op.act_format))
        checked += 1
    assert checked >= 40 and casts >= 10 and formats == {"mixed", "fp8", "fp4_pow2"}


@pytest.mark.parametrize("block", range(2))
def test_every_option_at_once_keeps_tile_reference_and_event_equal(block):
    """Collectors, a VMAC pipeline, bounded lane FIFOs, the next-op weight prefetch, kept outputs and random
    layouts, all on together (each is tested alone in its own file): tile == reference == event, column for
    column, and compute + stalls = cycles."""
    from dataclasses import replace

    checked = 0
    for seed in range(1000 + block * 30, 1000 + block * 30 + 30):
        arch, trace, mapping = _case(seed)
        rng = np.random.default_rng([seed, 2])
        pe = {"pipeline_depth": int(rng.integers(1, 4)), "lane_fifo_depth": int(rng.integers(1, 3))}
        if arch.pe_array.dataflow == "weight_stationary":
            pe |= {"weight_collector_blocks": int(rng.integers(0, 4)), "psum_collector_entries": int(rng.integers(1, 4))}
        memory = replace(arch.memory, prefetch_next_weights=True, glb=replace(arch.memory.glb, keep_outputs=True))
        arch = replace(arch, pe_array=replace(arch.pe_array, **pe), memory=memory)
        if (tile := tile_matching_reference(trace, arch, mapping, f"seed {seed}, every option")) is None:
            continue
        event = simulate(trace, arch, engine="event", mapping=mapping).to_frame()
        differing = [c for c in OWN if not tile[c].equals(event[c])]
        assert not differing, f"seed {seed}: event differs in {differing}"
        stalls = tile[[c for c in tile.columns if c.startswith("stall_")]].sum(axis=1)
        assert (tile.compute_cycles + stalls == tile.cycles).all()
        checked += 1
    assert checked >= 15
