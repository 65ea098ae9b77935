"""The event engine: an op's tiles run through SimPy processes, one per hardware block, one event per transfer and
per tile compute.

It takes the tiles of :func:`fgmpsim.sim.hw.traffic.op_tiles` and the timing model of :mod:`fgmpsim.sim.schedule` (the
step placements, the three channels, the attribution rules), but time advances by SimPy events instead of the
vectorized recurrence, so it equals the tile engine cycle for cycle and stall for stall while showing that the
recurrence is what the blocks do. Double buffering is the schedule's placements: a fill moves one step earlier for
each double-buffered level on its way and runs beside a compute; into a single-buffered level it runs in the serial
phase of the step.

Cost: about 30 events per tile step, a quarter to a third of a million events per second (the synthetic SmolLM2-135M
trace, 256 tokens: 25k steps, 0.7M events, 3 s; the tile engine: 0.5 s), hence the step limit of
:func:`check_steps`.

Processes, one per hardware block (:data:`~fgmpsim.sim.schedule.BUSY`) plus the step clock:

* **clock**: the lockstep. For every step it sends work orders through each block's inbox (a ``simpy.Store``: the
  wire) and waits for their done events: first the serialized transfers, one link of :data:`SERIAL_LINKS` after
  another; then the tile's compute and every overlapped transfer at once. The step ends when all are done.
* **loader** (DRAM -> GLB fills), **distributor** (GLB -> PE fills), **array** (the tile's compute: one timeout of
  its slowest lane plus the VMAC pipeline's fill/drain, :func:`~fgmpsim.sim.schedule.fill_cycles`), **aqu**
  (output quantization), **writer** (accumulation-buffer drains, GLB -> DRAM write-backs). An order holds one
  burst per channel; a block runs its bursts on different channels side by side (the writer drains and writes back
  at once) and the transfers of a burst one after another, one timeout each.
* The channels of :data:`~fgmpsim.sim.schedule.CHANNELS` (DRAM side, PE side of the GLB, AQU) are ``simpy.Resource``
  ports of capacity 1 that a burst holds: the loader and the writer share the DRAM side, the distributor and the
  writer the GLB.

Next-op weight prefetch (:mod:`fgmpsim.sim.hw.prefetch`): the DRAM-side port is a ``simpy.PreemptiveResource``.
From the first step of the op's tail window a **prefetcher** process (the next op's weight fill) holds that port
whenever it is free, at a lower priority: any of the op's own DRAM-side bursts preempts it at once, so the op's
timing is unchanged, and the cycles it held the port are the tail's free cycles ``T``, handed to the next op. An
op given a window starts with ``min(c, window)`` cycles of its tile-0 weight fill done: the transfer is that much
shorter in its step, and those cycles are added to its loader's busy cycles (they are its transfer's).

Attribution is read off the SimPy timeline: a serialized link stalls the channel whose burst finished last, an
overlapped phase stalls the channel whose port was busy last for the cycles the step outlasts the compute (DRAM, GLB,
AQU on ties), and the array's cycles beyond each tile's ideal and its fill/drain are imbalance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import simpy

from fgmpsim.arch.record import Arch
from fgmpsim.errors import ConfigError
from fgmpsim.sim.engines.tile import CountingEnvironment
from fgmpsim.sim.mapping import Tiling
from fgmpsim.sim.schedule import BUSY, CHANNELS, LEAD, OpTiming, fill_cycles, placements
from fgmpsim.sim.hw.traffic import OpTiles

MAX_STEPS = 2_000_000
"""Default limit on the tile steps (tiles + pipeline fill and drain, all ops) the event engine takes on."""

SERIAL_LINKS = (("drain_glb", "drain_aqu"), ("writeback",), ("dram_w", "dram_x"), ("pe_w", "pe_x", "pe_psum"))
"""The serial phase of a step, in order: the previous tile's drain (its GLB and AQU parts side by side), the
write-back, the DRAM fills, the PE fills. A link runs when the one before it is done."""

ARRAY = "array"
"""The PE array's block and the channel its compute runs on (its own lanes: no shared port)."""

_BLOCK_OF = {kind: block for block, kinds in BUSY.items() for kind in kinds}

Work = dict[str, dict[str, list[int]]]
"""Work of one phase of a step: block -> channel -> transfer cycles in order."""


def check_steps(tilings: Iterable[Tiling], limit: int = MAX_STEPS) -> None:
    """Refuse ops with these tilings when their tile steps exceed ``limit`` (:class:`ConfigError`)."""
    steps = sum(t.tiles + 2 * LEAD for t in tilings)
    if steps > limit:
        raise ConfigError(f"the event engine runs every tile step as SimPy events and takes at most {limit:,} steps, "
                          f"this trace needs {steps:,}", "engine",
                          "use engine='tile' (the same timing, vectorized) or raise max_event_steps")


