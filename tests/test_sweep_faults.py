"""Faults in sweeps: killed runs, killed workers, failing points and failing writes lose no finished point, record
what failed, and a rerun completes the rest, every point exactly once."""

from __future__ import annotations

import errno
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import fgmpsim
from fgmpsim.cli import main
from fgmpsim.sweep import executors
from fgmpsim.sweep import points as points_module
from fgmpsim.sweep import store as store_module

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = ROOT / "traces" / "smollm2-135m-fgmp70"
GEMM = {"gemm": {"m": 64, "k": 256, "n": 128, "fp4_fraction": 0.7}}


def _write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def _slow_spec(tmp_path: Path, points: int = 6) -> Path:
    """``points`` points on the shipped SmolLM2 trace (about 0.4 s each): slow enough to be killed mid-run."""
    return _write_spec(tmp_path / "slow.yaml", {"name": "slow", "traces": [str(SMOLLM2)], "archs": ["fgmp"],
                                                "grid": {"memory.glb.size_bytes": [2**20 + 2**14 * i
                                                                                   for i in range(points)]}})


def _start(spec: Path, out: Path, workers: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fgmpsim", "sweep", str(spec), "--out", str(out),
                             "--workers", str(workers)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for_points(out: Path, count: int, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list((out / "points").glob("[!.]*.parquet"))) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)


def _finished(out: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (out / "points").glob("[!.]*.parquet")}


