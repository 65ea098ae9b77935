"""Executors: run design points on a local process pool or a Dask cluster, yielding one :class:`Outcome` each.

A task carries the point's key, its :class:`~fgmpsim.sweep.points.TraceSource` (a path or a recipe: a few bytes),
the resolved :class:`~fgmpsim.arch.Arch` record and the engine; never maps. A local worker writes the finished
point's file into the store itself (atomically) and sends back only the key: a result of ~150 KB is larger than a
pipe's buffer, so a worker killed (SIGKILL, the OOM killer) while sending one would leave the pool's reader waiting
forever for the rest. A Dask worker, perhaps on another machine, sends the file's bytes back instead. Each worker
process builds a trace on first use and keeps the last :data:`TRACE_CACHE_SIZE` (their lazy synthetic maps stay
memoized in the process), and tasks are submitted in the points' order, which groups them by trace, so a worker
loads each trace about once. Points that differ only in how a run is priced (the clock, energy-table entries,
static power, area: :data:`fgmpsim.sim.unit_costs.PRICING_FIELDS`) go to a worker together, as one batch
(:func:`batches`), so every point of a batch after its first re-prices the unit costs the first one computed; a
batch holds at most ``1 / BATCHES_PER_WORKER`` of a worker's share of the points (so the workers stay busy) and
:data:`MAX_BATCH` points (so its outcomes stay small).

* :class:`LocalPool` (default): a ``ProcessPoolExecutor`` of ``workers`` processes. Workers ignore SIGINT (the
  coordinator handles Ctrl-C and ends them). A worker that dies (SIGKILL, the OOM killer) breaks the pool: the pool
  is rebuilt, the points that were queued are resubmitted, and the points that were running are retried one at a
  time, each at most :data:`MAX_ATTEMPTS` times before it is reported as a transient ``WorkerLost`` failure, so
  one point that kills its worker fails alone.
* :class:`DaskExecutor`: ``"local"`` starts a ``dask.distributed.LocalCluster`` of ``workers`` one-thread worker
  processes; ``"tcp://host:port"`` connects to a running scheduler (trace directories must be readable at the same
  path on its workers). Dask itself reschedules the tasks of a lost worker; a batch that loses too many workers is
  split into one-point batches, and a one-point batch that loses too many comes back as a transient failure. dask
  is imported only here, when asked for.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgmpsim.arch import Arch
from fgmpsim.errors import SweepError
from fgmpsim.sim import simulate
from fgmpsim.sim.unit_costs import cost_scope
from fgmpsim.sweep import store
from fgmpsim.sweep.points import TraceSource
from fgmpsim.trace import Trace

TRACE_CACHE_SIZE = 2
"""Traces a worker process keeps built (the points of one trace are adjacent, so two cover a change of trace)."""
MAX_ATTEMPTS = 3
"""Submissions of a point whose worker process keeps dying before the point is reported as failed."""
DASK_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Task:
    """One point as sent to a worker (``description``: :meth:`Point.describe`, stored with its results)."""

    key: str
    trace: TraceSource
    arch: Arch
    engine: str
    description: dict[str, Any]
    point_file: str | None = None  # where the worker writes the finished point (None: it sends the bytes back)


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back: the point's Parquet file (:func:`~fgmpsim.sweep.store.point_parquet`, encoded in
    the worker so the coordinator only writes it; ``None`` when the worker wrote it to ``Task.point_file``), or the
    error (class name, message, transient)."""

    key: str
    parquet: bytes | None = None
    error_class: str | None = None
    message: str | None = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.error_class is None


_TRACES: OrderedDict[str, Trace] = OrderedDict()


def _trace(source: TraceSource) -> Trace:
    """The trace of ``source``, built once per worker process (least recently used dropped first)."""
    if source.identity in _TRACES:
        _TRACES.move_to_end(source.identity)
    else:
        _TRACES[source.identity] = source.build()
        while len(_TRACES) > TRACE_CACHE_SIZE:
            _TRACES.popitem(last=False)
    return _TRACES[source.identity]


MAX_MESSAGE = 2000
"""Characters of error message a worker sends back for a batch (the rest is cut, and says so), shared by its points:
a batch's outcomes stay below a pipe's atomic write size (4 KB), so a worker killed while sending them cannot leave
half a message for the pool's reader to wait on."""
MAX_BATCH = 8
"""The most points in one batch: each failed one still gets ``MAX_MESSAGE // MAX_BATCH`` = 250 characters."""