class _OpRun:
    """One op on the SimPy block model (see the module docstring)."""

    def __init__(self, tiles: OpTiles, arch: Arch, window: int = 0) -> None:
        self.env = env = CountingEnvironment()
        self.tiles = tiles
        place = placements(arch)
        self.kinds = {kind: (tiles.flat(kind), LEAD + p.offset, p.channel) for kind, p in place.items()}
        fills = [first + int(np.flatnonzero(self.kinds[kind][0])[-1]) for kind in ("dram_w", "dram_x")
                 for first in (self.kinds[kind][1],) if self.kinds[kind][0].any()]
        self.opens = max(fills) + 1 if fills else 0  # the fills as scheduled, before the prefetch shortens one
        weights = self.kinds["dram_w"][0]
        self.prefetched = min(int(weights[0]), window) if len(weights) else 0
        weights[:1] -= self.prefetched
        self.tail = 0
        self.fill = fill_cycles(arch)
        self.compute = tiles.flat("compute") + self.fill
        self.serial_links = [serial for link in SERIAL_LINKS
                             if (serial := tuple(k for k in link if not place[k].overlapped))]
        self.overlapped = tuple(k for k, p in place.items() if p.overlapped)
        self.ports = {channel: (simpy.PreemptiveResource if channel == "dram" else simpy.Resource)(env, capacity=1)
                      for channel in CHANNELS}
        self.inboxes = {block: simpy.Store(env) for block in (*BUSY, ARRAY)}
        self.busy = dict.fromkeys(BUSY, 0)
        self.busy["loader"] += self.prefetched
        self.opened, self.closed = env.event(), env.event()
        env.process(self._prefetcher())
        self.stall = dict.fromkeys(CHANNELS, 0)
        self.computing = 0
        for block, inbox in self.inboxes.items():
            env.process(self._block(block, inbox))
        env.process(self._clock())

    def _work(self, step: int, kinds: Sequence[str]) -> Work:
        """The non-empty transfers of ``kinds`` that the placements put at ``step``."""
        work: Work = {}
        for kind in kinds:
            cycles, first, channel = self.kinds[kind]
            j = step - first
            if 0 <= j < len(cycles) and cycles[j]:
                work.setdefault(_BLOCK_OF[kind], {}).setdefault(channel, []).append(int(cycles[j]))
        return work

    def _last(self, finish: dict[str, int]) -> str:
        """The channel that finished at this instant (DRAM, GLB, AQU on ties)."""
        return next(channel for channel in CHANNELS if finish.get(channel) == self.env.now)

    def _dispatch(self, work: Work):
        """Send every block its order and wait until all are done; returns ``{channel: last finish cycle}``."""
        env, dones = self.env, []
        for block, bursts in work.items():
            done = env.event()
            self.inboxes[block].put((bursts, done))
            dones.append(done)
        if len(dones) == 1:
            return (yield dones[0])
        finished = yield env.all_of(dones)
        merged: dict[str, int] = {}
        for part in finished.values():
            for channel, cycle in part.items():
                merged[channel] = max(cycle, merged.get(channel, cycle))
        return merged

    def _clock(self):
        env, tiles = self.env, self.tiles
        for step in range(tiles.tiles + 2 * LEAD):
            if step == self.opens:
                self.opened.succeed()
            for link in self.serial_links:
                work = self._work(step, link)
                if work:
                    begin = env.now
                    finish = yield from self._dispatch(work)
                    self.stall[self._last(finish)] += env.now - begin
            work = self._work(step, self.overlapped)
            if LEAD <= step < LEAD + tiles.tiles:
                work[ARRAY] = {ARRAY: [int(self.compute[step - LEAD])]}
            if work:
                begin = env.now
                finish = yield from self._dispatch(work)
                computed = finish.get(ARRAY, begin)
                self.computing += computed - begin
                if env.now > computed:
                    self.stall[self._last(finish)] += env.now - computed
        self.closed.succeed()

    def _prefetcher(self):
        """The next op's weight fill: from the tail window's first cycle to the op's end it holds the DRAM-side
        port whenever the op leaves it free (any request of the op preempts it); ``tail`` = the cycles held."""
        env, port = self.env, self.ports["dram"]
        yield self.opened
        while not self.closed.triggered:
            with port.request(priority=1, preempt=False) as request:
                begin = None
                try:
                    yield request | self.closed
                    if not request.triggered:
                        return
                    begin = env.now
                    yield self.closed
                except simpy.Interrupt:  # preempted (at the instant of the grant if ``begin`` is unset)
                    pass
                self.tail += env.now - begin if begin is not None else 0

    def _block(self, block: str, inbox: simpy.Store):
        env = self.env
        while True:
            bursts, done = yield inbox.get()
            if len(bursts) == 1:
                finish = yield from self._burst(block, *next(iter(bursts.items())))
            else:
                parts = yield env.all_of([env.process(self._burst(block, channel, transfers))
                                          for channel, transfers in bursts.items()])
                finish = {channel: cycle for part in parts.values() for channel, cycle in part.items()}
            done.succeed(finish)

    def _burst(self, block: str, channel: str, transfers: list[int]):
        """Transfers on one channel, one after another, holding its port; returns ``{channel: finish cycle}``."""
        env = self.env
        if channel == ARRAY:
            yield env.timeout(transfers[0])
            return {channel: env.now}
        with self.ports[channel].request() as grant:
            yield grant
            for cycles in transfers:
                begin = env.now
                yield env.timeout(cycles)
                self.busy[block] += env.now - begin
        return {channel: env.now}


def event_op(tiles: OpTiles, arch: Arch, window: int = 0) -> tuple[OpTiming, int, int]:
    """Run one op's tiles on the SimPy block model, ``window`` cycles of its tile-0 weight fill done beforehand
    when the previous op's tail had them free (at most the fill's cycles); its timing, the SimPy events processed
    and its own tail's free DRAM-side cycles."""
    run = _OpRun(tiles, arch, window)
    run.env.run()
    ideal, filled = tiles.ideal_cycles, run.fill * tiles.tiles
    return OpTiming(
        cycles=int(run.env.now), compute_cycles=ideal, stall_dram_cycles=run.stall["dram"],
        stall_glb_cycles=run.stall["glb"], stall_imbalance_cycles=run.computing - ideal - filled,
        stall_aqu_cycles=run.stall["aqu"], stall_fill_cycles=filled,
        **{f"busy_{block}_cycles": cycles for block, cycles in run.busy.items()}
    ), run.env.processed, run.tail
