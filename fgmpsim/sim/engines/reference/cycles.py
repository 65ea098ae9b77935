"""The reference engine's clock: an op's tile steps run one cycle at a time.

Written from the step rules of the spec (the docstring of :mod:`fgmpsim.sim.schedule`), sharing no code with the
tile engine. Step ``s`` computes tile ``s``; with ``g, w, x, a`` = 1 when the GLB, weight, input, accumulation
buffer is double buffered (else 0), the transfers of tile ``j`` run in step:

==========================  ==============  ============================  =======
transfer                    step            overlaps the step's compute   channel
==========================  ==============  ============================  =======
DRAM -> GLB weights / X     ``j-w-g`` /     if ``g``                      DRAM
                            ``j-x-g``
GLB -> weight / input /     ``j-w`` /       if that buffer is double      GLB
accumulation buffers        ``j-x`` /       buffered
                            ``j-a``
drain (and its AQU part)    ``j+1``         if ``a``                      GLB (AQU)
write-back                  ``j+2``         if ``g``                      DRAM
==========================  ==============  ============================  =======

A step first runs its serialized transfers one after another, then its compute beside the overlapped transfers.
A transfer lasts until each of its ports has moved its bits at its rate, one cycle at a time; the AQU part of a
drain waits its latency, then takes its outputs at its rate. A serialized drain runs its GLB and AQU parts side by
side. In the overlapped phase every PE broadcasts its tile's input blocks to its lanes and every lane steps through
its block pairs while each channel (DRAM side, PE side of the GLB, AQU) runs its queued transfers one at a time; the
phase ends when all are done. A lane is done when its last block pair has also left the VMAC pipeline:
``pipeline_depth - 1`` cycles after its last block pair's cycles.

The lane-skew buffer (spec: docs/microarchitecture.md, "Lane-skew buffer"): a PE broadcasts at most one input block
per cycle, in its lanes' order; each lane keeps the blocks broadcast to it in a FIFO of ``lane_fifo_depth`` slots
(``None``: unbounded), a block holding its slot until the lane has finished its block pair. In a cycle the PE first
broadcasts its next block if every lane has a free slot (slots freed by the end of the cycle before), then every
idle lane starts the oldest block of its FIFO, if any, and every busy lane advances one cycle.

Attribution per step: ``compute`` gets the tile's ideal ``ceil(lane cycles / active lanes)``, ``fill`` the
pipeline's ``pipeline_depth - 1``, ``imbalance`` the slowest lane (pipeline drain included) minus both; a
serialized transfer stalls its channel (a serialized drain: the AQU if its AQU part took longer than its GLB part,
else the GLB); the cycles the overlapped phase outlasts the slowest lane stall the
channel busy until the phase's last cycle (DRAM, then GLB, then AQU when several are). Busy cycles: the cycles each
hardware process spends moving: the **loader** DRAM -> GLB, the **distributor** GLB -> PE, the **aqu** its part of
the drains, the **writer** the GLB part of the drains and the write-backs.

Next-op weight prefetch (spec: :mod:`fgmpsim.sim.hw.prefetch`). The op's *tail window* is its steps after the last
step holding one of its DRAM -> GLB fills as scheduled (all of them if it has none); every cycle of the window in which no
transfer runs on the DRAM side is a free cycle (counted cycle by cycle: in the serial phase while a GLB- or
AQU-side transfer runs, in the overlapped phase while the DRAM queue is empty). An op that follows a prefetching
tail of ``window`` free cycles ticks its tile-0 weight fill once per free cycle (at most ``window`` times, until it
is done) before its first step; those ticks are its loader's busy cycles and the fill's rest runs in its step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from fgmpsim.arch.record import Arch
from fgmpsim.sim.engines.reference.tiles import Movement

CHANNELS = ("dram", "glb", "aqu")
PROCESS = {"dram_w": "loader", "dram_x": "loader", "pe_w": "distributor", "pe_x": "distributor",
           "pe_psum": "distributor", "drain": "writer", "writeback": "writer"}


def placement(kind: str, arch: Arch) -> tuple[int, bool, str]:
    """(step offset from the tile, overlapped with compute, channel) of a transfer kind (the table above)."""
    mem = arch.memory
    g, w, x, a = (int(level.double_buffered) for level in
                  (mem.glb, mem.weight_buffer, mem.input_buffer, mem.accum_buffer))
    return {"dram_w": (-w - g, bool(g), "dram"), "dram_x": (-x - g, bool(g), "dram"),
            "pe_w": (-w, bool(w), "glb"), "pe_x": (-x, bool(x), "glb"), "pe_psum": (-a, bool(a), "glb"),
            "drain": (1, bool(a), "glb"), "writeback": (2, bool(g), "dram")}[kind]


class Port:
    """One port of a transfer: ``left`` units still to move at ``rate`` per cycle, after ``wait`` idle cycles."""

    def __init__(self, left: int, rate: int, wait: int = 0) -> None:
        self.left, self.rate, self.wait = left, rate, wait

    def tick(self) -> None:
        if self.wait:
            self.wait -= 1
        elif self.left > 0:
            self.left -= min(self.rate, self.left)

    @property
    def done(self) -> bool:
        return self.wait == 0 and self.left == 0

    def cycles(self) -> int:
        return self.wait + -(-self.left // self.rate)


class Job:
    """A transfer (or a drain's AQU part) in flight: it is done when every port is."""

    def __init__(self, process: str, ports: list[Port]) -> None:
        self.process, self.ports = process, ports

    def tick(self) -> None:
        for port in self.ports:
            port.tick()

    @property
    def done(self) -> bool:
        return all(port.done for port in self.ports)

    def cycles(self) -> int:
        return max((port.cycles() for port in self.ports), default=0)


def _glb_job(move: Movement) -> Job:
    return Job(PROCESS[move.kind], [Port(bits, rate) for bits, rate in move.ends])


def _aqu_job(move: Movement) -> Job | None:
    if move.aqu is None:
        return None
    latency, outputs, rate = move.aqu
    return Job("aqu", [Port(outputs, rate, latency)])


class PE:
    """One PE in a step: its lanes' block-pair cycles (in broadcast order), the blocks broadcast so far, each lane's
    blocks finished, cycles left of the block pair it is on and pipeline drain cycles left after its last."""

    def __init__(self, lanes: list[list[int]], depth: int | None, drain: int) -> None:
        self.lanes, self.depth = lanes, depth
        self.items = len(lanes[0])
        self.sent = 0
        self.finished = [0] * len(lanes)
        self.left = [0] * len(lanes)
        self.drain = [drain] * len(lanes)

    @property
    def done(self) -> bool:
        return all(f == self.items and d == 0 for f, d in zip(self.finished, self.drain))

    def tick(self) -> bool:
        """One cycle (module docstring); True when a lane finished its last block pair and drain this cycle."""
        if self.sent < self.items and (self.depth is None or all(self.sent - f < self.depth for f in self.finished)):
            self.sent += 1
        ended = False
        for lane, costs in enumerate(self.lanes):
            if self.left[lane] == 0 and self.finished[lane] < self.sent:
                self.left[lane] = costs[self.finished[lane]]
            if self.left[lane]:
                self.left[lane] -= 1
                if self.left[lane] == 0:
                    self.finished[lane] += 1
                    ended |= self.finished[lane] == self.items and self.drain[lane] == 0
            elif self.finished[lane] == self.items and self.drain[lane]:
                self.drain[lane] -= 1
                ended |= self.drain[lane] == 0
        return ended


@dataclass
class Step:
    """One step: its tile's PEs (each a list of lanes, block-pair cycles each; ``None`` outside the op's tiles), the
    lane FIFO depth, its serialized transfers (a drain with its AQU part) and the overlapped jobs queued on each
    channel."""

    lanes: list[list[list[int]]] | None = None
    depth: int | None = None
    drain: int = 0
    fills: bool = False
    serial: list[tuple[str, Job, Job | None]] = field(default_factory=list)
    queues: dict[str, list[Job]] = field(default_factory=lambda: {ch: [] for ch in CHANNELS})


def build_steps(lanes: list[list[list[list[int]]]], moves: list[Movement], arch: Arch,
                window: int = 0) -> tuple[dict[int, Step], int]:
    """The steps of an op (tile ``j``'s compute in step ``j``, its transfers where :func:`placement` puts them) and
    the cycles its tile-0 weight fill ran before the op, in the ``window`` free cycles of the previous op's tail;
    transfers that move nothing take no cycle and are left out."""
    steps: dict[int, Step] = defaultdict(Step)
    ahead = 0
    for j, work in enumerate(lanes):
        steps[j].lanes = work
        steps[j].depth = arch.pe_array.lane_fifo_depth
        steps[j].drain = arch.pe_array.pipeline_depth - 1
    for move in moves:
        offset, overlapped, channel = placement(move.kind, arch)
        glb, aqu = _glb_job(move), _aqu_job(move)
        if move.kind in ("dram_w", "dram_x") and glb.cycles():
            steps[move.tile + offset].fills = True
        if move.kind == "dram_w" and move.tile == 0:
            while ahead < window and not glb.done:
                glb.tick()
                ahead += 1
        step = steps[move.tile + offset]
        if not overlapped:
            if glb.cycles() or aqu is not None:
                step.serial.append((channel, glb, aqu))
            continue
        if glb.cycles():
            step.queues[channel].append(glb)
        if aqu is not None:
            step.queues["aqu"].append(aqu)
    return steps, ahead


def window_start(steps: dict[int, Step]) -> int:
    """The first step of the tail window: the one after the last step holding a DRAM -> GLB fill (as scheduled: a
    first weight fill done entirely in the previous op's tail still counts), or the op's first step when it has
    none."""
    fills = [s for s, step in steps.items() if step.fills]
    return max(fills) + 1 if fills else min(steps)


def stepped_cycles(steps: dict[int, Step]) -> int:
    """Loop iterations the run of ``steps`` costs, at most: every lane advanced every cycle its PE takes in lock
    step (each block pair as long as the PE's slowest lane on it: the longest a FIFO can make it), every job port
    every cycle the job lasts."""
    total = 0
    for step in steps.values():
        for pe in step.lanes or []:
            total += (sum(max(pair) for pair in zip(*pe)) + step.drain) * len(pe)
        jobs = [j for _, glb, aqu in step.serial for j in (glb, aqu) if j is not None]
        jobs += [j for queue in step.queues.values() for j in queue]
        total += sum(job.cycles() * len(job.ports) for job in jobs)
    return total


def _serial(channel: str, glb: Job, aqu: Job | None, busy: dict[str, int]) -> tuple[int, str]:
    """Run one serialized transfer (a drain's GLB and AQU parts side by side): its cycles and the stalled
    channel."""
    cycle = glb_end = aqu_end = 0
    while not glb.done or (aqu is not None and not aqu.done):
        cycle += 1
        if not glb.done:
            glb.tick()
            glb_end = cycle
        if aqu is not None and not aqu.done:
            aqu.tick()
            aqu_end = cycle
    busy[glb.process] += glb_end
    busy["aqu"] += aqu_end
    return cycle, "aqu" if aqu_end > glb_end else channel


def run_step(step: Step, busy: dict[str, int]) -> tuple[dict[str, int], int]:
    """Run one step cycle by cycle; its cycles by cause (``compute``, ``imbalance``, each channel) and in all, and
    the cycles in which no transfer ran on the DRAM side."""
    spent = dict.fromkeys(("compute", "imbalance", "fill", *CHANNELS), 0)
    free = 0
    for channel, glb, aqu in step.serial:
        cycles, cause = _serial(channel, glb, aqu, busy)
        spent[cause] += cycles
        free += cycles if channel != "dram" else 0
    pes = [PE(lanes, step.depth, step.drain) for lanes in step.lanes or []]
    work = [lane for lanes in step.lanes or [] for lane in lanes]
    queues = {ch: list(jobs) for ch, jobs in step.queues.items()}
    slowest, last = 0, dict.fromkeys(CHANNELS, 0)
    cycle = 0
    while not all(pe.done for pe in pes) or any(queues.values()):
        cycle += 1
        free += not queues["dram"]
        for pe in pes:
            if pe.tick():
                slowest = cycle
        for channel, queue in queues.items():
            if queue:
                queue[0].tick()
                busy[queue[0].process] += 1
                if queue[0].done:
                    queue.pop(0)
                    last[channel] = cycle
    if work:
        spent["compute"] = -(-sum(sum(lane) for lane in work) // len(work))
        spent["fill"] = step.drain
        spent["imbalance"] = slowest - spent["compute"] - step.drain
    if cycle > slowest:
        spent[next(ch for ch in CHANNELS if last[ch] == cycle)] += cycle - slowest
    spent["cycles"] = sum(spent.values())
    return spent, free
