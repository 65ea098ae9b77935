"""The reference engine's tiles: every tile of an op in execution order, what each moves, and the action counts,
with plain loops over tiles, lanes, block pairs and blocks.

Written from the spec (the docstrings of :mod:`fgmpsim.sim.mapping`, :mod:`fgmpsim.sim.hw.traffic` and
:mod:`fgmpsim.sim.hw.lanes`), sharing no code with the tile engine. It takes the mapper's decision as plain numbers
(:class:`Decision`) and enumerates the tiles itself.

Loop order, outer to inner: weight stationary (WS) repeat, M-chunk (``chunk_m / tile_m`` m-tiles, all of them when
unset), n-tile, k-tile, m-tile of the chunk; output stationary (OS) repeat, m-tile, n-tile, k-tile. The last tile
along a dimension may be short. Placement on the array: WS lane ``j`` of the n-tile computes channel
``n0 + j`` in PE ``j // lanes_per_pe`` and walks the tile's rows and blocks; OS PE ``p`` computes row ``m0 + p``
and its lane ``l`` column ``n0 + l``, each lane walking the tile's blocks. A lane spends
``cycles_per_block_pair.<w>x<a>`` cycles on a block pair (weight precision first).

Per tile, in the order the hardware needs them (bits = data bits, metadata bits apart but moved alongside):

* **DRAM -> GLB**: the weight tile when first needed (WS: on the first m-tile of its chunk; OS: on m-tile 0, or
  on every tile when W is not GLB-resident), the X tile on n-tile 0 or on every tile when X is not resident.
  Ends: DRAM at ``dram.read``, GLB at ``glb.write``.
* **GLB -> PE**: the weight tile (WS: with its DRAM fill, each channel's blocks to its PE; OS: every tile, a copy
  to every active PE), the X tile (every tile; WS: a copy to every active PE; OS: row ``m`` to PE ``m``) and, WS in
  a chunk of more than one m-tile with more than one k-tile, the tile's partial sums before every k-tile but the
  first. Ends: the GLB at ``glb.read`` (each bit read once, multicast), each receiving PE buffer at its ``write``.
* **compute**: every lane's block pairs, in the order its PE broadcasts their input blocks (the order the lane
  walks them above; PE ``j // lanes_per_pe`` holds WS lanes ``j``, an OS PE the lanes of its row). Each lane reads its weight block per block pair (``rows`` reads of every
  weight block), each active PE reads each of its input blocks once, each output's partial sum is written every
  tile and read on every k-tile but the first.
* **collectors** (spec: :mod:`fgmpsim.sim.hw.collectors`; WS with ``weight_collector_blocks = dw >= 1`` only): the
  lane runs its program, row groups of ``psum_collector_entries = dp`` rows, within each the k-chunks of ``dw``
  blocks, within each the group's rows over the chunk's blocks. Its collector holds one k-chunk of one channel:
  a chunk it does not hold is read from the weight buffer and written into the collector; every block pair reads
  its weight block from the collector. A weight-buffer fill of the lane's PE (the weight tile sent to the PEs)
  empties the collector. A load that only one row runs over before the next load (or the emptying) bypasses the
  collector: no collector write or read, its blocks straight from the weight buffer. With more than one row in a
  group, a row's partial sum is written to the partial-sum collector after every k-chunk but the last and read
  back before every k-chunk but the first.
* **drain** (accumulation buffers -> GLB): the partial sums after every k-tile but the last (spilling chunks), and
  the outputs after the last k-tile. Ends: each PE's accumulation buffer at ``accum.read``, the GLB at
  ``glb.write``; an output drain of an op the AQU quantizes also runs the AQU: ``latency`` cycles, then
  ``blocks_per_cycle * vector_width`` of the tile's ``rows * cols`` outputs per cycle.
* **write-back** (GLB -> DRAM): the outputs. Ends: GLB at ``glb.read``, DRAM at ``dram.write``.

An op that keeps its output in the GLB for the next op (the decision's ``keeps_output``) has no write-back; an op
whose X (``fed = "act"``) or W (``fed = "weight"``) is that kept output never fetches it from DRAM.

Bits at each level follow that level's ``storage.layout`` and the operand's format (:func:`.operands.level_block_bits`):
a transfer reads its source level's bits and writes its destination level's, each end at its own rate.

The op's output data bits (at the GLB's and at DRAM's layout) and metadata bits are each spread over its output
tiles (the last k-tile of every output tile, in execution order) by running count: the tile that brings the
outputs seen to ``e`` of ``E`` gets
``floor(bits * e / E)`` minus what the tiles before it got. Partial sums are ``psum_bits`` each and carry no
metadata.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.sim.engines.reference.operands import Output, level_block_bits
from fgmpsim.trace.formats import OperandFormat

LEVELS = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer")
COLLECTORS = ("weight_collector", "psum_collector")


@dataclass(frozen=True)
class Decision:
    """The mapper's decision for one op, as plain numbers: the dataflow, tile sizes (rows, channels, blocks),
    ``chunk_m`` (WS rows per M-chunk, ``None`` = all of M), which operands stay resident in the GLB, whether the
    output stays there for the next op and which operand (``"act"``/``"weight"``) is the previous op's kept output."""

    dataflow: str
    tile_m: int
    tile_n: int
    tile_k_blocks: int
    chunk_m: int | None
    x_resident: bool
    w_resident: bool
    keeps_output: bool = False
    fed: str | None = None

    @property
    def ws(self) -> bool:
        return self.dataflow == "weight_stationary"


