"""Causal attention: the masked keys of a causal op are skipped band by band (fgmpsim.sim.hw.causal), on every
engine; ``attention="dense"`` counts the full product; trace format 3 records the flag, formats 1 and 2 load dense."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from fgmpsim.arch import load_arch
from fgmpsim.errors import ConfigError, TraceError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.sim.engines.reference import TIMING
from fgmpsim.sim.engines.reference.tiles import action_names
from fgmpsim.sim.hw.causal import BAND_ROWS, band_ranges
from fgmpsim.trace import GemmOp, Trace, load_trace, synth_trace
from fgmpsim.trace.io import MANIFEST

ONES = np.ones
OWN = (*TIMING, *action_names(), "weight_fp8_fraction", "act_fp8_fraction", "output_blocks", "output_fp8_blocks",
       "tiles", "start_cycle", "end_cycle", "causal_bands")


def _qk(m: int, keys: int, causal: bool = True, consumer: str | None = None) -> GemmOp:
    return GemmOp("qk", 0, "attn_qk", m, 16, keys, 1, ONES((keys, 1), bool), ONES((m, 1), bool), False, consumer,
                  causal=causal)


def test_two_band_attn_qk_by_hand():
    """32 queries over 32 keys, head_dim one block, all FP8, 16-row bands, 16 x 16 tiles: band 0 (rows 0-15) sees
    keys 0-15 (one tile), band 1 (rows 16-31) all 32 keys (two tiles); the dense op has four tiles. Each WS tile:
    16 lanes x 16 rows x 1 block at 1 cycle per block pair = 16 compute cycles."""
    arch = load_arch("fp8_baseline")
    mapping = Mapping("weight_stationary", 16, 16, 1)
    fp8_block = 16 * arch.storage.fp8_value_bits + arch.storage.fp8_scale_bits
    trace = Trace("hand", (_qk(32, 32),), 16)
    causal = simulate(trace, arch, mapping=mapping, causal_band_rows=16).rows[0]
    dense = simulate(trace, arch, mapping=mapping, attention="dense").rows[0]
    assert causal["causal_bands"] == 2 and dense["causal_bands"] == 0
    assert (causal["tiles"], dense["tiles"]) == (3, 4)
    assert (causal["macs"], dense["macs"]) == (16 * (16 * 16 + 16 * 32), 16 * 32 * 32)
    assert (causal["block_pairs"], dense["block_pairs"]) == (16 * 16 + 16 * 32, 32 * 32)
    assert (causal["compute_cycles"], dense["compute_cycles"]) == (3 * 16, 4 * 16)
    # band 0 reads K rows 0-15 and Q rows 0-15, band 1 K rows 0-31 (again) and Q rows 16-31: 80 blocks; dense 64
    assert (causal["dram_read_bits"], dense["dram_read_bits"]) == (80 * fp8_block, 64 * fp8_block)
    # no consumer: the scores leave in BF16 (16 bits each), only the computed ones
    assert (causal["dram_write_bits"], dense["dram_write_bits"]) == ((16 * 16 + 16 * 32) * 16, 32 * 32 * 16)
    assert causal["cycles"] == causal["compute_cycles"] + sum(causal[s] for s in (
        "stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles"))


def test_two_band_attn_pv_by_hand():
    """attn_pv of 32 queries over 32 keys (2 key blocks) and head_dim 16: band 0 reduces over key block 0 only,
    band 1 over both: 16 x 16 x 16 + 16 x 16 x 32 MACs."""
    pv = GemmOp("pv", 0, "attn_pv", 32, 32, 16, 1, ONES((16, 2), bool), ONES((32, 2), bool), False, None,
                causal=True)
    row = simulate(Trace("hand", (pv,), 16), load_arch("fp8_baseline"), causal_band_rows=16).rows[0]
    assert row["macs"] == 16 * 16 * 16 + 16 * 16 * 32
    assert row["block_pairs"] == 16 * 16 * 1 + 16 * 16 * 2


@pytest.mark.parametrize("engine", ["tile", "reference", "event"])
def test_a_band_seeing_one_key_past_a_block_boundary_reads_that_block(engine):
    """attn_pv of 17 queries over K = 17 keys (2 key blocks, the second holding key 16 alone), head_dim 16, 16-row
    bands: band 0 (rows 0-15) sees keys 0-15, 1 block; band 1 (row 16) sees all 17, 2 blocks (MACs count whole
    blocks): 16 x 16 x 16 + 1 x 16 x 32 MACs, 16 x 16 x 1 + 1 x 16 x 2 block pairs."""
    pv = GemmOp("pv", 0, "attn_pv", 17, 17, 16, 1, ONES((16, 2), bool), ONES((17, 2), bool), False, None,
                causal=True)
    row = simulate(Trace("hand", (pv,), 16), load_arch("fp8_baseline"), engine=engine, causal_band_rows=16).rows[0]
    assert (row["causal_bands"], row["macs"], row["block_pairs"]) == (2, 16 * 16 * 16 + 16 * 32, 16 * 16 + 16 * 2)


def test_band_ranges_follow_the_diagonal():
    # 40 queries over 56 keys (16 cached): rows 0-15 see 32 keys, 16-31 see 48, 32-39 all 56
    assert band_ranges(40, 56, 56, 1, 16) == [(0, 16, 32), (16, 32, 48), (32, 40, 56)]
    # the same bands of attn_pv in 16-key blocks of a K padded to 64: 2, 3 and 4 blocks
    assert band_ranges(40, 56, 4, 16, 16) == [(0, 16, 2), (16, 32, 3), (32, 40, 4)]
    # 2048 x 2048 in 128-row bands: 17/32 of the dense product
    live = sum((b - a) * n for a, b, n in band_ranges(2048, 2048, 2048, 1, BAND_ROWS))
    assert live / 2048 ** 2 == pytest.approx(17 / 32)


def _attention_pair(rng: np.random.Generator, m: int, keys: int, repeat: int, mixed_p: bool = False) -> Trace:
    """qk -> pv -> linear; P (pv's activation, qk's output) all FP8 as exports write it, or mixed (``mixed_p``:
    then each qk band's output FP8 blocks are its own band of P's, which only the pairing of bands gets right)."""
    kb = -(-keys // 16)
    qk = GemmOp("qk", 0, "attn_qk", m, 32, keys, repeat, rng.random((repeat, keys, 2)) < 0.4,
                rng.random((repeat, m, 2)) < 0.4, False, "pv", causal=True)
    p_map = rng.random((repeat, m, kb)) < 0.5 if mixed_p else ONES((repeat, m, kb), bool)
    pv = GemmOp("pv", 0, "attn_pv", m, kb * 16, 32, repeat, rng.random((repeat, 32, kb)) < 0.4,
                p_map, False, "out", causal=True)
    out = GemmOp("out", 0, "linear", m, 32, 16, 1, rng.random((16, 2)) < 0.4, rng.random((m, 2)) < 0.4)
    return Trace("pair", (qk, pv, out), 16)


@pytest.mark.parametrize("m,keys,arch_name,mixed_p", [(40, 40, "fgmp", False), (40, 56, "fgmp", False),
                                                      (24, 24, "fp8_baseline", False),
                                                      (40, 53, "fgmp_output_stationary", False),
                                                      (40, 56, "fgmp", True)])
def test_engines_agree_on_causal_ops(m, keys, arch_name, mixed_p):
    """tile == reference (own bands, own counts and cycles) == event, and analytic counts equal, on a causal
    qk -> pv -> linear chain with a short last band, a KV-cache offset and a padded K."""
    arch = load_arch(arch_name)
    trace = _attention_pair(np.random.default_rng(m + keys), m, keys, 2, mixed_p)
    runs = {engine: simulate(trace, arch, engine=engine, causal_band_rows=16).to_frame()
            for engine in ("tile", "reference", "event", "analytic")}
    tile = runs["tile"]
    assert list(tile["causal_bands"]) == [-(-m // 16)] * 2 + [0]
    for engine in ("reference", "event"):
        for column in OWN:
            assert list(runs[engine][column]) == list(tile[column]), (engine, column)
    for column in action_names():
        assert list(runs["analytic"][column]) == list(tile[column]), column
    dense = simulate(trace, arch, attention="dense").to_frame()
    assert (tile["macs"][:2] < dense["macs"][:2]).all() and tile["macs"][2] == dense["macs"][2]
    # what the op stores is the whole op's, however many bands compute it (the bands do not add up KV caches)
    for column in ("kv_cache_bits", "weight_bits", "weight_fp8_fraction", "act_fp8_fraction"):
        assert list(tile[column]) == list(dense[column]) == list(runs["reference"][column]), column
    assert (tile["kv_cache_bits"][:2] > 0).all()


@pytest.mark.parametrize("engine", ["tile", "event"])
def test_one_band_over_every_query_is_the_dense_op(engine):
    # keys = queries and a band of all 40 rows: the band sees every key and computes its masked triangle, so the causal
    # op is the dense op in every column, SimPy events included
    trace = _attention_pair(np.random.default_rng(7), 40, 40, 2)
    causal = simulate(trace, load_arch("fgmp"), engine=engine, causal_band_rows=40).to_frame()
    dense = simulate(trace, load_arch("fgmp"), engine=engine, attention="dense").to_frame()
    assert list(causal["causal_bands"]) == [1, 1, 0]
    assert causal.drop(columns="causal_bands").equals(dense.drop(columns="causal_bands"))


def test_causal_decode_step_changes_nothing():
    """One query over the whole cache sees every key: the one band is the dense op."""
    arch = load_arch("fgmp")
    trace = Trace("step", (_qk(1, 48),), 16)
    causal, dense = (simulate(trace, arch, attention=mode).rows[0] for mode in ("causal", "dense"))
    assert {k: v for k, v in causal.items() if k != "causal_bands"} == \
        {k: v for k, v in dense.items() if k != "causal_bands"}


def test_bad_attention_options_are_refused():
    trace = Trace("t", (_qk(16, 16),), 16)
    with pytest.raises(ConfigError, match="attention"):
        simulate(trace, load_arch("fgmp"), attention="masked")
    with pytest.raises(ConfigError, match="causal_band_rows"):
        simulate(trace, load_arch("fgmp"), causal_band_rows=0)


def test_causal_op_checks():
    lin = GemmOp("l", 0, "linear", 4, 16, 4, 1, ONES((4, 1), bool), ONES((4, 1), bool), causal=True)
    with pytest.raises(TraceError, match="only attention"):
        Trace("t", (lin,), 16).check()
    with pytest.raises(TraceError, match="at least as many keys"):
        Trace("t", (_qk(32, 16),), 16).check()


def test_synth_marks_prefill_attention_causal():
    prefill = synth_trace("smollm2-135m", tokens=32)
    decode = synth_trace("smollm2-135m", phase="decode", kv_len=32)
    assert {op.kind for op in prefill.ops if op.causal} == {"attn_qk", "attn_pv"}
    assert not any(op.causal for op in decode.ops)
    assert prefill.meta["attention"]["masking"].startswith("causal")


def test_trace_format_3_keeps_the_flag_and_formats_1_and_2_load_dense(tmp_path):
    trace = Trace("t", (_qk(16, 16, consumer=None),), 16)
    saved = trace.save(tmp_path / "v2")
    assert load_trace(saved).ops[0].causal
    manifest = yaml.safe_load((saved / MANIFEST).read_text())
    assert manifest["format_version"] == 3
    for version in (1, 2):
        old = dict(manifest, format_version=version, ops=[{k: v for k, v in op.items() if k != "causal"}
                                                          for op in manifest["ops"]])
        (saved / MANIFEST).write_text(yaml.safe_dump(old, sort_keys=False))
        assert not load_trace(saved).ops[0].causal
        (saved / MANIFEST).write_text(yaml.safe_dump(dict(old, ops=manifest["ops"]), sort_keys=False))
        with pytest.raises(TraceError, match="unknown key"):
            load_trace(saved)  # versions 1 and 2 have no causal field
    dense = Trace("t", (_qk(16, 16, causal=False),), 16).save(tmp_path / "dense")
    assert yaml.safe_load((dense / MANIFEST).read_text())["format_version"] == 1  # the lowest that holds it


def test_causal_band_maps_are_the_op_map_rows():
    """Band ops cut the op's maps: no new bits (the MAC mix of the bands is the op's mix over the computed part)."""
    rng = np.random.default_rng(5)
    trace = _attention_pair(rng, 32, 32, 1)
    qk = trace.ops[0]
    arch = load_arch("fgmp")
    row = simulate(trace, arch, causal_band_rows=16).rows[0]
    w, a = qk.weight_map_array()[0], qk.act_map_array()[0]
    fp8 = {"fp8xfp8": 0, "fp8xfp4": 0, "fp4xfp8": 0, "fp4xfp4": 0}
    for m in range(32):
        for n in range(16 if m < 16 else 32):
            for k in range(2):
                fp8[f"fp{8 if w[n, k] else 4}xfp{8 if a[m, k] else 4}"] += 16
    assert {pair: row[f"macs_{pair}"] for pair in fp8} == fp8
