"""A persistent worker process that runs fuzz cases under a memory cap and a per-case timeout.

The worker imports fgmpsim once (the import takes seconds; a case takes milliseconds), caps its own address space
with ``resource.setrlimit(RLIMIT_AS)`` so an input that would allocate too much ends in ``MemoryError`` inside the
worker instead of taking the machine, and answers one case at a time over a pipe. A case that does not answer
within the timeout is a *hang*: the worker is killed and a fresh one started. A worker that dies (a signal, a
segfault) is a *crash*. Either way the run goes on.
"""

from __future__ import annotations

import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

HANG = "hang"
CRASH = "crash"


@dataclass(frozen=True)
class Outcome:
    """How one case ended: ``status`` (see :mod:`fgmpsim.testing.cases`), a one-line ``detail`` and, for an error,
    the field it named."""

    status: str
    detail: str = ""
    field: str | None = None


def _serve(conn: Connection, fixture_dir: str, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    from fgmpsim.testing.cases import CaseRunner  # imports fgmpsim, once per worker

    runner = CaseRunner(fixture_dir)
    conn.send("ready")
    while True:
        message = conn.recv()
        if message is None:
            return
        family, payload = message
        conn.send(runner.run(family, payload))


class Worker:
    """One worker process; :meth:`run` returns the :class:`Outcome` of a case (restarting after a hang/crash)."""

    def __init__(self, fixture_dir: str, memory_bytes: int, timeout_s: float, start_timeout_s: float = 120.0):
        self.fixture_dir = fixture_dir
        self.memory_bytes = memory_bytes
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")  # a clean interpreter: no state of the parent
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child, self.fixture_dir, self.memory_bytes),
                                              daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(self.start_timeout_s) or self._conn.recv() != "ready":
            raise RuntimeError("the fuzz worker did not start")

    def _restart(self) -> None:
        self._process.kill()
        self._process.join()
        self._conn.close()
        self.restarts += 1
        self._start()

    def run(self, family: str, payload: Any) -> Outcome:
        try:
            self._conn.send((family, payload))
            if self._conn.poll(self.timeout_s):
                return self._conn.recv()
            status, detail = HANG, f"no answer within {self.timeout_s:g} s"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            status, detail = CRASH, f"worker died (exit code {self._process.exitcode})"
        self._restart()
        return Outcome(status, detail)

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
