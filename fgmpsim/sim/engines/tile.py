"""The SimPy side of the tile engine: hardware processes and the op sequence, at op granularity.

One SimPy process per hardware block: the DRAM->GLB **loader**, the GLB->PE **distributor**, the PE **array**,
the **AQU** and the **writer** (accumulation buffer -> GLB drain and GLB -> DRAM write-back). A **sequencer** stages
each op into every block's inbox (a ``simpy.Store`` of capacity 2: the next op's descriptors are double buffered
while the current one runs), starts it, and retires it when every block has finished its share and the op's
cycles have elapsed. Ops run back to back, never overlapping (a next-op weight prefetch,
:mod:`fgmpsim.sim.hw.prefetch`, is already in the op timings: the op it speeds up is that much shorter).

Inside an op, time is resolved per tile step by the vectorized recurrence of :mod:`fgmpsim.sim.schedule` (a
million SimPy events would be far too slow at Llama scale); each block process then holds the op for its busy
cycles, so the SimPy timeline gives every op's start and end cycle and each block's occupancy, with a bounded
number of events per op. (:mod:`fgmpsim.sim.engines.event` runs the same tiles through block processes at tile-step
granularity instead.) The environment counts the events it processes (:class:`CountingEnvironment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import simpy

from fgmpsim.sim.schedule import OpTiming

BLOCKS = ("loader", "distributor", "array", "aqu", "writer")


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it has processed (``processed``)."""

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0

    def step(self) -> None:
        super().step()
        self.processed += 1


@dataclass(frozen=True)
class OpSpan:
    """An op on the timeline: ``start``/``end`` cycle and the SimPy events processed for it (those since the
    previous op retired; the last op also takes the environment's wind-down)."""

    start: int
    end: int
    simpy_events: int


def _busy(timing: OpTiming, block: str) -> int:
    """Cycles ``block`` holds the op. The writer drains (GLB side) and writes back (DRAM side) at once, so its
    transfer cycles can add up to more than the op lasts: it is held at most the op's cycles."""
    if block == "array":
        return timing.compute_cycles + timing.stall_imbalance_cycles + timing.stall_fill_cycles
    return min(getattr(timing, f"busy_{block}_cycles"), timing.cycles)


@dataclass
class _Job:
    timing: OpTiming
    start: simpy.Event
    done: dict[str, simpy.Event] = field(default_factory=dict)


def _block(env: simpy.Environment, name: str, inbox: simpy.Store):
    while True:
        job = yield inbox.get()
        yield job.start
        yield env.timeout(_busy(job.timing, name))
        job.done[name].succeed()


def _sequencer(env: CountingEnvironment, jobs: list[_Job], inboxes: dict[str, simpy.Store],
               spans: list[tuple[int, int, int]]):
    for job in jobs:
        for box in inboxes.values():
            yield box.put(job)
        begin = env.now
        job.start.succeed()
        yield env.all_of([env.timeout(job.timing.cycles), *job.done.values()])
        spans.append((int(begin), int(env.now), env.processed))


def run_ops(timings: Sequence[OpTiming]) -> list[OpSpan]:
    """Run the ops back to back on the SimPy hardware model; the span of each op. The spans depend on the timings
    only: a run whose timings equal one of the last :data:`KEPT_RUNS` (a sweep point that changes only how a run is
    priced, :mod:`fgmpsim.sim.unit_costs`) takes that run's spans."""
    return list(op_spans(tuple(timings)))


KEPT_RUNS = 8
"""Runs of :func:`run_ops` whose spans are kept (a few KB each; ``op_spans.cache_clear()`` forgets them)."""


@lru_cache(maxsize=KEPT_RUNS)
def op_spans(timings: tuple[OpTiming, ...]) -> tuple[OpSpan, ...]:
    """The spans of ops with ``timings`` run back to back on the SimPy hardware model (see :func:`run_ops`)."""
    env = CountingEnvironment()
    inboxes = {name: simpy.Store(env, capacity=2) for name in BLOCKS}
    for name, box in inboxes.items():
        env.process(_block(env, name, box))
    jobs = [_Job(t, env.event(), {name: env.event() for name in BLOCKS}) for t in timings]
    spans: list[tuple[int, int, int]] = []
    env.process(_sequencer(env, jobs, inboxes, spans))
    env.run()
    retired = [0, *(seen for _, _, seen in spans[:-1]), env.processed]
    return tuple(OpSpan(start, end, retired[i + 1] - retired[i]) for i, (start, end, _) in enumerate(spans))