def run_task(task: Task, max_message: int = MAX_MESSAGE) -> Outcome:
    """Simulate one point. Any exception becomes a failed :class:`Outcome` (its message cut to ``max_message``
    characters): one bad point must not end the sweep; machine-made errors (``OSError``, ``MemoryError``) are
    transient, everything else would repeat."""
    marker = _running_marker(task)
    try:
        if marker is not None:
            marker.touch()
        result = simulate(_trace(task.trace), task.arch, engine=task.engine)
        data = store.point_parquet(task.description, result.summary(), list(result.rows))
        if task.point_file is None:
            return Outcome(task.key, data)
        store.write_point_file(Path(task.point_file), data)
        return Outcome(task.key)
    except Exception as err:  # noqa: BLE001 - recorded with its class and message, see the docstring
        message = str(err)
        if len(message) > max_message:
            message = message[:max_message] + f" ... ({len(message) - max_message:,} more characters cut)"
        return Outcome(task.key, error_class=type(err).__name__, message=message,
                       transient=isinstance(err, (OSError, MemoryError)))
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def _running_marker(task: Task) -> Path | None:
    """The file a local worker keeps beside the point's file while it runs the point (``None`` without a point
    file): one left behind by a dead worker says which points were running when it died."""
    return Path(f"{task.point_file}.running") if task.point_file is not None else None