def test_sigkill_mid_run_then_rerun_runs_every_point_exactly_once(tmp_path):
    spec, out = _slow_spec(tmp_path), tmp_path / "store"
    proc = _start(spec, out)
    _wait_for_points(out, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker, as a crash or the OOM killer would
    proc.wait()
    before = _finished(out)
    assert 2 <= len(before) < 6
    report = fgmpsim.sweep.run(spec, out, workers=2)
    assert (report.already_done, report.ran, report.failed) == (len(before), 6 - len(before), 0)
    after = _finished(out)
    assert len(after) == 6 and all(after[key] == mtime for key, mtime in before.items())  # none recomputed
    table = fgmpsim.sweep.load(out)
    assert len(table) == 6 and table["key"].is_unique
    assert sorted(table["memory.glb.size_bytes"]) == [2**20 + 2**14 * i for i in range(6)]
    assert not list((out / "points").glob(".*")) and not list(out.glob(".*"))  # no temporary file left


def test_ctrl_c_exits_130_and_keeps_finished_points(tmp_path):
    spec, out = _slow_spec(tmp_path), tmp_path / "store"
    proc = _start(spec, out)
    _wait_for_points(out, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends Ctrl-C to the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    kept = _finished(out)
    assert 1 <= len(kept) < 6 and len(fgmpsim.sweep.load(out)) == len(kept)


def test_failing_point_is_recorded_and_the_rest_finish(tmp_path, capsys):
    spec = _write_spec(tmp_path / "spec.yaml", {"traces": [GEMM], "archs": ["fgmp"],
                                                "grid": {"memory.weight_buffer.size_bytes": [32768, 8, 16384]}})
    out = tmp_path / "store"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2"]) == 1
    line = capsys.readouterr().out
    assert "3 points" in line and "1 failed (MappingError 1" in line
    failed = fgmpsim.sweep.failures(out)
    assert list(failed["memory.weight_buffer.size_bytes"]) == [8] and list(failed["error_class"]) == ["MappingError"]
    assert "memory.weight_buffer.size_bytes" in failed["message"][0] and not failed["transient"][0]
    assert sorted(fgmpsim.sweep.load(out)["memory.weight_buffer.size_bytes"]) == [16384, 32768]
    # the failure would repeat (same code, same point): a rerun keeps it recorded and runs nothing
    assert main(["sweep", str(spec), "--out", str(out)]) == 1
    assert "0 run now, 2 already done, 1 failed" in capsys.readouterr().out


def test_failing_write_keeps_the_other_points_and_a_rerun_completes(tmp_path, monkeypatch):
    spec = {"traces": [GEMM], "archs": ["fgmp"], "grid": {"pe_array.lanes_per_pe": [4, 8, 16]}}
    out = tmp_path / "store"
    real = store_module.write_point_file
    target = fgmpsim.sweep.expand(fgmpsim.sweep.load_spec(spec))[1].key

    def full_disk(path, data):
        def half_then_full(tmp):
            tmp.write_bytes(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        store_module._atomic_write(path, half_then_full) if path.stem == target else real(path, data)

    monkeypatch.setattr(store_module, "write_point_file", full_disk)
    report = fgmpsim.sweep.run(spec, out, workers=2)
    assert (report.ran, report.failed, report.errors) == (2, 1, {"OSError": 1})
    record = fgmpsim.sweep.failures(out).iloc[0]
    assert record["key"] == target and record["transient"] and "No space left" in record["message"]
    assert not list((out / "points").glob(".*"))  # the half-written temporary file is gone
    monkeypatch.setattr(store_module, "write_point_file", real)
    again = fgmpsim.sweep.run(spec, out, workers=2)
    assert (again.already_done, again.ran, again.failed) == (2, 1, 0)
    table = fgmpsim.sweep.load(out)
    assert sorted(table["pe_array.lanes_per_pe"]) == [4, 8, 16] and table["key"].is_unique
    assert fgmpsim.sweep.failures(out).empty


def test_worker_killed_mid_point_is_retried(tmp_path):
    spec = {"traces": [str(SMOLLM2)], "archs": ["fgmp"], "grid": {"pe_array.lanes_per_pe": [4, 8, 16, 32]}}
    killed = []

    def kill_a_worker(done, failed, total):
        if done and not killed:
            victim = multiprocessing.active_children()[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    report = fgmpsim.sweep.run(spec, tmp_path / "store", workers=2, progress=kill_a_worker)
    assert killed and (report.ran, report.failed) == (4, 0)
    table = fgmpsim.sweep.load(tmp_path / "store")
    assert sorted(table["pe_array.lanes_per_pe"]) == [4, 8, 16, 32] and table["key"].is_unique



def test_a_point_that_always_kills_its_worker_fails_alone(tmp_path, monkeypatch):
    """16 points of one cost scope on 2 workers (batches of 2); the point at the second clock kills its worker
    every time it runs (the forked workers inherit the patch). Only it is charged: retried alone MAX_ATTEMPTS
    times, then reported WorkerLost; the 15 others, queued or running beside it, all finish once."""
    clocks = [1e9 + i for i in range(16)]
    spec = {"traces": [GEMM], "archs": ["fgmp"], "grid": {"clock_hz": clocks}}
    real = executors.simulate

    def deadly(trace, arch, engine):
        if arch.clock_hz == clocks[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(trace, arch, engine=engine)

    monkeypatch.setattr(executors, "simulate", deadly)
    report = fgmpsim.sweep.run(spec, tmp_path / "store", workers=2)
    assert (report.ran, report.failed, report.errors) == (15, 1, {"WorkerLost": 1})
    failures = fgmpsim.sweep.failures(tmp_path / "store")
    assert list(failures["clock_hz"]) == [clocks[1]] and failures["transient"].all()
    assert sorted(fgmpsim.sweep.load(tmp_path / "store")["clock_hz"]) == [c for c in clocks if c != clocks[1]]
    assert not list((tmp_path / "store").rglob("*.running"))  # no marker outlives the sweep


def test_a_lost_batch_is_rerun_one_point_per_batch_and_nothing_is_lost(tmp_path, monkeypatch):
    """16 points of one cost scope on 2 workers run as batches of 2 (ceil(16 / (4 x 2))); the point at the second
    clock kills its worker process the first time it runs (the workers are forked: they inherit the patch; a file
    remembers the kill). The broken pool's batches go back one point per batch: every point finishes once."""
    clocks = [1e9 + i for i in range(16)]
    spec = {"traces": [GEMM], "archs": ["fgmp"], "grid": {"clock_hz": clocks}}
    real, marker = executors.simulate, tmp_path / "killed"
    resubmitted = []
    real_batches = executors.batches

    def deadly(trace, arch, engine):
        if arch.clock_hz == clocks[1] and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(trace, arch, engine=engine)

    def sizes(tasks, workers):
        made = real_batches(tasks, workers)
        resubmitted.append([len(batch) for batch in made])
        return made

    monkeypatch.setattr(executors, "simulate", deadly)
    monkeypatch.setattr(executors, "batches", sizes)
    report = fgmpsim.sweep.run(spec, tmp_path / "store", workers=2)
    assert marker.exists() and (report.ran, report.failed) == (16, 0)
    assert resubmitted == [[2] * 8]  # the first round in pairs (the retries are single points, not re-batched)
    table = fgmpsim.sweep.load(tmp_path / "store")
    assert sorted(table["clock_hz"]) == clocks and table["key"].is_unique


def test_code_change_recomputes_every_point_and_drops_the_stale_files(tmp_path, monkeypatch):
    spec = {"traces": [GEMM], "archs": ["fgmp"], "grid": {"pe_array.lanes_per_pe": [8, 16]}}
    out = tmp_path / "store"
    assert fgmpsim.sweep.run(spec, out, workers=1).ran == 2
    old = set(_finished(out))
    monkeypatch.setattr(points_module, "code_version", lambda: "another version of the sources")
    again = fgmpsim.sweep.run(spec, out, workers=1)
    assert (again.already_done, again.ran) == (0, 2)
    new = set(_finished(out))
    assert len(new) == 2 and not new & old and len(fgmpsim.sweep.load(out)) == 2


def test_full_disk_at_the_summary_keeps_the_points_and_exits_1(tmp_path, monkeypatch, capsys):
    spec = _write_spec(tmp_path / "spec.yaml", {"traces": [GEMM], "archs": ["fgmp"],
                                                "grid": {"pe_array.lanes_per_pe": [8, 16]}})
    out = tmp_path / "store"

    def full(self, table):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.Store, "write_summary", full)
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1"]) == 1
    assert "summary.parquet not written (No space left on device)" in capsys.readouterr().out
    assert len(_finished(out)) == 2 and not (out / "summary.parquet").exists()
    monkeypatch.undo()
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    assert len(pd.read_parquet(out / "summary.parquet")) == 2


def test_a_long_error_message_is_cut_so_the_outcome_stays_small(monkeypatch):
    # a worker's outcome must stay below a pipe's atomic write (a SIGKILL mid-send must not leave half a message)
    def fail(trace, arch, engine):
        raise ValueError("x" * 10_000)

    monkeypatch.setattr(executors, "_trace", lambda source: None)
    monkeypatch.setattr(executors, "simulate", fail)
    outcome = executors.run_task(executors.Task("k" * 64, None, None, "tile", {}, "unused.parquet"))
    assert outcome.error_class == "ValueError" and not outcome.transient
    assert outcome.message == "x" * executors.MAX_MESSAGE + " ... (8,000 more characters cut)"
    assert len(pickle.dumps(outcome)) < 4096
    # a whole batch of failing points shares the budget: its outcomes, sent back at once, stay below 4 KB too
    batch = tuple(executors.Task(f"{i:064d}", None, None, "tile", {}, "unused.parquet")
                  for i in range(executors.MAX_BATCH))
    outcomes = executors.run_batch(batch)
    assert [o.key for o in outcomes] == [t.key for t in batch]
    assert all(o.message.startswith("x" * (executors.MAX_MESSAGE // executors.MAX_BATCH) + " ... (") for o in outcomes)
    assert len(pickle.dumps(outcomes)) < 4096
