"""The per-cycle reference engine: the same microarchitecture as the tile engine, stepped one cycle at a time.

Written independently of :mod:`fgmpsim.sim.hw.lanes`, :mod:`fgmpsim.sim.hw.traffic` and
:mod:`fgmpsim.sim.schedule` (it shares only the inputs: the tiling the mapper chose and the datapath-adjusted
maps): plain Python loops enumerate every tile, every lane's block pairs and every block moved; each tile step is
then run cycle by cycle: every lane works on its current block pair (``cycles_per_block_pair`` cycles each),
every transfer moves ``bits_per_cycle`` at each of its ends (source level, destination level or each destination
PE) until all ends are done, the AQU waits its latency and then takes ``blocks_per_cycle`` blocks per cycle.
See :mod:`fgmpsim.sim.schedule` for the step rules and :mod:`fgmpsim.sim.hw.traffic` for what each transfer moves.

Usable on tiny GEMMs only: above :data:`MAX_BLOCK_PAIRS` block pairs per trace it refuses before building the
tiles, and an op whose cycle-by-cycle loop would step more than :data:`MAX_STEPPED_CYCLES` lane- and
transfer-cycles is refused once its tiles are built, before the first cycle (a few block pairs at 2**20 cycles
each are as slow as millions at 1 cycle).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from fgmpsim.arch.record import PRECISION_PAIRS, Arch
from fgmpsim.energy import ACTIONS
from fgmpsim.errors import TraceError
from fgmpsim.sim.mapping import Tiling
from fgmpsim.sim.hw.operands import Operands
from fgmpsim.sim.schedule import OpTiming

MAX_BLOCK_PAIRS = 200_000
"""Largest trace (block pairs over all ops and repeats) the reference engine accepts."""
MAX_STEPPED_CYCLES = 20_000_000
"""Most loop iterations (a lane or a transfer end advanced by one cycle) of one op: 1-20 s in Python (measured
0.3-4 M iterations per second; transfers are the slow ones)."""


def check_size(total_block_pairs: int) -> None:
    """Refuse traces too large for a per-cycle simulation."""
    if total_block_pairs > MAX_BLOCK_PAIRS:
        raise TraceError(f"the reference engine steps every cycle and takes at most {MAX_BLOCK_PAIRS} block pairs, "
                         f"this trace has {total_block_pairs}", "engine",
                         "use engine='tile' (exact, vectorized) or a smaller GEMM")


@dataclass
class End:
    """One end of a transfer: ``remaining`` units at ``rate`` per cycle after ``wait`` cycles (AQU latency)."""

    remaining: int
    rate: int
    wait: int = 0

    def tick(self) -> None:
        """One cycle of progress."""
        if self.wait:
            self.wait -= 1
        else:
            self.remaining -= self.rate

    @property
    def done(self) -> bool:
        return self.wait == 0 and self.remaining <= 0


@dataclass
class Transfer:
    """A data movement: it lasts until every end is done; ``cause`` is the channel its stall is charged to."""

    kind: str
    ends: list[End]
    cause: str
    aqu: End | None = None       # the AQU part of an output drain (runs beside the GLB ends)

    def active(self) -> bool:
        """True while any end has bits (or the AQU outputs) left."""
        return any(e.remaining > 0 for e in self.ends) or (self.aqu is not None and self.aqu.remaining > 0)


@dataclass
class Step:
    """One tile step: the tile's lanes (block-pair cycles of each), its serialized transfers in order, and the
    overlapped transfers queued per channel."""

    lanes: list[list[int]] | None = None
    serial: list[Transfer] = field(default_factory=list)
    overlap: dict[str, list[Transfer]] = field(default_factory=lambda: {"dram": [], "glb": [], "aqu": []})


@dataclass(frozen=True)
class _Tile:
    """One tile in execution order: repeat, tile indices, its rows/columns/blocks and whether it starts a chunk."""

    r: int
    nt: int
    kt: int
    mt: int
    first_m: bool
    rows: range
    cols: range
    blocks: range


class _Op:
    """Builds one op's steps and counts with plain loops over tiles, lanes, block pairs and blocks."""

    def __init__(self, ops: Operands, tiling: Tiling, arch: Arch) -> None:
        self.ops, self.t, self.arch = ops, tiling, arch
        self.counts: dict[str, int] = defaultdict(int)
        self.steps: dict[int, Step] = defaultdict(Step)
        self.busy: dict[str, int] = defaultdict(int)
        st, vw = arch.storage, arch.pe_array.vector_width
        self.bits = (vw * st.fp4_value_bits + st.fp4_scale_bits, vw * st.fp8_value_bits + st.fp8_scale_bits)
        self.meta = st.metadata_bits_per_block
        self.cost = arch.pe_array.cycles_per_block_pair.as_table()
        self.db = {level.name: int(level.double_buffered) for level in arch.memory.levels()}

    def tiles(self) -> list[_Tile]:
        t, op, mp = self.t, self.ops.op, self.t.mapping
        order = []
        for r in range(op.repeat):
            if t.ws:
                for first in range(0, t.m_tiles, t.chunk_tiles):
                    for nt in range(t.n_tiles):
                        for kt in range(t.k_tiles):
                            for mt in range(first, min(first + t.chunk_tiles, t.m_tiles)):
                                order.append((r, nt, kt, mt, mt == first))
            else:
                for mt in range(t.m_tiles):
                    for nt in range(t.n_tiles):
                        for kt in range(t.k_tiles):
                            order.append((r, nt, kt, mt, mt == 0))
        return [_Tile(r, nt, kt, mt, first, range(mt * mp.tile_m, min(op.m, (mt + 1) * mp.tile_m)),
                      range(nt * mp.tile_n, min(op.n, (nt + 1) * mp.tile_n)),
                      range(kt * mp.tile_k_blocks, min(self.ops.kb, (kt + 1) * mp.tile_k_blocks)))
                for r, nt, kt, mt, first in order]

    def transfer(self, kind: str, j: int, src: str, read: tuple[int, int], src_ends: list[int], dst: str,
                 written: tuple[int, int], dst_ends: list[int], buffer: str = "", aqu: End | None = None) -> None:
        """Count a movement (``read``/``written`` = (data, metadata) bits at the source/destination level) and put
        it into its step (the placement table of :mod:`fgmpsim.sim.schedule`). ``src_ends``/``dst_ends``: bits
        through each instance of the level (one for DRAM and the GLB, one per active PE for PE buffers)."""
        for level, direction, (data, meta) in ((src, "read", read), (dst, "write", written)):
            self.counts[f"{level}_{direction}_bits"] += data
            self.counts[f"{level}_{direction}_metadata_bits"] += meta
        mem = self.arch.memory
        ends = ([End(b, getattr(mem, src).read_bits_per_cycle) for b in src_ends]
                + [End(b, getattr(mem, dst).write_bits_per_cycle) for b in dst_ends])
        tr = Transfer(kind, ends, "dram" if "dram" in (src, dst) else "glb", aqu)
        g = self.db["glb"]
        if kind.startswith("dram_"):
            step, overlapped, channel = j - self.db[buffer] - g, bool(g), "dram"
        elif kind.startswith("pe_"):
            step, overlapped, channel = j - self.db[buffer], bool(self.db[buffer]), "glb"
        elif kind == "drain":
            step, overlapped, channel = j + 1, bool(self.db["accum_buffer"]), "glb"
        else:
            step, overlapped, channel = j + 2, bool(g), "dram"
        if not tr.active():
            return
        where = self.steps[step]
        if not overlapped:
            where.serial.append(tr)
            return
        if tr.aqu is not None:
            where.overlap["aqu"].append(Transfer("aqu", [tr.aqu], "aqu"))
            tr.aqu = None
        if tr.active():
            where.overlap[channel].append(tr)

    def build(self) -> None:
        t, ops = self.t, self.ops
        pe, ps, vw, fmt = self.arch.pe_array, self.arch.storage.psum_bits, self.arch.pe_array.vector_width, ops.out
        tiles = self.tiles()
        outputs = [len(x.rows) * len(x.cols) if x.kt == t.k_tiles - 1 else 0 for x in tiles]
        total_outputs, seen, given = sum(outputs), 0, (0, 0)
        for j, x in enumerate(tiles):
            w, a = ops.repeat_maps(x.r)
            chunk_first = t.chunk_tiles * (x.mt // t.chunk_tiles)
            spill = t.ws and t.k_tiles > 1 and min(t.chunk_tiles, t.m_tiles - chunk_first) > 1
            last = x.kt == t.k_tiles - 1
            seen += outputs[j]
            upto = (fmt.data_bits * seen // total_outputs, fmt.metadata_bits * seen // total_outputs)
            out = (upto[0] - given[0], upto[1] - given[1])
            given = upto
            w_tile = (sum(self.bits[int(w[n, kb])] for n in x.cols for kb in x.blocks),
                      self.meta * len(x.cols) * len(x.blocks))
            x_tile = (sum(self.bits[int(a[m, kb])] for m in x.rows for kb in x.blocks),
                      self.meta * len(x.rows) * len(x.blocks))
            if t.ws:  # lane j of the n-tile is channel cols[j] in PE j // lanes_per_pe
                pes = [x.cols[p:p + pe.lanes_per_pe] for p in range(0, len(x.cols), pe.lanes_per_pe)]
                w_dram = w_fill = x.first_m
                w_ends = [sum(self.bits[int(w[n, kb])] + self.meta for n in chans for kb in x.blocks) for chans in pes]
                x_ends = [sum(x_tile)] * len(pes)
                psum_ends = [len(x.rows) * len(chans) * ps for chans in pes]
                w_copies, x_copies = 1, len(pes)
            else:  # PE p is row rows[p], its lane l column cols[l]
                w_dram, w_fill = x.mt == 0 or not t.w_resident, True
                w_ends = [sum(w_tile)] * len(x.rows)
                x_ends = [sum(self.bits[int(a[m, kb])] + self.meta for kb in x.blocks) for m in x.rows]
                psum_ends = [len(x.cols) * ps] * len(x.rows)
                w_copies, x_copies = len(x.rows), 1
            psums = len(x.rows) * len(x.cols) * ps
            if w_dram:
                self.transfer("dram_w", j, "dram", w_tile, [sum(w_tile)], "glb", w_tile, [sum(w_tile)],
                              "weight_buffer")
            if x.nt == 0 or not t.x_resident:
                self.transfer("dram_x", j, "dram", x_tile, [sum(x_tile)], "glb", x_tile, [sum(x_tile)],
                              "input_buffer")
            if w_fill:
                self.transfer("pe_w", j, "glb", w_tile, [sum(w_tile)], "weight_buffer",
                              (w_copies * w_tile[0], w_copies * w_tile[1]), w_ends, "weight_buffer")
            self.transfer("pe_x", j, "glb", x_tile, [sum(x_tile)], "input_buffer",
                          (x_copies * x_tile[0], x_copies * x_tile[1]), x_ends, "input_buffer")
            if spill and x.kt > 0:
                self.transfer("pe_psum", j, "glb", (psums, 0), [psums], "accum_buffer", (psums, 0), psum_ends,
                              "accum_buffer")
            self.compute(j, x, w, a, w_tile, x_tile, x_copies)
            if spill and not last:
                self.transfer("drain", j, "accum_buffer", (psums, 0), psum_ends, "glb", (psums, 0), [psums])
            if last:
                aqu = End(len(x.rows) * len(x.cols), self.arch.aqu.blocks_per_cycle * vw,
                          self.arch.aqu.latency_cycles) if fmt.aqu_blocks else None
                self.transfer("drain", j, "accum_buffer", (psums, 0), psum_ends, "glb", out, [sum(out)], aqu=aqu)
                self.transfer("writeback", j, "glb", out, [sum(out)], "dram", out, [sum(out)])
        self.counts["aqu_blocks"] = fmt.aqu_blocks
        self.counts["aqu_sensitivity_read_bits"] = fmt.aqu_blocks * vw * self.arch.aqu.sensitivity_bits_per_channel

    def compute(self, j: int, x: _Tile, w: np.ndarray, a: np.ndarray, w_tile: tuple[int, int],
                x_tile: tuple[int, int], x_copies: int) -> None:
        """The tile's lanes (a list of block-pair cycles each), MACs, buffer reads and partial-sum updates."""
        if self.t.ws:
            lanes = [[(n, m, kb) for m in x.rows for kb in x.blocks] for n in x.cols]
        else:
            lanes = [[(n, m, kb) for kb in x.blocks] for m in x.rows for n in x.cols]
        self.steps[j].lanes = [[self.cost[int(w[n, kb])][int(a[m, kb])] for n, m, kb in lane] for lane in lanes]
        for lane in lanes:
            for n, m, kb in lane:
                self.counts[f"macs_{PRECISION_PAIRS[2 * int(w[n, kb]) + int(a[m, kb])]}"] += self.ops.vw
                self.counts["block_pairs"] += 1
        psums = len(x.rows) * len(x.cols) * self.arch.storage.psum_bits
        for level, direction, data, meta in (
                ("weight_buffer", "read", len(x.rows) * w_tile[0], len(x.rows) * w_tile[1]),
                ("input_buffer", "read", x_copies * x_tile[0], x_copies * x_tile[1]),
                ("accum_buffer", "read", psums * (x.kt > 0), 0), ("accum_buffer", "write", psums, 0)):
            self.counts[f"{level}_{direction}_bits"] += data
            self.counts[f"{level}_{direction}_metadata_bits"] += meta


_BUSY = {"dram_w": "loader", "dram_x": "loader", "pe_w": "distributor", "pe_x": "distributor",
         "pe_psum": "distributor", "drain": "writer", "aqu": "aqu", "writeback": "writer"}


def _run_serial(tr: Transfer, busy: dict[str, int]) -> tuple[int, str]:
    """Cycles of one serialized transfer and the cause charged; a drain's AQU part runs beside its GLB part."""
    cycles = glb_done = aqu_done = 0
    while tr.active():
        cycles += 1
        for e in tr.ends:
            if e.remaining > 0:
                e.tick()
        if tr.aqu is not None and not tr.aqu.done:
            tr.aqu.tick()
            if tr.aqu.done:
                aqu_done = cycles
        if not glb_done and all(e.remaining <= 0 for e in tr.ends):
            glb_done = cycles
    busy[_BUSY[tr.kind]] += glb_done
    if tr.aqu is not None:
        busy["aqu"] += aqu_done
    return cycles, ("aqu" if aqu_done > glb_done else tr.cause)


def _run_step(step: Step, busy: dict[str, int]) -> dict[str, int]:
    """Cycles of one step by cause: serialized transfers, then compute beside the overlapped channels."""
    spent = {"dram": 0, "glb": 0, "aqu": 0, "ideal": 0, "imbalance": 0}
    for tr in step.serial:
        cycles, cause = _run_serial(tr, busy)
        spent[cause] += cycles
    lanes = [list(costs) for costs in (step.lanes or [])]
    left = [costs.pop(0) if costs else 0 for costs in lanes]
    queues = {ch: list(trs) for ch, trs in step.overlap.items()}
    finish = {"compute": 0, "dram": 0, "glb": 0, "aqu": 0}
    cycle = 0
    while any(left) or any(queues.values()):
        cycle += 1
        for i in range(len(lanes)):
            if left[i]:
                left[i] -= 1
                if left[i] == 0 and lanes[i]:
                    left[i] = lanes[i].pop(0)
                if left[i] == 0:
                    finish["compute"] = cycle
        for ch, queue in queues.items():
            if queue:
                tr = queue[0]
                for e in tr.ends:
                    if not e.done:
                        e.tick()
                busy[_BUSY[tr.kind]] += 1
                if all(e.done for e in tr.ends):
                    queue.pop(0)
                    finish[ch] = cycle
    if step.lanes:
        work = sum(sum(costs) for costs in step.lanes)
        spent["ideal"] = -(-work // len(step.lanes))
        spent["imbalance"] = finish["compute"] - spent["ideal"]
    excess = cycle - finish["compute"]
    if excess:
        cause = next(ch for ch in ("dram", "glb", "aqu") if finish[ch] == cycle)
        spent[cause] += excess
    spent["total"] = sum(spent[c] for c in ("dram", "glb", "aqu")) + finish["compute"]
    return spent


def _end_cycles(end: End) -> int:
    return end.wait + max(0, -(-end.remaining // end.rate))


def _transfer_cycles(tr: Transfer) -> int:
    """Cycles a transfer lasts times the ends it advances (its cost in loop iterations)."""
    ends = [*tr.ends, *([tr.aqu] if tr.aqu is not None else [])]
    return max(map(_end_cycles, ends), default=0) * len(ends)


def stepped_cycles(steps: dict[int, Step]) -> int:
    """Loop iterations the per-cycle run of these steps costs: every lane's block-pair cycles (each lane is
    advanced every cycle of its step) plus every transfer's cycles times its ends."""
    total = 0
    for step in steps.values():
        lanes = step.lanes or []
        total += max(map(sum, lanes), default=0) * len(lanes)
        total += sum(_transfer_cycles(tr) for tr in step.serial)
        total += sum(_transfer_cycles(tr) for queue in step.overlap.values() for tr in queue)
    return total


def reference_op(ops: Operands, tiling: Tiling, arch: Arch) -> tuple[OpTiming, dict[str, int]]:
    """Cycles and action counts of one op, simulated cycle by cycle; refuses an op over
    :data:`MAX_STEPPED_CYCLES` before stepping it."""
    op = _Op(ops, tiling, arch)
    op.build()
    work = stepped_cycles(op.steps)
    if work > MAX_STEPPED_CYCLES:
        raise TraceError(f"the reference engine steps every cycle; op {ops.op.name!r} would take {work:,} lane and "
                         f"transfer cycles (~{work / 2e6:,.0f} s at ~2 M per second), more than the "
                         f"{MAX_STEPPED_CYCLES:,} it takes on",
                         "engine", "use engine='tile' (exact, vectorized) or a smaller GEMM / fewer cycles per "
                                   "block pair")
    totals: dict[str, int] = defaultdict(int)
    for s in sorted(op.steps):
        for key, value in _run_step(op.steps[s], op.busy).items():
            totals[key] += value
    counts = {action: op.counts.get(action, 0) for action in ACTIONS}
    timing = OpTiming(cycles=totals["total"], compute_cycles=totals["ideal"], stall_dram_cycles=totals["dram"],
                      stall_glb_cycles=totals["glb"], stall_imbalance_cycles=totals["imbalance"],
                      stall_aqu_cycles=totals["aqu"], busy_loader_cycles=op.busy["loader"],
                      busy_distributor_cycles=op.busy["distributor"], busy_aqu_cycles=op.busy["aqu"],
                      busy_writer_cycles=op.busy["writer"])
    return timing, counts