def run_batch(batch: tuple[Task, ...]) -> list[Outcome]:
    """:func:`run_task` of every task of ``batch``, in order, on one worker (the batch's :data:`MAX_MESSAGE` shared
    by its points)."""
    return [run_task(task, MAX_MESSAGE // len(batch)) for task in batch]


BATCHES_PER_WORKER = 4
"""The fewest batches per worker :func:`batches` makes of a sweep (when it has enough points)."""


def batches(tasks: list[Task], workers: int) -> list[tuple[Task, ...]]:
    """``tasks`` grouped by trace, engine and :func:`~fgmpsim.sim.unit_costs.cost_scope` of their arch, each group
    cut into batches of at most ``ceil(len(tasks) / (BATCHES_PER_WORKER * workers))`` (and :data:`MAX_BATCH`)
    tasks, in the order of their first tasks."""
    size = min(MAX_BATCH, max(1, -(-len(tasks) // (BATCHES_PER_WORKER * workers))))
    groups: dict[tuple, list[Task]] = {}
    for task in tasks:
        groups.setdefault((task.trace.identity, task.engine, cost_scope(task.arch)), []).append(task)
    return [tuple(group[i:i + size]) for group in groups.values() for i in range(0, len(group), size)]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> Any:
    # fork: a worker starts in milliseconds with fgmpsim already imported (spawn re-imports it, ~1 s per worker)
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)


class LocalPool:
    """Points on ``workers`` local processes (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._close(kill=kind is not None)

    def _close(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:  # an interrupt: do not wait for the points in flight (their results would be dropped anyway)
            for process in list(getattr(pool, "_processes", {}).values()):  # no public way to end the workers
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def outcomes(self, tasks: list[Task]) -> Iterator[Outcome]:
        """One outcome per task, in completion order. When a worker dies the pool breaks and every point not yet
        returned is lost: those that were running (their :func:`_running_marker` is left) are suspects, retried one
        at a time on a pool of their own, so that a point which kills its worker is charged for it alone
        (:data:`MAX_ATTEMPTS`, then a transient ``WorkerLost``); the points that were queued go back, one per
        batch, uncharged."""
        attempts: Counter[str] = Counter()
        order = {task.key: index for index, task in enumerate(tasks)}
        for task in tasks:  # markers left by an earlier run that was killed
            marker = _running_marker(task)
            if marker is not None:
                marker.unlink(missing_ok=True)
        pending, suspects = batches(tasks, self.workers), []
        while pending or suspects:
            if suspects:  # one suspect on a pool of its own: a break now is its own doing
                alone, batches_now = True, [(suspects.pop(0),)]
            else:
                alone, batches_now, pending = False, pending, []
            self._pool = ProcessPoolExecutor(min(self.workers, len(batches_now)), mp_context=_context(),
                                             initializer=_ignore_sigint)
            futures = {self._pool.submit(run_batch, batch): batch for batch in batches_now}
            lost = []
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = futures.pop(future)
                    try:
                        yield from future.result()
                    except BrokenProcessPool:
                        lost.extend(batch)
                    except Exception as err:  # noqa: BLE001 - the outcomes did not come back (e.g. not picklable)
                        yield from (Outcome(task.key, error_class=type(err).__name__, message=str(err))
                                    for task in batch)
            self._close(kill=False)
            for task in sorted(lost, key=lambda task: order[task.key]):
                marker = _running_marker(task)
                if not (alone or marker is None or marker.exists()):
                    pending.append((task,))  # queued when the pool broke: one per batch, not its fault
                    continue
                if marker is not None:
                    marker.unlink(missing_ok=True)
                attempts[task.key] += 1
                if attempts[task.key] < MAX_ATTEMPTS:
                    suspects.append(task)
                else:
                    yield Outcome(task.key, error_class="WorkerLost", transient=True,
                                  message=f"the worker process died while running this point, {MAX_ATTEMPTS} "
                                          f"times (killed, or out of memory)")


def _unreachable(address: str, why: str) -> SweepError:
    return SweepError(f"cannot reach the Dask scheduler at {address} ({why})", "--dask",
                      "start it (dask scheduler; dask worker ADDRESS) or use --dask local")


def check_address(address: str) -> None:
    """A well-formed ``tcp://host:port`` whose port accepts connections (a refused port fails at once, where the
    Dask client would retry until its timeout); ``"local"`` needs no check."""
    if address == "local":
        return
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("tcp", "tls") or not host or not port.isdigit():
        raise SweepError(f"--dask {address!r} is not a scheduler address", "--dask",
                         "give tcp://HOST:PORT of a running dask scheduler, or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=DASK_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise _unreachable(address, err.strerror or type(err).__name__) from None


def _connect(client: type, address: str) -> Any:
    """A Dask ``client`` of the scheduler at ``address``. The attempt runs in a daemon thread with a deadline: a
    port that accepts connections but does not speak Dask's protocol (a dashboard, another service) can leave the
    client waiting forever or failing anywhere inside its handshake, and either is an unreachable scheduler."""
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["client"] = client(address, timeout=DASK_CONNECT_TIMEOUT_S)
        except Exception as err:  # the peer is not a scheduler: whatever its bytes made the handshake raise
            box["error"] = err

    thread = threading.Thread(target=attempt, name="dask-connect", daemon=True)
    thread.start()
    thread.join(2 * DASK_CONNECT_TIMEOUT_S)
    if "client" in box:
        return box["client"]
    why = (f"{type(box['error']).__name__}: {str(box['error'])[:200]}" if "error" in box
           else f"no Dask scheduler answered within {2 * DASK_CONNECT_TIMEOUT_S:g} s; is it the scheduler's port?")
    raise _unreachable(address, why)


class DaskExecutor:
    """Points on a Dask cluster: ``address`` ``"local"`` (a LocalCluster of ``workers`` processes) or
    ``tcp://host:port``. Connecting happens here, so an unreachable scheduler fails before any point runs."""

    def __init__(self, address: str, workers: int) -> None:
        check_address(address)
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise SweepError("--dask needs dask.distributed, which is not installed", "--dask",
                             "pip install 'dask[distributed]'") from None
        self.cluster = None
        if address == "local":
            import logging  # the cluster's own log lines would interleave with the progress bar; outcomes say all

            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.CRITICAL)
            self.client = Client(self.cluster)
        else:
            self.client = _connect(Client, address)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or workers

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *_: Any) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def outcomes(self, tasks: list[Task]) -> Iterator[Outcome]:
        """One outcome per task, in completion order; earlier points have higher priority (trace order)."""
        from dask.distributed import as_completed

        grouped = batches(tasks, self.workers)
        futures = {self._submit(batch, len(grouped) - index): batch for index, batch in enumerate(grouped)}
        pending = as_completed(futures)
        for future in pending:
            batch = futures.pop(future)
            try:
                yield from future.result()
            except Exception as err:  # noqa: BLE001 - a lost worker (KilledWorker) or a cancelled task
                if len(batch) > 1:  # one point may have killed its workers: its batch mates run on their own
                    for task in batch:
                        single = self._submit((task,), 0)
                        futures[single] = (task,)
                        pending.add(single)
                else:
                    yield Outcome(batch[0].key, error_class=type(err).__name__, message=str(err), transient=True)
            future.release()

    def _submit(self, batch: tuple[Task, ...], priority: int) -> Any:
        return self.client.submit(run_batch, batch, key=f"fgmpsim-points-{batch[0].key}-{len(batch)}-{os.getpid()}",
                                  pure=False, priority=priority)
