"""A decode step reads its KV cache at the stored block precision, and the DRAM footprint (weights + KV cache) is
reported against memory.dram.size_bytes (fgmpsim.sim.hw.dram)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.sim.hw.dram import kv_group
from fgmpsim.trace import GemmOp, Trace, synth_trace


def _decode_qk(k_map: np.ndarray) -> Trace:
    """One decode step's attn_qk: one query (head_dim 32 = 2 blocks, all FP8) over 32 cached keys."""
    q = np.ones((1, 1, 2), bool)
    return Trace("step", (GemmOp("qk", 0, "attn_qk", 1, 32, 32, 1, k_map, q, False, None),), 16)


def test_decode_reads_the_kv_cache_at_its_stored_precision():
    """K blocks cost their stored bits: an FP8 block 16 x 8 = 128 bits (no block scale), an NVFP4 block 16 x 4 + 8 = 72,
    plus the metadata bits of every block; the query's two FP8 blocks come on top. Hand count, not the engine's."""
    arch = load_arch("fgmp")
    st = arch.storage
    fp8, fp4 = 16 * st.fp8_value_bits + st.fp8_scale_bits, 16 * st.fp4_value_bits + st.fp4_scale_bits
    assert (fp8, fp4) == (128, 72)
    k_map = np.zeros((1, 32, 2), bool)
    k_map[0, :10, 0] = True  # 10 FP8 blocks of 64
    for engine in ("tile", "reference"):
        row = simulate(_decode_qk(k_map), arch, engine=engine).rows[0]
        assert row["dram_read_bits"] == 10 * fp8 + 54 * fp4 + 2 * fp8, engine
        assert row["dram_read_metadata_bits"] == (64 + 2) * st.metadata_bits_per_block
        assert row["kv_cache_bits"] == 10 * fp8 + 54 * fp4 + 64 * st.metadata_bits_per_block + st.tensor_scale_bits
    dense_fp8 = simulate(_decode_qk(np.ones((1, 32, 2), bool)), arch).rows[0]
    assert dense_fp8["dram_read_bits"] - row["dram_read_bits"] == 54 * (fp8 - fp4)


def test_footprint_against_the_dram_size():
    trace = synth_trace("smollm2-135m", phase="decode", kv_len=64)
    arch = load_arch("fgmp")
    summary = simulate(trace, arch).summary()
    assert summary["dram_size_bytes"] is None and summary["dram_fits"] is None
    weights, kv = summary["dram_weight_bytes"], summary["dram_kv_cache_bytes"]
    assert weights == summary["weight_bytes"] // 1
    assert kv > 0 and summary["dram_footprint_bytes"] == weights + kv
    # SmolLM2-135M: 9 query heads share 3 KV heads, the trace repeats each KV head's map 3 times
    assert kv_group(trace) == 3
    rows = simulate(trace, arch).rows
    assert kv == sum(r["kv_cache_bits"] for r in rows) // 3 // 8
    total = weights + kv
    assert simulate(trace, load_arch("fgmp", [f"memory.dram.size_bytes={total}"])).summary()["dram_fits"] is True
    assert simulate(trace, load_arch("fgmp", [f"memory.dram.size_bytes={total - 1}"])).summary()["dram_fits"] \
        is False


def test_kv_cache_is_smaller_on_fgmp_than_on_fp8():
    trace = synth_trace("smollm2-135m", phase="decode", kv_len=64)
    fgmp, fp8 = (simulate(trace, load_arch(name)).summary()["dram_kv_cache_bytes"] for name in ("fgmp", "fp8_baseline"))
    assert fgmp < fp8


@pytest.mark.parametrize("meta,group", [({}, 1), ({"model": {"heads": 8, "kv_heads": 2}}, 4),
                                        ({"model": {"heads": 8, "kv_heads": 3}}, 1)])
def test_kv_group(meta, group):
    assert kv_group(Trace("t", (), 16, meta)) == group


def test_simulate_warns_when_the_dram_is_too_small(monkeypatch, tmp_path, capsys):
    import fgmpsim.cli as cli
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate",))
    k_map = np.zeros((1, 32, 2), bool)
    saved = _decode_qk(k_map).save(tmp_path / "t")
    for size, warned in ((1 << 20, False), (16, True)):
        assert cli.main(["simulate", "--trace", str(saved), "--arch", "fgmp", "--top", "0",
                         "--set", f"memory.dram.size_bytes={size}"]) == 0
        text = capsys.readouterr().out
        assert ("do not fit memory.dram.size_bytes" in text) is warned
    assert cli.main(["simulate", "--trace", str(saved), "--arch", "fgmp", "--top", "0", "--attention", "dense"]) == 0
