"""``run(spec, out)``: a resumable design-space sweep; ``load(out)``: its results as a pandas DataFrame.

``run`` validates the spec and expands every point (:mod:`fgmpsim.sweep.points`) before anything runs, checks the
output directory (:mod:`fgmpsim.sweep.store`), connects the executor (:mod:`fgmpsim.sweep.executors`), and then
simulates the points that are not finished yet, storing each as it arrives. A point that raises is recorded and the
sweep goes on; Ctrl-C ends the workers and keeps every finished point; rerunning the same call resumes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fgmpsim.errors import SweepError
from fgmpsim.sweep.executors import DaskExecutor, LocalPool, Outcome, Task, check_address, run_task
from fgmpsim.sweep.points import Point, expand
from fgmpsim.sweep.spec import SweepSpec, load_spec
from fgmpsim.sweep.store import Store

RELATIVE_METRICS = ("cycles", "seconds", "energy_pj", "pj_per_mac", "weight_bytes", "dram_bytes", "area_mm2")
"""Summary columns that get a ``<metric>_vs_baseline`` column (value / baseline value - 1) when present."""
_POINT_COLUMNS = ("key", "role", "trace_source", "arch_ref", "engine")

Progress = Callable[[int, int, int], None]
"""``progress(done, failed, total)``, called once before the first point and after every point (``done`` counts
finished points, earlier runs' included)."""


@dataclass(frozen=True)
class SweepReport:
    """What :func:`run` did. ``points``: distinct points in the spec; ``already_done``: finished by an earlier run;
    ``ran``: finished now; ``failed``: points without a result (``errors``: their count per error class), failures
    recorded by an earlier run that would repeat included; ``seconds``: wall time of the run. A dry run fills
    ``estimate_seconds`` (from ``point_seconds``, one point simulated here; ``point_error`` if it failed) instead
    of running. ``summary_error``: why ``summary.parquet`` could not be written (the points are stored)."""

    out: Path
    points: int
    already_done: int
    ran: int
    failed: int
    seconds: float
    workers: int
    errors: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    point_seconds: float | None = None
    estimate_seconds: float | None = None
    point_error: str | None = None
    summary_error: str | None = None

    @property
    def points_per_second(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        if self.dry_run:
            todo = self.points - self.already_done
            timing = (f"one point took {self.point_seconds:.2f} s, so about {self.estimate_seconds:,.1f} s on "
                      f"{self.workers} worker(s)" if self.point_seconds is not None else "nothing to run")
            if self.point_error:
                timing += f" (that point failed: {self.point_error})"
            return (f"dry run: {self.points} points, {todo} to run ({self.already_done} already in "
                    f"{self.out}); {timing}")
        errors = ", ".join(f"{name} {count}" for name, count in sorted(self.errors.items()))
        failed = f"{self.failed} failed ({errors}; see {self.out / 'failed'})" if self.failed else "0 failed"
        rate = f", {self.points_per_second:.2f} points/s on {self.workers} worker(s)" if self.ran else ""
        summary = (f"; {self.out / 'summary.parquet'} not written ({self.summary_error}): rerun to write it"
                   if self.summary_error else "")
        return (f"sweep: {self.points} points in {self.out}: {self.ran} run now, {self.already_done} already done, "
                f"{failed}; {self.seconds:.1f} s{rate}{summary}")

    @property
    def complete(self) -> bool:
        """Every point has a result and the summary table is written."""
        return not self.failed and not self.summary_error


def _workers(workers: int | None) -> int:
    if workers is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers must be a positive integer, got {workers!r}", "--workers", "give --workers 1 or more")
    return workers


def _task(point: Point, store: Store | None = None) -> Task:
    """The task of ``point``; with ``store``, its worker writes the point file there itself (a local worker)."""
    return Task(point.key, point.trace, point.arch, point.engine, point.describe(),
                str(store.point_path(point.key)) if store is not None else None)


def _dry_run(store: Store, points: list[Point], todo: list[Point], workers: int) -> SweepReport:
    point_s = estimate_s = error = None
    if todo:
        start = time.perf_counter()
        outcome = run_task(_task(todo[0]))
        point_s = time.perf_counter() - start
        estimate_s = point_s * len(todo) / min(workers, len(todo))
        error = None if outcome.ok else f"{outcome.error_class}: {outcome.message}"
    return SweepReport(store.out, len(points), len(points) - len(todo), 0, 0, 0.0, workers, dry_run=True,
                       point_seconds=point_s, estimate_seconds=estimate_s, point_error=error)


def run(spec: str | os.PathLike[str] | Mapping[str, Any] | SweepSpec, out: str | os.PathLike[str],
        workers: int | None = None, dask: str | None = None, dry_run: bool = False,
        progress: Progress | None = None) -> SweepReport:
    """Run the sweep ``spec`` (a YAML path, a dict or a :class:`SweepSpec`) into the store ``out``.

    ``workers``: processes (default: the cores this process may use); ``dask``: ``"local"`` (a LocalCluster of
    ``workers`` processes) or a scheduler address ``tcp://host:port`` (its own workers) instead of the local pool; ``dry_run``: simulate one point to estimate the run time and
    write nothing. Bad input (the spec, a missing trace, ``out`` holding another sweep's store, an unreachable
    scheduler) raises :class:`SweepError` before any point runs; failed points are recorded and counted in the
    report. A ``KeyboardInterrupt`` ends the workers and propagates; finished points stay in ``out``."""
    spec = load_spec(spec)
    workers = _workers(workers)
    points = expand(spec)
    store = Store(out)
    store.check(spec)
    finished = store.finished() if store.out.is_dir() else set()
    earlier = store.failures() if store.failed_dir.is_dir() else {}
    repeat = {key: record for key, record in earlier.items() if not record.get("transient")}
    todo = [p for p in points if p.key not in finished and p.key not in repeat]
    if dask:
        check_address(dask)  # a dry run is refused an unreachable scheduler too
    if dry_run:
        return _dry_run(store, points, todo, workers)
    start = time.perf_counter()  # the pool's or cluster's start-up counts: the user waits for it too
    executor = DaskExecutor(dask, workers) if dask else LocalPool(workers)
    by_key = {point.key: point for point in points}
    errors: Counter[str] = Counter(record.get("error_class", "?") for key, record in repeat.items() if key in by_key)
    done = sum(point.key in finished for point in points)
    ran = 0
    with executor:
        store.open(spec, points)
        if progress is not None:
            progress(done, sum(errors.values()), len(points))
        for outcome in executor.outcomes([_task(point, None if dask else store) for point in todo]):
            outcome = _store(store, by_key[outcome.key], outcome)
            if outcome.ok:
                ran += 1
                done += 1
            else:
                errors[outcome.error_class or "?"] += 1
            if progress is not None:
                progress(done, sum(errors.values()), len(points))
    summary_error = None
    try:
        store.write_summary(load(store.out))
    except OSError as err:  # the points are stored; the table is rebuilt from them by load() or the next run
        summary_error = f"{err.strerror or err}"
    already = sum(point.key in finished for point in points)
    return SweepReport(store.out, len(points), already, ran, sum(errors.values()), time.perf_counter() - start,
                       executor.workers, dict(errors), summary_error=summary_error)


def _store(store: Store, point: Point, outcome: Outcome) -> Outcome:
    """Write a finished point, or record a failure; a failing write (a full disk) is itself a transient failure."""
    if outcome.ok:
        try:
            store.write_point(point, outcome.parquet)
            return outcome
        except OSError as err:
            outcome = Outcome(point.key, error_class=type(err).__name__, transient=True,
                              message=f"writing {store.point_path(point.key).name} failed: {err}")
    try:
        store.write_failure(point, outcome.error_class or "?", outcome.message or "", outcome.transient)
    except OSError:
        pass  # the point then counts as not run: a rerun retries it, as it would after the failure record
    return outcome


def _rows(store: Store, per_op: bool) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    finished = store.finished()
    return [store.read_point(point["key"], per_op) for point in store.points() if point["key"] in finished]


def _point_columns(meta: dict[str, Any]) -> dict[str, Any]:
    return {**{name: meta[name] for name in _POINT_COLUMNS}, **meta["params"]}


def load(out: str | os.PathLike[str], per_op: bool = False) -> pd.DataFrame:
    """The results of the sweep stored in ``out``: one row per finished point of its latest run (``key, role,
    trace_source, arch_ref, engine``, one column per swept parameter, ``baseline_key``, every
    :meth:`~fgmpsim.RunResult.summary` column, and with a baseline ``<metric>_vs_baseline`` = value / baseline - 1
    for :data:`RELATIVE_METRICS`); with ``per_op``, one row per op of every finished point instead (the point
    columns, then :meth:`~fgmpsim.RunResult.to_frame`'s)."""
    store = Store(out)
    rows = _rows(store, per_op)
    if per_op:
        frames = [pd.concat([pd.DataFrame([_point_columns(meta)] * len(frame)), frame], axis=1)
                  for meta, frame in rows if frame is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    records = [{**_point_columns(meta), "baseline_key": meta["baseline_key"],
                **{k: v for k, v in meta["summary"].items() if k != "engine"}} for meta, _ in rows]
    table = pd.DataFrame.from_records(records)
    if table.empty or table["baseline_key"].isna().all():
        return table
    base = table.set_index("key")
    for metric in (m for m in RELATIVE_METRICS if m in table.columns):
        reference = table["baseline_key"].map(base[metric])
        table[f"{metric}_vs_baseline"] = np.where(reference.notna() & (reference != 0),
                                                  table[metric] / reference - 1, np.nan)
    return table


def failures(out: str | os.PathLike[str]) -> pd.DataFrame:
    """The failed points of the sweep in ``out`` (point columns, ``error_class``, ``message``, ``transient``)."""
    store = Store(out)
    current = {point["key"] for point in store.points()}
    records = [{**_point_columns(record), "error_class": record["error_class"], "message": record["message"],
                "transient": record["transient"]}
               for key, record in store.failures().items() if key in current]
    return pd.DataFrame.from_records(records)
