"""A sweep's stored numbers are exactly those of fgmpsim.simulate called directly for each point."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fgmpsim
from fgmpsim.sweep.run import RELATIVE_METRICS

# the clock prices a run without changing its unit costs: its points run as batches re-pricing their first's costs
GRID = {"pe_array.lanes_per_pe": [8, 16], "memory.glb.size_bytes": [65536, 2097152], "clock_hz": [1e9, 2e9]}
TINY_LLAMA = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 256, "vocab_size": 512}


def _spec(config: Path) -> dict:
    return {"name": "small",
            "traces": [{"gemm": {"m": 64, "k": 512, "n": [96, 256], "fp4_fraction": 0.7, "seed": 3}},
                       {"synth": {"model": str(config), "tokens": 32, "fp4_fraction": 0.6}}],
            "archs": ["fgmp"], "grid": GRID, "points": [{"pe_array.pes": 4}], "baseline": "fp8_baseline"}


def _traces(config: Path) -> list[tuple[fgmpsim.Trace, dict]]:
    gemms = [(fgmpsim.gemm_trace(64, 512, n, fp4_fraction=0.7, seed=3), {"gemm.n": n}) for n in (96, 256)]
    return [*gemms, (fgmpsim.synth_trace(str(config), tokens=32, fp4_fraction=0.6), {})]


def _override_sets() -> list[dict]:
    keys = list(GRID)
    return [dict(zip(keys, values)) for values in itertools.product(*GRID.values())] + [{"pe_array.pes": 4}]


def _params(frame: pd.DataFrame, overrides: dict, trace_params: dict) -> pd.DataFrame:
    """Rows of ``frame`` whose swept columns equal ``overrides`` (absent = NaN) and ``trace_params``."""
    mask = frame["arch"].notna()
    for column in [*GRID, "pe_array.pes"]:
        value = overrides.get(column)
        mask &= frame[column].isna() if value is None else frame[column] == value
    for column, value in trace_params.items():
        mask &= frame[column] == value
    return frame[mask]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    config = root / "tiny-llama" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps(TINY_LLAMA))
    spec = _spec(config)
    return root / "store", fgmpsim.sweep.run(spec, root / "store", workers=2), spec, config


def test_every_point_equals_a_direct_simulate_call(swept):
    out, report, _, config = swept
    table = fgmpsim.sweep.load(out)
    per_op = fgmpsim.sweep.load(out, per_op=True)
    sets = _override_sets()
    assert report.failed == 0 and report.points == 3 * len(sets) * 2 == len(table)
    for (trace, trace_params), overrides in itertools.product(_traces(config), sets):
        for role, arch_name in (("point", "fgmp"), ("baseline", "fp8_baseline")):
            direct = fgmpsim.simulate(trace, fgmpsim.load_arch(arch_name, overrides))
            rows = _params(table[(table["trace"] == trace.name) & (table["role"] == role)], overrides,
                           trace_params)
            assert len(rows) == 1, (trace.name, overrides, role)
            row = rows.iloc[0]
            for name, value in direct.summary().items():
                assert row[name] == value, (name, trace.name, overrides, role)
            ops = per_op[per_op["key"] == row["key"]][list(direct.to_frame().columns)].reset_index(drop=True)
            pd.testing.assert_frame_equal(ops, direct.to_frame(), check_dtype=False, check_exact=True)


def test_points_differing_only_in_pricing_run_as_one_batch_within_the_size_limit(swept):
    from fgmpsim.sweep.executors import batches
    from fgmpsim.sweep.points import expand
    from fgmpsim.sweep.run import _task
    from fgmpsim.sweep.spec import load_spec

    tasks = [_task(point) for point in expand(load_spec(swept[2]))]
    grouped = batches(tasks, workers=2)  # at most ceil(54 / (4 x 2)) = 7 tasks per batch
    assert sorted(task.key for batch in grouped for task in batch) == sorted(task.key for task in tasks)
    for batch in grouped:
        assert len({(t.trace.identity, t.engine, t.arch.pe_array, t.arch.memory, t.arch.name) for t in batch}) == 1
        # the grid's two clocks of one design together; the pes = 4 point (one clock) alone
        assert sorted(t.arch.clock_hz for t in batch) == ([1e9] if batch[0].arch.pe_array.pes == 4 else [1e9, 2e9])
    assert len(grouped) == 3 * 2 * (4 + 1) == 30  # traces x roles x (lanes x GLB pairs + the pes = 4 point)
    assert all(len(batch) == 1 for batch in batches(tasks, workers=len(tasks)))  # ceil(54 / (4 x 54)) = 1


def test_a_large_group_is_cut_into_batches_of_the_size_limit():
    from dataclasses import replace

    from fgmpsim.sweep.executors import MAX_BATCH, batches
    from fgmpsim.sweep.points import expand
    from fgmpsim.sweep.run import _task
    from fgmpsim.sweep.spec import load_spec

    spec = {"name": "clocks", "traces": [{"gemm": {"m": 16, "k": 64, "n": 16}}], "archs": ["fgmp"],
            "grid": {"clock_hz": [1e9 + i for i in range(20)]}}
    tasks = [_task(point) for point in expand(load_spec(spec))]  # 20 points of one cost scope
    assert [len(b) for b in batches(tasks, workers=1)] == [5, 5, 5, 5]  # ceil(20 / (4 x 1))
    assert [len(b) for b in batches(tasks, workers=2)] == [3] * 6 + [2]  # ceil(20 / 8)
    many = [replace(tasks[0], key=f"{i:064d}") for i in range(100)]
    assert [len(b) for b in batches(many, workers=1)] == [MAX_BATCH] * 12 + [4]  # ceil(100 / 4) = 25, capped


def test_relative_change_columns_are_recomputed_from_two_simulations(swept):
    out, *_ = swept
    table = fgmpsim.sweep.load(out)
    trace = fgmpsim.gemm_trace(64, 512, 256, fp4_fraction=0.7, seed=3)
    overrides = {"pe_array.lanes_per_pe": 8, "memory.glb.size_bytes": 65536, "clock_hz": 2e9}
    fgmp = fgmpsim.simulate(trace, fgmpsim.load_arch("fgmp", overrides)).summary()
    fp8 = fgmpsim.simulate(trace, fgmpsim.load_arch("fp8_baseline", overrides)).summary()
    row = _params(table[(table["trace"] == trace.name) & (table["role"] == "point")], overrides,
                  {"gemm.n": 256}).iloc[0]
    for metric in (m for m in RELATIVE_METRICS if m in fgmp):
        assert row[f"{metric}_vs_baseline"] == pytest.approx(fgmp[metric] / fp8[metric] - 1, rel=1e-12)
    assert row["energy_pj_vs_baseline"] < 0  # FGMP spends less than the all-FP8 design on the same shapes
    assert np.isnan(table[table["role"] == "baseline"]["energy_pj_vs_baseline"]).all()


def test_rerun_resumes_without_recomputing(swept):
    out, first, spec, _ = swept
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    again = fgmpsim.sweep.run(spec, out, workers=2)
    assert (again.ran, again.already_done, again.failed) == (0, first.points, 0)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == mtimes


def test_summary_file_is_the_loaded_table(swept):
    out, *_ = swept
    stored = pd.read_parquet(out / "summary.parquet")
    pd.testing.assert_frame_equal(stored, fgmpsim.sweep.load(out), check_dtype=False)


def test_dask_local_cluster_gives_the_local_pool_results_despite_a_lost_worker(swept, tmp_path):
    pytest.importorskip("dask.distributed")
    out, _, spec, _ = swept
    spec = {**spec, "traces": spec["traces"][:1]}  # the gemm traces: keep the cluster's work small
    killed = []

    def kill_a_worker(done, failed, total):
        if done and not killed:  # the cluster's worker processes are our children; the nanny restarts the killed one
            killed.append(multiprocessing.active_children()[0].pid)
            os.kill(killed[0], signal.SIGKILL)

    store = tmp_path / "dask"
    report = fgmpsim.sweep.run(spec, store, workers=2, dask="local", progress=kill_a_worker)
    # gemm traces x (8 grid + 1) override sets x roles
    assert killed and report.ran + report.failed == report.points == 2 * 9 * 2
    if report.failed:  # a task that lost its worker three times: recorded as transient, so a rerun completes it
        assert fgmpsim.sweep.failures(store)["transient"].all()
        assert fgmpsim.sweep.run(spec, store, workers=1).failed == 0
    on_dask = fgmpsim.sweep.load(store, per_op=True).sort_values(["key", "op"]).reset_index(drop=True)
    local = fgmpsim.sweep.load(out, per_op=True)
    local = local[local["key"].isin(on_dask["key"])][list(on_dask.columns)].sort_values(["key", "op"])
    assert on_dask["key"].is_unique and len(on_dask) == report.points
    pd.testing.assert_frame_equal(on_dask, local.reset_index(drop=True), check_exact=True,
                                  check_dtype=False)  # local: NaN-padded columns of the synth trace are floats
