"""Conservation laws, energy, datapath precisions, determinism and the RunResult record."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.energy import ACTION_ENTRY, ACTIONS, COMPONENTS, block_bits, weight_footprint_bits
from fgmpsim.errors import ConfigError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.trace import GemmOp, Trace


def chained_trace(seed=0, fp8=0.3, m=96, k=512, n=320, repeat=1, three_d=False) -> Trace:
    """Two GEMMs, the first feeding the second's activations (so the AQU quantizes its output)."""
    rng = np.random.default_rng(seed)

    def pmap(rows, cols, reps):
        return rng.random((reps, rows, cols) if three_d else (rows, cols)) < fp8
    first = GemmOp("first", 0, "linear", m, k, n, repeat, pmap(n, k // 16, repeat), pmap(m, k // 16, repeat),
                   consumer="second")
    second = GemmOp("second", 1, "linear", m, n, 64, 1, rng.random((64, n // 16)) < fp8,
                    rng.random((m, n // 16)) < fp8)
    return Trace("chained", (first, second))


@pytest.mark.parametrize("arch_name", ["fgmp", "fgmp_output_stationary", "fgmp_fp8_half_rate"])
@pytest.mark.parametrize("three_d", [False, True])
def test_every_block_pair_and_mac_is_simulated_exactly_once(arch_name, three_d):
    trace = chained_trace(repeat=3, three_d=three_d)
    frame = simulate(trace, load_arch(arch_name)).to_frame()
    for op, r in zip(trace.ops, frame.itertuples()):
        assert r.block_pairs == op.m * op.n * op.repeat * op.k // 16
        assert r.macs_fp4xfp4 + r.macs_fp4xfp8 + r.macs_fp8xfp4 + r.macs_fp8xfp8 == r.macs == op.macs
        w, a = op.weight_map_array(), op.act_map_array()
        w, a = (w if w.ndim == 3 else np.broadcast_to(w, (op.repeat, *w.shape)),
                a if a.ndim == 3 else np.broadcast_to(a, (op.repeat, *a.shape)))
        # fp8 x fp8 MACs = 16 * sum_r sum_kb (#FP8 weight rows at kb) * (#FP8 activation rows at kb)
        assert r.macs_fp8xfp8 == 16 * int((w.sum(axis=1) * a.sum(axis=1)).sum())
        # every output's partial sum is written once per k-tile at least, and read out once at the end
        k_tiles = -(-op.k // 16 // r.tile_k_blocks)
        assert r.accum_buffer_write_bits >= op.m * op.n * op.repeat * 32 * k_tiles
        assert r.dram_write_bits == _output_bits(trace, op, load_arch(arch_name))


def _output_bits(trace: Trace, op: GemmOp, arch) -> int:
    """Output data bits written back, from the output-format rule: BF16 without a consumer; with one, each output
    row in ceil(N / 16) blocks, FP8 for the consumer's activation FP8 share rounded half up (NVFP4 block: 16 x 4
    value bits + an 8-bit scale = 72 bits, FP8 block: 16 x 8 = 128 bits, as in fgmp's storage)."""
    if op.consumer is None:
        return op.m * op.n * op.repeat * 16
    assert arch.aqu.enabled and arch.pe_array.datapath_precisions == ("fp4", "fp8")
    consumer = trace.op(op.consumer).act_map_array()
    blocks = op.repeat * op.m * -(-op.n // 16)
    fp8 = int(np.floor(blocks * consumer.sum() / consumer.size + 0.5))
    return fp8 * 128 + (blocks - fp8) * 72


def _act_bits(act: np.ndarray, arch) -> int:
    fp8 = int(act.sum())
    return (fp8 * block_bits(True, arch.storage, 16) + (act.size - fp8) * block_bits(False, arch.storage, 16)
            + act.size * arch.storage.metadata_bits_per_block)


@pytest.mark.parametrize("mapping", [
    None,
    Mapping("weight_stationary", 8, 128, 8, chunk_m=32),       # 3 chunks of M = 96: weights read 3 times
    Mapping("weight_stationary", 16, 256, 16, chunk_m=16),   # chunks of one m-tile: no partial-sum spills
])
def test_dram_weight_bits_are_footprint_times_reload_factor_weight_stationary(mapping):
    arch = load_arch("fgmp")
    trace = chained_trace(repeat=2)
    op = trace.ops[0]
    r = simulate(trace, arch, mapping={"first": mapping} if mapping else None).to_frame().iloc[0]
    # reload factor from the tiling alone: weights once per M-chunk per repeat; X once, or once per n-tile
    chunks = -(-op.m // r.chunk_m)
    x_loads = 1 if r.x_resident else -(-op.n // r.tile_n)
    weights = weight_footprint_bits(op.weight_map, arch.storage, 16) - arch.storage.tensor_scale_bits
    dram = r.dram_read_bits + r.dram_read_metadata_bits
    assert dram == op.repeat * (weights * chunks + _act_bits(op.act_map, arch) * x_loads)
    if mapping is not None and mapping.chunk_m == 32:
        assert chunks == 3


@pytest.mark.parametrize("glb_bytes", [2 ** 21, 2 ** 14])
def test_dram_weight_bits_are_footprint_times_reload_factor_output_stationary(glb_bytes):
    arch = load_arch("fgmp_output_stationary", {"memory.glb.size_bytes": glb_bytes})
    trace = chained_trace()
    op = trace.ops[0]
    r = simulate(trace, arch).to_frame().iloc[0]
    w_loads = 1 if r.w_resident else -(-op.m // r.tile_m)
    x_loads = 1 if r.x_resident else -(-op.n // r.tile_n)
    weights = weight_footprint_bits(op.weight_map, arch.storage, 16) - arch.storage.tensor_scale_bits
    assert r.dram_read_bits + r.dram_read_metadata_bits == weights * w_loads + _act_bits(op.act_map, arch) * x_loads
    assert r.w_resident == (glb_bytes == 2 ** 21)


@pytest.mark.parametrize("arch_name", ["fgmp", "fp8_baseline", "nvfp4", "fgmp_output_stationary"])
def test_energy_is_action_counts_times_the_table(arch_name):
    arch = load_arch(arch_name)
    frame = simulate(chained_trace(), arch).to_frame()
    table = arch.energy.priced()
    for r in frame.to_dict("records"):
        expected = sum(r[a] * table.get(ACTION_ENTRY[a], 0.0) for a in ACTIONS)
        assert r["energy_pj"] == pytest.approx(expected, rel=1e-12)
        assert sum(r[f"energy_{c}_pj"] for c in COMPONENTS) == pytest.approx(r["energy_pj"], rel=1e-12)
        assert r["pj_per_mac"] == pytest.approx(r["energy_pj"] / r["macs"], rel=1e-12)


def test_all_fp8_maps_are_never_cheaper_on_fgmp_than_on_the_fp8_baseline():
    trace = chained_trace(fp8=1.0)
    fgmp = simulate(trace, load_arch("fgmp")).to_frame()
    base = simulate(trace, load_arch("fp8_baseline")).to_frame()
    assert (fgmp.energy_pj >= base.energy_pj).all()
    assert (fgmp.macs_fp8xfp8 == base.macs_fp8xfp8).all() and (fgmp.macs == fgmp.macs_fp8xfp8).all()


def test_datapath_promotes_or_demotes_every_block_and_says_so():
    trace = chained_trace(fp8=0.3)
    base = simulate(trace, load_arch("fp8_baseline"))
    low = simulate(trace, load_arch("nvfp4"))
    mixed = simulate(trace, load_arch("fgmp"))
    assert (base.to_frame().macs_fp8xfp8 == base.to_frame().macs).all()
    assert (low.to_frame().macs_fp4xfp4 == low.to_frame().macs).all()
    assert "promoted" in base.precision_adjustment and "demoted" in low.precision_adjustment
    assert mixed.precision_adjustment.startswith("none")
    # the baseline writes the AQU-less output of "first" in FP8: 96*320/16 blocks of 128 bits
    assert base.to_frame().dram_write_bits[0] == 96 * 320 // 16 * 128
    # FP8 blocks in the fgmp output follow the consumer's activation map
    consumer_fp8 = trace.ops[1].act_map.mean()
    assert mixed.to_frame().output_fp8_blocks[0] == round(96 * 320 // 16 * consumer_fp8)


def test_half_rate_fp8_modes_slow_down_fp8_blocks_only():
    arch = load_arch("fgmp_fp8_half_rate")
    fp4 = simulate(chained_trace(fp8=0.0), arch).to_frame()
    fp8 = simulate(chained_trace(fp8=1.0), arch).to_frame()
    mixed = simulate(chained_trace(fp8=0.3), arch).to_frame()
    assert (fp8.compute_cycles == 2 * fp4.compute_cycles).all()
    assert (fp4.compute_cycles < mixed.compute_cycles).all() and (mixed.compute_cycles < fp8.compute_cycles).all()


def test_same_inputs_give_bit_identical_frames():
    arch = load_arch("fgmp_fp8_half_rate")
    a = simulate(chained_trace(seed=3), arch).to_frame()
    b = simulate(chained_trace(seed=3), arch).to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_memoized_synthetic_maps_give_the_same_frame_as_freshly_generated_ones(monkeypatch):
    from fgmpsim.sim import unit_costs
    from fgmpsim.trace import synth_trace, synthetic_map

    arch = load_arch("fgmp")
    monkeypatch.setattr(synthetic_map, "_CACHE", synthetic_map.BytesLRU(synthetic_map.CACHE_BYTES))
    trace = synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.7, seed=1)
    cold = simulate(trace, arch).to_frame()  # every lazy map generated
    unit_costs.clear()  # else the warm run re-prices the cold run's unit costs and reads few maps
    warm = simulate(trace, arch).to_frame()  # every lazy map unpacked from the cache
    monkeypatch.setattr(synthetic_map, "_CACHE", synthetic_map.BytesLRU(0))  # nothing cached
    uncached = simulate(synth_trace("smollm2-135m", tokens=64, fp4_fraction=0.7, seed=1), arch).to_frame()
    pd.testing.assert_frame_equal(cold, warm, check_exact=True)
    pd.testing.assert_frame_equal(cold, uncached, check_exact=True)


def test_a_fixed_tile_wider_than_the_array_never_beats_peak_throughput():
    import dataclasses

    from fgmpsim.arch.record import FixedMapping

    arch = load_arch("fgmp")  # 256 lanes; a hand-built record skips load_arch's check, the mapper clamps
    wide = dataclasses.replace(arch, mapping=FixedMapping(tile_n=1024))
    trace = chained_trace(n=2048)
    for result in (simulate(trace, arch), simulate(trace, wide)):
        assert result.to_frame().iloc[0].macs <= result.to_frame().iloc[0].cycles * arch.peak_macs_per_cycle
        assert result.summary()["utilization"] <= 1.0


def test_aqu_output_blocks_pad_each_row_along_the_consumers_k_axis():
    from fgmpsim.trace import synth_trace

    # SmolLM2 decode, batch 1, 100 cached keys: attn_qk writes S[9 heads, 1 query, 100 keys]; P's blocks run along
    # the keys, so each of the 9 rows pads to ceil(100 / 16) = 7 blocks: 63 (not ceil(900 / 16) = 57).
    # v_proj writes 1 token x 192 channels of V, whose blocks run along tokens: 192 / 16 = 12 blocks (amortized).
    # q_proj writes 1 x 576 channels = 9 heads x 64: 36 blocks either way.
    frame = simulate(synth_trace("smollm2-135m", phase="decode", kv_len=100), load_arch("fgmp")).to_frame()
    first = frame.groupby("op").aqu_blocks.first()
    assert first["layers.0.self_attn.attn_qk"] == 63
    assert first["layers.0.self_attn.v_proj"] == 12
    assert first["layers.0.self_attn.q_proj"] == 36


@pytest.mark.parametrize("engine, arch, overrides", [
    ("tile", "fgmp", []), ("analytic", "fgmp", []), ("tile", "systolic_16x16", []),
    ("tile", "systolic_16x16", ["memory.ideal=false", "memory.dram.read_bits_per_cycle=64"])])
def test_cycles_are_compute_plus_the_stalls_on_every_engine(engine, arch, overrides):
    frame = simulate(chained_trace(), load_arch(arch, overrides), engine=engine).to_frame()
    stalls = frame[["stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles"]]
    assert (frame.compute_cycles + stalls.sum(axis=1) == frame.cycles).all()
    assert (stalls >= 0).all().all()
    if engine == "analytic" or arch.startswith("systolic"):    # the bound has a DRAM and a GLB side, no AQU
        assert (frame.stall_aqu_cycles == 0).all() and (frame.stall_imbalance_cycles == 0).all()


def test_ops_run_back_to_back_on_the_simpy_timeline():
    result = simulate(chained_trace(repeat=2), load_arch("fgmp"))
    frame = result.to_frame()
    assert frame.start_cycle[0] == 0
    assert (frame.end_cycle - frame.start_cycle == frame.cycles).all()
    assert (frame.start_cycle[1:].to_numpy() == frame.end_cycle[:-1].to_numpy()).all()
    stalls = frame[["stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles"]]
    assert (frame.compute_cycles + stalls.sum(axis=1) == frame.cycles).all()
    for process in ("loader", "distributor", "aqu", "writer"):
        assert (frame[f"busy_{process}_cycles"] <= frame.cycles).all()


def test_summary_totals():
    arch = load_arch("fgmp")
    result = simulate(chained_trace(), arch)
    frame, s = result.to_frame(), result.summary()
    assert s["cycles"] == frame.cycles.sum() and s["macs"] == frame.macs.sum()
    assert s["seconds"] == pytest.approx(s["cycles"] / arch.clock_hz)
    assert s["utilization"] == pytest.approx(s["macs"] / (s["cycles"] * arch.peak_macs_per_cycle))
    assert s["pj_per_mac"] == pytest.approx(frame.energy_pj.sum() / frame.macs.sum())
    assert s["weight_bytes"] == frame.weight_bits.sum() / 8
    assert 4.5 < s["weight_bits_per_element"] < 8 + 1 / 16 + 0.01
    assert result.mapping("first").dataflow == "weight_stationary"
    assert (s["arch"], s["trace"], s["engine"]) == ("fgmp", result.trace, "tile") and result.trace
    assert (s["compute_cycles"], s["bound_cycles"]) == (frame.compute_cycles.sum(), frame.bound_cycles.sum())
    for column in ("op", "layer", "kind", "M", "K", "N", "repeat", "dram_bytes", "glb_bytes", "pe_buffer_bytes",
                   "energy_pj", "pj_per_mac", "weight_bits", *ACTIONS, *(f"energy_{c}_pj" for c in COMPONENTS)):
        assert column in frame.columns


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_results_are_written_as_parquet_csv_or_json(tmp_path, suffix):
    """Each format, written into two levels of folders that do not exist yet (save makes every missing parent)."""
    result = simulate(chained_trace(), load_arch("fgmp"))
    path = result.save(tmp_path / "runs" / "new" / f"out{suffix}")
    assert path == tmp_path / "runs" / "new" / f"out{suffix}"
    if suffix == ".json":
        document = json.loads(path.read_text())
        assert document["summary"]["cycles"] == result.summary()["cycles"]
        assert [op["op"] for op in document["ops"]] == ["first", "second"]
    else:
        back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        assert back.cycles.tolist() == result.to_frame().cycles.tolist()


def test_unknown_result_suffix_names_the_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        simulate(chained_trace(), load_arch("fgmp")).save(tmp_path / "out.xlsx")
    assert err.value.field == "--out" and ".parquet" in err.value.fix