@dataclass(frozen=True)
class Movement:
    """One transfer of tile ``tile``: ``ends`` are (bits, bits per cycle) through each port it uses; ``aqu`` is the
    AQU part of an output drain, (latency cycles, outputs, outputs per cycle)."""

    kind: str
    tile: int
    ends: tuple[tuple[int, int], ...]
    aqu: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Tile:
    """One tile in execution order: its repeat and tile indices, whether it is the first m-tile of its M-chunk (OS:
    every m-tile is a chunk of its own) and whether its chunk spills partial sums, and the rows, columns and
    blocks it covers."""

    r: int
    mt: int
    nt: int
    kt: int
    first_of_chunk: bool
    spills: bool
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    blocks: tuple[int, ...]


def _span(index: int, size: int, total: int) -> tuple[int, ...]:
    return tuple(range(index * size, min(total, (index + 1) * size)))


def enumerate_tiles(m: int, n: int, kb: int, repeat: int, d: Decision) -> list[Tile]:
    """Every tile of the op in execution order (module docstring)."""
    m_tiles, n_tiles, k_tiles = -(-m // d.tile_m), -(-n // d.tile_n), -(-kb // d.tile_k_blocks)
    tiles = []
    if d.ws:
        per_chunk = m_tiles if d.chunk_m is None else min(m_tiles, d.chunk_m // d.tile_m)
        chunks = [list(range(c, min(c + per_chunk, m_tiles))) for c in range(0, m_tiles, per_chunk)]
        order = [(r, mt, nt, kt, mt == chunk[0], len(chunk) > 1 and k_tiles > 1)
                 for r in range(repeat) for chunk in chunks for nt in range(n_tiles) for kt in range(k_tiles)
                 for mt in chunk]
    else:
        order = [(r, mt, nt, kt, True, False) for r in range(repeat) for mt in range(m_tiles)  # chunk = m-tile
                 for nt in range(n_tiles) for kt in range(k_tiles)]
    for r, mt, nt, kt, first, spills in order:
        tiles.append(Tile(r, mt, nt, kt, first, spills, _span(mt, d.tile_m, m), _span(nt, d.tile_n, n),
                          _span(kt, d.tile_k_blocks, kb)))
    return tiles


def _pair(arch: Arch, w: int, a: int) -> str:
    """The lane mode of a block pair: INT8 x INT8 on an integer datapath (every operand there is 8-bit), else the
    FP pair of the two precisions."""
    if "int8" in arch.pe_array.datapath_precisions:
        return "int8xint8"
    return f"fp{8 if w else 4}xfp{8 if a else 4}"


def _cost(arch: Arch, w: int, a: int) -> int:
    return getattr(arch.pe_array.cycles_per_block_pair, _pair(arch, w, a))


class OpBuilder:
    """Walks one op's tiles and collects its :class:`Movement` s, every tile's lanes and its action counts."""

    def __init__(self, arch: Arch, d: Decision, w: list, a: list, out: Output, m: int, n: int, kb: int,
                 repeat: int, formats: tuple[OperandFormat, OperandFormat]) -> None:
        self.arch, self.d, self.w, self.a, self.out = arch, d, w, a, out
        self.tiles = enumerate_tiles(m, n, kb, repeat, d)
        self.k_tiles = -(-kb // d.tile_k_blocks)
        self.counts: dict[str, int] = defaultdict(int)
        self.moves: list[Movement] = []
        self.lanes: list[list[list[list[int]]]] = []   # tile -> PE -> lane -> block-pair cycles in order
        self.bits = {side: {level: level_block_bits(arch, level, fmt) for level in ("dram", "glb", "pe_buffers")}
                     for side, fmt in zip("wa", formats)}  # each operand's block bits
        self.held: dict[int, tuple] = {}      # lane (position in the n-tile) -> (channel, blocks) its collector holds
        self.loads: dict[int, list[int]] = {}  # lane -> its collector load: [data bits, metadata bits, rows read it]

    def _move(self, kind: str, j: int, src: str, dst: str, read: tuple[int, int], written: tuple[int, int],
              src_ends: list[int], dst_ends: list[int], aqu: tuple[int, int, int] | None = None) -> None:
        """Count ``read`` (data, metadata) bits at ``src`` and ``written`` at ``dst`` and record the transfer with
        the bits through each port of each level."""
        for level, direction, (data, meta) in ((src, "read", read), (dst, "write", written)):
            self.counts[f"{level}_{direction}_bits"] += data
            self.counts[f"{level}_{direction}_metadata_bits"] += meta
        mem = self.arch.memory
        ends = tuple([(b, getattr(mem, src).read_bits_per_cycle) for b in src_ends]
                     + [(b, getattr(mem, dst).write_bits_per_cycle) for b in dst_ends])
        self.moves.append(Movement(kind, j, ends, aqu))

    def _blocks(self, side: str, pmap: list, rows: tuple[int, ...], blocks: tuple[int, ...],
                level: str = "pe_buffers") -> tuple[int, int]:
        """(data bits, metadata bits) of the blocks ``blocks`` of rows ``rows`` of one repeat's map of operand
        ``side`` (``"w"`` or ``"a"``) at ``level``."""
        data = sum(self.bits[side][level][pmap[i][k]] for i in rows for k in blocks)
        return data, len(rows) * len(blocks) * self.arch.storage.metadata_bits_per_block

    def build(self) -> None:
        arch, d = self.arch, self.d
        pe, ps, vw = arch.pe_array, arch.storage.psum_bits, arch.pe_array.vector_width
        outputs = [len(t.rows) * len(t.cols) if t.kt == self.k_tiles - 1 else 0 for t in self.tiles]
        every, seen = sum(outputs), 0
        given = {"glb": (0, 0), "dram": (0, 0)}
        for j, t in enumerate(self.tiles):
            w, a = self.w[min(t.r, len(self.w) - 1)], self.a[min(t.r, len(self.a) - 1)]
            w_tile, x_tile = self._blocks("w", w, t.cols, t.blocks), self._blocks("a", a, t.rows, t.blocks)
            w_dram = self._blocks("w", w, t.cols, t.blocks, "dram")
            x_dram = self._blocks("a", a, t.rows, t.blocks, "dram")
            w_glb, x_glb = self._blocks("w", w, t.cols, t.blocks, "glb"), self._blocks("a", a, t.rows, t.blocks, "glb")
            if d.ws:
                groups = [t.cols[p:p + pe.lanes_per_pe] for p in range(0, len(t.cols), pe.lanes_per_pe)]
                w_from_dram = w_to_pe = t.first_of_chunk
                w_pe = [sum(self._blocks("w", w, g, t.blocks)) for g in groups]
                x_pe = [sum(x_tile)] * len(groups)
                psum_pe = [len(t.rows) * len(g) * ps for g in groups]
                w_copies, x_copies = 1, len(groups)
            else:
                w_from_dram, w_to_pe = t.mt == 0 or not d.w_resident, True
                w_pe = [sum(w_tile)] * len(t.rows)
                x_pe = [sum(self._blocks("a", a, (m,), t.blocks)) for m in t.rows]
                psum_pe = [len(t.cols) * ps] * len(t.rows)
                w_copies, x_copies = len(t.rows), 1
            psums = len(t.rows) * len(t.cols) * ps
            if w_from_dram and d.fed != "weight":
                self._move("dram_w", j, "dram", "glb", w_dram, w_glb, [sum(w_dram)], [sum(w_glb)])
            if (t.nt == 0 or not d.x_resident) and d.fed != "act":
                self._move("dram_x", j, "dram", "glb", x_dram, x_glb, [sum(x_dram)], [sum(x_glb)])
            if w_to_pe:
                self._move("pe_w", j, "glb", "weight_buffer", w_glb, (w_copies * w_tile[0], w_copies * w_tile[1]),
                           [sum(w_glb)], w_pe)
            self._move("pe_x", j, "glb", "input_buffer", x_glb, (x_copies * x_tile[0], x_copies * x_tile[1]),
                       [sum(x_glb)], x_pe)
            if t.spills and t.kt > 0:
                self._move("pe_psum", j, "glb", "accum_buffer", (psums, 0), (psums, 0), [psums], psum_pe)
            if w_to_pe:
                self._empty_collectors()
            self._compute(t, w, a, w_tile, x_tile, x_copies)
            if t.kt < self.k_tiles - 1:
                if t.spills:
                    self._move("drain", j, "accum_buffer", "glb", (psums, 0), (psums, 0), psum_pe, [psums])
                continue
            seen += outputs[j]
            share = {}
            for level in ("glb", "dram"):
                upto = (self.out.bits_at(arch, level) * seen // every, self.out.metadata_bits * seen // every)
                share[level] = (upto[0] - given[level][0], upto[1] - given[level][1])
                given[level] = upto
            aqu = ((arch.aqu.latency_cycles, outputs[j], arch.aqu.blocks_per_cycle * vw)
                   if self.out.aqu_blocks else None)
            glb, dram = share["glb"], share["dram"]
            self._move("drain", j, "accum_buffer", "glb", (psums, 0), glb, psum_pe, [sum(glb)], aqu)
            if not d.keeps_output:
                self._move("writeback", j, "glb", "dram", glb, dram, [sum(glb)], [sum(dram)])
        self._empty_collectors()
        self.counts["aqu_blocks"] = self.out.aqu_blocks
        self.counts["aqu_sensitivity_read_bits"] = self.out.aqu_blocks * vw * arch.aqu.sensitivity_bits_per_channel

    def _compute(self, t: Tile, w: list, a: list, w_tile: tuple[int, int], x_tile: tuple[int, int],
                 x_copies: int) -> None:
        """The tile's lanes, MACs and block pairs, and its PE-buffer reads and partial-sum updates."""
        dw = self.arch.pe_array.weight_collector_blocks
        if self.d.ws and dw:
            lanes = [self._collector_program(t, w, j, n) for j, n in enumerate(t.cols)]
        elif self.d.ws:
            lanes = [[(n, m, k) for m in t.rows for k in t.blocks] for n in t.cols]
        else:
            lanes = [[(n, m, k) for k in t.blocks] for m in t.rows for n in t.cols]
        vw = self.arch.pe_array.vector_width
        work = []
        for lane in lanes:
            cycles = []
            for n, m, k in lane:
                cycles.append(_cost(self.arch, w[n][k], a[m][k]))
                self.counts[f"macs_{_pair(self.arch, w[n][k], a[m][k])}"] += vw
                self.counts["block_pairs"] += 1
            work.append(cycles)
        per_pe = self.arch.pe_array.lanes_per_pe if self.d.ws else len(t.cols)
        self.lanes.append([work[p:p + per_pe] for p in range(0, len(work), per_pe)])
        psums = len(t.rows) * len(t.cols) * self.arch.storage.psum_bits
        weight_reads = (0, 0) if self.d.ws and dw else (len(t.rows) * w_tile[0], len(t.rows) * w_tile[1])
        for level, direction, data, meta in (
                ("weight_buffer", "read", *weight_reads),
                ("input_buffer", "read", x_copies * x_tile[0], x_copies * x_tile[1]),
                ("accum_buffer", "read", psums if t.kt > 0 else 0, 0), ("accum_buffer", "write", psums, 0)):
            self.counts[f"{level}_{direction}_bits"] += data
            self.counts[f"{level}_{direction}_metadata_bits"] += meta

    def _collector_program(self, t: Tile, w: list, j: int, n: int) -> list[tuple[int, int, int]]:
        """Lane ``j`` (channel ``n``) through its collectors (module docstring): counts its weight-buffer reads and
        register-file accesses, returns its block pairs in the order it runs them."""
        pe, meta, ps = self.arch.pe_array, self.arch.storage.metadata_bits_per_block, self.arch.storage.psum_bits
        dw, dp = pe.weight_collector_blocks, pe.psum_collector_entries
        chunks = [t.blocks[i:i + dw] for i in range(0, len(t.blocks), dw)]
        pairs = []
        for g in range(0, len(t.rows), dp):
            group = t.rows[g:g + dp]
            for c, chunk in enumerate(chunks):
                if self.held.get(j) != (n, chunk):
                    self._settle(j)
                    self.held[j] = (n, chunk)
                    data = sum(self.bits["w"]["pe_buffers"][w[n][k]] for k in chunk)
                    self.counts["weight_buffer_read_bits"] += data
                    self.counts["weight_buffer_read_metadata_bits"] += meta * len(chunk)
                    self.loads[j] = [data, meta * len(chunk), 0]
                for m in group:
                    if c > 0 and len(group) > 1:
                        self.counts["psum_collector_read_bits"] += ps
                    pairs.extend((n, m, k) for k in chunk)
                    self.loads[j][2] += 1
                    if c < len(chunks) - 1 and len(group) > 1:
                        self.counts["psum_collector_write_bits"] += ps
        return pairs

    def _settle(self, j: int) -> None:
        """Count lane ``j``'s last collector load as the spec's bypass rule says: written into the collector and
        read from it once per row that ran over it when more than one row did; otherwise (one row) its blocks went
        straight from the weight buffer to the lane (their buffer reads are counted at the load)."""
        load = self.loads.pop(j, None)
        if load is None or load[2] < 2:
            return
        data, meta, rows = load
        self.counts["weight_collector_write_bits"] += data
        self.counts["weight_collector_write_metadata_bits"] += meta
        self.counts["weight_collector_read_bits"] += rows * data
        self.counts["weight_collector_read_metadata_bits"] += rows * meta

    def _empty_collectors(self) -> None:
        """A weight fill of the PEs (or the op's end) empties every lane's collector: settle what each held."""
        for j in list(self.loads):
            self._settle(j)
        self.held.clear()


def action_names() -> tuple[str, ...]:
    """Every action the reference engine counts: bits and metadata bits read and written at every level and
    collector, MACs per precision pair, block pairs, AQU blocks and AQU sensitivity-table bits."""
    memory = tuple(f"{level}_{direction}_{kind}bits" for level in (*LEVELS, *COLLECTORS)
                   for direction in ("read", "write") for kind in ("", "metadata_"))
    macs = (*(f"macs_fp{w}xfp{a}" for w in (4, 8) for a in (4, 8)), "macs_int8xint8")
    return (*memory, *macs, "block_pairs", "aqu_blocks", "aqu_sensitivity_read_bits")
