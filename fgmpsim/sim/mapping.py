"""Mapping: how one GEMM is tiled onto the PE array, and the mapper that chooses it.

Tiles (units: ``tile_m`` rows of M, ``tile_n`` channels of N, ``tile_k_blocks`` blocks of K; the last tile along a
dimension may be smaller):

* **weight_stationary** (WS): lane ``j`` of the array (PE ``j // lanes_per_pe``) owns output channel
  ``n0 + j`` of the n-tile, so ``tile_n <= pes * lanes_per_pe``. Loop order, outer to inner:
  repeat, M-chunk, n-tile, k-tile, m-tile. An *M-chunk* is ``chunk_m`` rows (a multiple of ``tile_m``) whose
  partial sums fit the GLB: within a chunk every weight tile is loaded once and all the chunk's m-tiles stream
  through it; partial sums of the chunk's m-tiles round-trip through the GLB between k-tiles (a chunk of one
  m-tile keeps them in the accumulation buffer). Weights are read from DRAM once per chunk.
* **output_stationary** (OS): PE ``p`` owns row ``m0 + p`` of the m-tile and its lane ``l`` owns column
  ``n0 + l``, so ``tile_m <= pes`` and ``tile_n <= lanes_per_pe``. Loop order: repeat, m-tile, n-tile, k-tile;
  the accumulators stay in the lanes across k-tiles. ``chunk_m`` is unused (= M).

Buffer capacities (usable = half of ``size_bytes``, in whole bytes rounded down, when double buffered), with every
block at its worst case
(:func:`worst_block_bits`: the largest block the datapath can hold, plus its metadata bits):

=============  =============================================  ==========================================
buffer         weight_stationary                              output_stationary
=============  =============================================  ==========================================
weight (PE)    ``min(tile_n, lanes_per_pe) * tile_k_blocks``  ``tile_n * tile_k_blocks`` blocks
input (PE)     ``tile_m * tile_k_blocks`` blocks              ``tile_k_blocks`` blocks (one row)
accum (PE)     ``min(tile_n, lanes_per_pe) * tile_m`` psums   ``tile_n`` psums
GLB            weight tile + X tile (or the chunk's whole X   W tile (or all of W: ``w_resident``) + X
               rows: ``x_resident``) + the chunk's partial    tile (or the m-tile's whole rows:
               sums (``chunk_m * tile_n``) + one output tile  ``x_resident``) + one output tile
=============  =============================================  ==========================================

Layout (``storage.layout``): activations and outputs are quantized at run time by the AQU, so their tiles are
reserved at the worst case in every layout. Static weights are known when the op is compiled: with a **packed** GLB,
all of W (OS ``w_resident``) is reserved at its exact packed size (:func:`static_weight_bits`); with a slotted GLB
every block takes a full slot (= the worst case). Per-PE tiles keep the worst case in both layouts (sizing them
from the map would need the densest tile of every candidate size).

The **mapper** keeps the lanes full (WS ``tile_n = min(N, lanes)``, OS ``tile_n = min(N, lanes_per_pe)``; narrower
only when nothing fits) and picks ``tile_k_blocks``, ``tile_m`` (OS: at most ``pes``), the chunk and the
residencies that minimize worst-case DRAM bits, then GLB bits, then worst-case weight-buffer read bits (which
only a weight collector makes depend on the tiling: :mod:`fgmpsim.sim.hw.collectors`), then the tile count
(candidates: the sizes that split a dimension into equal tiles, and powers of two). Worst-case bits (every block
at its worst case): DRAM = the weights once per chunk (WS) or once / once per m-tile (OS, resident or not) + X once
(resident) or once per n-tile + the outputs; GLB = every DRAM fill written + the weights read once per PE fill
(WS per chunk, OS per m-tile) + X read once per n-tile + WS partial sums of all M rows written and read
``k_tiles - 1`` times when a chunk holds more than one m-tile (a short last chunk of one m-tile is counted too: an
upper bound) + the outputs written and read.
Fields fixed in ``arch.mapping`` are respected. Input reuse across ops is not modeled: every op reads its X from DRAM.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from fgmpsim.arch.record import DATAFLOWS, Arch, MemoryLevel
from fgmpsim.energy import block_bits, level_bits
from fgmpsim.errors import MappingError
from fgmpsim.precision import WIDE_PRECISIONS
from fgmpsim.sim.hw.collectors import weight_buffer_reads
from fgmpsim.trace.record import GemmOp, materialize_map


@dataclass(frozen=True)
class Mapping:
    """Tile sizes of one op. ``tile_m``/``tile_n`` in elements, ``tile_k_blocks`` in blocks, ``chunk_m`` in rows,
    a multiple of ``tile_m`` (WS only; ``None`` = chosen to fit the GLB; always ``None`` for OS)."""

    dataflow: str
    tile_m: int
    tile_n: int
    tile_k_blocks: int
    chunk_m: int | None = None


@dataclass(frozen=True)
class OpShape:
    """What the mapper needs of an op: sizes (K in blocks, ``ceil(K / vector_width)``: a partial last block is a
    whole block; on systolic_ws K in elements) and whether its output is quantized for a consumer."""

    m: int
    kb: int
    n: int
    repeat: int
    has_consumer: bool
    w_packed_bits: int | None = None  # all of W packed (data + metadata), when reserved exactly (else worst case)

    @staticmethod
    def of(op: GemmOp, vector_width: int, w_packed_bits: int | None = None) -> OpShape:
        return OpShape(op.m, -(-op.k // vector_width), op.n, op.repeat, op.consumer is not None, w_packed_bits)


@dataclass(frozen=True)
class Tiling:
    """A mapping resolved for one op: tiles clamped to the op, ``chunk_m`` set, and which operands stay resident
    in the GLB (WS: ``x_resident`` = the chunk's X rows; OS: ``x_resident`` = the m-tile's X rows,
    ``w_resident`` = all of W)."""

    mapping: Mapping
    shape: OpShape
    x_resident: bool
    w_resident: bool

    @property
    def m_tiles(self) -> int:
        return -(-self.shape.m // self.mapping.tile_m)

    @property
    def n_tiles(self) -> int:
        return -(-self.shape.n // self.mapping.tile_n)

    @property
    def k_tiles(self) -> int:
        return -(-self.shape.kb // self.mapping.tile_k_blocks)

    @property
    def chunk_tiles(self) -> int:
        """m-tiles per M-chunk: WS ``chunk_m / tile_m`` (all m-tiles when unset); OS 1 (m-tile is the outer loop)."""
        if not self.ws:
            return 1
        if self.mapping.chunk_m is None:
            return self.m_tiles
        return min(self.m_tiles, self.mapping.chunk_m // self.mapping.tile_m)

    @property
    def ws(self) -> bool:
        return self.mapping.dataflow == "weight_stationary"

    @property
    def tiles(self) -> int:
        """Tiles of the whole op, all repeats."""
        return self.shape.repeat * self.m_tiles * self.n_tiles * self.k_tiles


def worst_block_bits(arch: Arch) -> int:
    """Bits of the largest block the datapath stores (values + scale) plus its metadata bits."""
    vw = arch.pe_array.vector_width
    return max(block_bits(p in WIDE_PRECISIONS, arch.storage, vw)
               for p in arch.pe_array.datapath_precisions) + arch.storage.metadata_bits_per_block


def _usable_bits(level: MemoryLevel) -> float:
    usable = level.usable_tile_bytes
    return float("inf") if usable is None else usable * 8


def _out_tile_bits(arch: Arch, bw: int, rows: int, cols: int, has_consumer: bool) -> int:
    if has_consumer:
        return -(-rows * cols // arch.pe_array.vector_width) * bw
    return rows * cols * arch.storage.unquantized_output_bits


def _pe_needs(arch: Arch, bw: int, dataflow: str, tm: int, tn: int,
              tkb: int) -> list[tuple[MemoryLevel, str, int, str]]:
    """(buffer, mapping field to change, worst-case bits needed, what) for the per-PE buffers; ``bw``: the
    worst-case block bits (:func:`worst_block_bits`, computed once per op by the callers)."""
    pe, ps = arch.pe_array, arch.storage.psum_bits
    mem = arch.memory
    if dataflow == "weight_stationary":
        lanes = min(tn, pe.lanes_per_pe)
        return [(mem.weight_buffer, "tile_k_blocks", lanes * tkb * bw,
                 f"a weight tile of {lanes} lane(s) x {tkb} block(s)"),
                (mem.input_buffer, "tile_m", tm * tkb * bw, f"an input tile of {tm} row(s) x {tkb} block(s)"),
                (mem.accum_buffer, "tile_m", lanes * tm * ps, f"partial sums of {lanes} lane(s) x {tm} row(s)")]
    return [(mem.weight_buffer, "tile_k_blocks", tn * tkb * bw, f"a weight tile of {tn} column(s) x {tkb} block(s)"),
            (mem.input_buffer, "tile_k_blocks", tkb * bw, f"an input row of {tkb} block(s)"),
            (mem.accum_buffer, "tile_n", tn * ps, f"partial sums of {tn} lane(s)")]


def _glb_need(arch: Arch, bw: int, shape: OpShape, tm: int, tn: int, tkb: int, chunk_tiles: int, x_res: bool,
              w_res: bool, ws: bool) -> int:
    """Worst-case GLB bits one tile step needs (see the module docstring)."""
    out = _out_tile_bits(arch, bw, tm, tn, shape.has_consumer)
    if ws:
        rows = min(chunk_tiles * tm, shape.m)
        spills = -(-shape.kb // tkb) > 1 and chunk_tiles > 1
        x = rows * shape.kb * bw if x_res else tm * tkb * bw
        return tn * tkb * bw + x + (rows * tn * arch.storage.psum_bits if spills else 0) + out
    w = (shape.w_packed_bits or shape.n * shape.kb * bw) if w_res else tn * tkb * bw
    x = tm * shape.kb * bw if x_res else tm * tkb * bw
    return w + x + out


def _traffic(arch: Arch, bw: int, shape: OpShape, tiling: Tiling) -> tuple[int, int]:
    """Worst-case (DRAM bits, GLB bits) of an op under ``tiling``; the mapper's objective."""
    w_bits, x_bits = shape.n * shape.kb * bw, shape.m * shape.kb * bw
    out = _out_tile_bits(arch, bw, shape.m, shape.n, shape.has_consumer)
    nt, mt, kt = tiling.n_tiles, tiling.m_tiles, tiling.k_tiles
    if tiling.ws:
        chunks = -(-mt // tiling.chunk_tiles)
        x_loads = 1 if tiling.x_resident else nt
        spills = kt > 1 and tiling.chunk_tiles > 1
        psums = 2 * shape.m * shape.n * arch.storage.psum_bits * (kt - 1) if spills else 0
        dram = w_bits * chunks + x_bits * x_loads + out
        glb = 2 * w_bits * chunks + x_bits * (x_loads + nt) + psums + 2 * out
    else:
        w_loads = 1 if tiling.w_resident else mt
        x_loads = 1 if tiling.x_resident else nt
        dram = w_bits * w_loads + x_bits * x_loads + out
        glb = w_bits * (w_loads + mt) + x_bits * (x_loads + nt) + 2 * out
    return dram * shape.repeat, glb * shape.repeat


def _max_chunk(arch: Arch, bw: int, shape: OpShape, m: Mapping, x_res: bool) -> int:
    """Largest number of m-tiles per chunk whose GLB need fits (0 if not even one). The need (:func:`_glb_need`)
    of a chunk of two or more m-tiles is affine in its rows, ``min(chunk_tiles * tile_m, M)``, so the largest chunk
    is solved for from the need of two m-tiles and of all of M."""
    usable, mt = _usable_bits(arch.memory.glb), -(-shape.m // m.tile_m)

    def need(chunk_tiles: int) -> int:
        return _glb_need(arch, bw, shape, m.tile_m, m.tile_n, m.tile_k_blocks, chunk_tiles, x_res, False, True)

    if need(1) > usable:
        return 0
    whole = need(mt)
    if mt < 2 or whole <= usable:
        return mt
    two = need(2)
    if two > usable:
        return 1
    per_row = (whole - two) // (shape.m - 2 * m.tile_m)  # mt >= 3 here; > 0: all of M does not fit, two m-tiles do
    return min(mt - 1, 2 + int((usable - two) // per_row) // m.tile_m)


def _residency_options(arch: Arch, bw: int, shape: OpShape, m: Mapping) -> list[Tiling]:
    """Every GLB-feasible residency (and, for WS without a fixed chunk, the largest chunk) of a tile mapping."""
    usable = _usable_bits(arch.memory.glb)
    options = []
    if m.dataflow == "weight_stationary":
        for x_res in (True, False):
            if m.chunk_m is not None:
                ok = _glb_need(arch, bw, shape, m.tile_m, m.tile_n, m.tile_k_blocks, m.chunk_m // m.tile_m, x_res,
                               False, True) <= usable
                if ok:
                    options.append(Tiling(m, shape, x_res, False))
                continue
            chunk = _max_chunk(arch, bw, shape, m, x_res)
            if chunk:
                options.append(Tiling(Mapping(m.dataflow, m.tile_m, m.tile_n, m.tile_k_blocks, chunk * m.tile_m),
                                      shape, x_res, False))
    else:
        for w_res in (True, False):
            for x_res in (True, False):
                if _glb_need(arch, bw, shape, m.tile_m, m.tile_n, m.tile_k_blocks, 1, x_res, w_res,
                             False) <= usable:
                    options.append(Tiling(m, shape, x_res, w_res))
    return options


def _key(arch: Arch, bw: int, shape: OpShape, tiling: Tiling) -> tuple[int, ...]:
    dram, glb = _traffic(arch, bw, shape, tiling)
    weight_reads = weight_buffer_reads(tiling, arch.pe_array) * shape.n * shape.repeat * bw
    m = tiling.mapping
    return dram, glb, weight_reads, tiling.tiles, -m.tile_m, -m.tile_k_blocks, -m.tile_n, not tiling.x_resident


def _best(arch: Arch, bw: int, shape: OpShape, m: Mapping) -> tuple[tuple[int, ...], Tiling] | None:
    """The best residency of tile mapping ``m`` with its mapper key, or None if it does not fit."""
    if any(need > _usable_bits(level) for level, _, need, _ in _pe_needs(arch, bw, m.dataflow, m.tile_m, m.tile_n,
                                                                          m.tile_k_blocks)):
        return None
    options = _residency_options(arch, bw, shape, m)
    return min(((_key(arch, bw, shape, t), t) for t in options), key=lambda kt: kt[0]) if options else None


def _balanced(total: int, limit: int, count: int = 8) -> list[int]:
    """Up to ``count`` largest tile sizes ``<= limit`` that split ``total`` into equal tiles (plus powers of two);
    ``[1]`` when even 1 exceeds the limit (the caller then reports the buffer)."""
    limit = max(1, limit)
    sizes: list[int] = []
    parts = -(-total // max(1, min(limit, total)))
    while parts <= total and len(sizes) < count:
        size = -(-total // parts)
        if size <= limit and size not in sizes:
            sizes.append(size)
        parts += 1
    power = 1
    while power <= min(limit, total):
        sizes.append(power)
        power *= 2
    return sorted(set(sizes), reverse=True)


def _widths(full: int, fixed: int | None) -> list[int]:
    if fixed is not None:
        return [fixed]
    widths, w = [full], full
    while w > 1:
        w = -(-w // 2)
        widths.append(w)
    return widths


def _minimum_tile_error(arch: Arch, dataflow: str) -> MappingError:
    for level, _, need, what in _pe_needs(arch, worst_block_bits(arch), dataflow, 1, 1, 1):
        if need > _usable_bits(level):
            return MappingError(f"the smallest tile ({what}) needs {need / 8:g} bytes but the buffer has "
                                f"{_usable_bits(level) / 8:g} usable bytes", f"memory.{level.name}.size_bytes",
                                f"enlarge memory.{level.name}.size_bytes (or turn off its double buffering)")
    return MappingError("even the smallest tile (1 row x 1 channel x 1 block) does not fit the global buffer",
                        "memory.glb.size_bytes", "enlarge memory.glb.size_bytes")


TILING_CACHE_SIZE = 4096
"""Tilings :func:`choose_tiling` keeps (least recently used first out; a few hundred bytes each)."""

_TILINGS: OrderedDict[tuple, Tiling] = OrderedDict()


def _mapper_inputs(arch: Arch) -> tuple:
    """Everything of ``arch`` the mapper reads: the array, block storage, fixed mapping fields and the usable bytes
    of every buffer (not the clock, bandwidths, AQU or energy, so a sweep over those reuses its tilings)."""
    mem = arch.memory
    return (arch.pe_array, arch.storage, arch.mapping,
            tuple(level.usable_tile_bytes for level in (mem.glb, mem.weight_buffer, mem.input_buffer,
                                                        mem.accum_buffer)))


def choose_tiling(arch: Arch, shape: OpShape) -> Tiling:
    """The mapper: the best tiling of ``shape`` on ``arch`` (see the module docstring); :class:`MappingError` when
    no tile fits, naming the buffer that is too small. Results are cached by the parts of the arch the mapper
    reads (:data:`TILING_CACHE_SIZE` entries)."""
    key = (_mapper_inputs(arch), shape)
    tiling = _TILINGS.get(key)
    if tiling is None:
        tiling = _TILINGS[key] = _choose_tiling(arch, shape)
        if len(_TILINGS) > TILING_CACHE_SIZE:
            _TILINGS.popitem(last=False)
    else:
        _TILINGS.move_to_end(key)
    return tiling


def _choose_tiling(arch: Arch, shape: OpShape) -> Tiling:
    pe, fixed = arch.pe_array, arch.mapping
    if pe.systolic:
        raise MappingError("a systolic_ws array's folds are fixed by its rows x cols, not chosen by the mapper",
                           "pe_array.dataflow", "plan the op with plan_op (or simulate)")
    dataflow = pe.dataflow
    ws = dataflow == "weight_stationary"
    # load_arch rejects fixed tiles wider than the array; the clamp keeps hand-built Arch records honest too
    width = min(shape.n, pe.lanes if ws else pe.lanes_per_pe)
    n_widths = _widths(width, fixed.tile_n and min(fixed.tile_n, width))
    if not ws:
        m_cap = min(shape.m, pe.pes)
    mem, bw, ps = arch.memory, worst_block_bits(arch), arch.storage.psum_bits
    for tn in n_widths:
        best: tuple[tuple[int, ...], Tiling] | None = None
        lanes = min(tn, pe.lanes_per_pe) if ws else tn
        k_cap = min(shape.kb, _usable_bits(mem.weight_buffer) // (lanes * bw), _usable_bits(mem.input_buffer) // bw)
        k_sizes = [min(fixed.tile_k_blocks, shape.kb)] if fixed.tile_k_blocks else _balanced(shape.kb, int(k_cap))
        for tkb in k_sizes:
            if ws:
                m_cap = min(shape.m, _usable_bits(mem.input_buffer) // (tkb * bw),
                            _usable_bits(mem.accum_buffer) // (lanes * ps))
            m_sizes = [min(fixed.tile_m, m_cap)] if fixed.tile_m else _balanced(shape.m, int(m_cap))
            for tm in m_sizes:
                candidate = _best(arch, bw, shape, Mapping(dataflow, tm, tn, tkb))
                if candidate and (best is None or candidate[0] < best[0]):
                    best = candidate
        if best is not None:
            return best[1]
    raise _minimum_tile_error(arch, dataflow)


def check_mapping(arch: Arch, shape: OpShape, mapping: Mapping) -> Tiling:
    """Resolve an explicit mapping for one op (tiles larger than the op are clamped to it); raises
    :class:`MappingError` naming the mapping field when it is impossible on ``arch``."""
    pe = arch.pe_array
    if mapping.dataflow not in DATAFLOWS or mapping.dataflow != pe.dataflow:
        raise MappingError(f"mapping dataflow {mapping.dataflow!r} but the array is {pe.dataflow}",
                           "mapping.dataflow", f"use {pe.dataflow!r} or change pe_array.dataflow")
    for field in ("tile_m", "tile_n", "tile_k_blocks"):
        value = getattr(mapping, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MappingError(f"{field} must be a positive integer, got {value!r}", f"mapping.{field}",
                               "give a tile size of at least 1")
    ws = mapping.dataflow == "weight_stationary"
    limits = ({"tile_n": (pe.lanes, "lanes")} if ws else
              {"tile_m": (pe.pes, "PEs"), "tile_n": (pe.lanes_per_pe, "lanes per PE")})
    for field, (limit, unit) in limits.items():
        if getattr(mapping, field) > limit:
            raise MappingError(f"{field}={getattr(mapping, field)} exceeds the array's {limit} {unit}",
                               f"mapping.{field}", f"use at most {limit}")
    m = Mapping(mapping.dataflow, min(mapping.tile_m, shape.m), min(mapping.tile_n, shape.n),
                min(mapping.tile_k_blocks, shape.kb), None)
    if ws and mapping.chunk_m is not None:
        chunk = mapping.chunk_m
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < mapping.tile_m \
                or chunk % mapping.tile_m:
            raise MappingError(f"chunk_m={chunk!r} must be a positive multiple of tile_m={mapping.tile_m}",
                               "mapping.chunk_m", "use a multiple of tile_m, or None to let the mapper choose")
        m = replace(m, chunk_m=min(chunk // mapping.tile_m, -(-shape.m // m.tile_m)) * m.tile_m)
    bw = worst_block_bits(arch)
    for level, field, need, what in _pe_needs(arch, bw, m.dataflow, m.tile_m, m.tile_n, m.tile_k_blocks):
        if need > _usable_bits(level):
            raise MappingError(f"{what} needs {need / 8:g} bytes but memory.{level.name} has "
                               f"{_usable_bits(level) / 8:g} usable bytes", f"mapping.{field}",
                               f"lower mapping.{field} or enlarge memory.{level.name}.size_bytes")
    options = _residency_options(arch, bw, shape, m)
    if not options:
        field = "chunk_m" if m.chunk_m is not None else "tile_m"
        raise MappingError(f"the tiles of op shape M={shape.m} K={shape.kb} blocks N={shape.n} do not fit the "
                           f"global buffer ({_usable_bits(arch.memory.glb) / 8:g} usable bytes)",
                           f"mapping.{field}", "use smaller tiles or enlarge memory.glb.size_bytes")
    return min(options, key=lambda t: _key(arch, bw, shape, t))


def static_weight_bits(arch: Arch, op: GemmOp) -> int | None:
    """Bits of all of ``op``'s weights (data + metadata) in a packed GLB, when the mapper may reserve them exactly:
    output-stationary (the dataflow with a whole-W residency), static weights with one map for every repeat, a
    packed GLB, a mixed datapath (elsewhere every block is slot-wide) and a mixed-format weight; ``None`` otherwise
    (worst case)."""
    pe, storage = arch.pe_array, arch.storage
    if (pe.dataflow != "output_stationary" or not op.static_weight or len(op.weight_map.shape) != 2
            or storage.layout.glb != "packed" or set(pe.datapath_precisions) != {"fp4", "fp8"}
            or op.weight_format.uniform):
        return None
    known = None if isinstance(op.weight_map, np.ndarray) else getattr(op.weight_map, "fp8_blocks", None)
    fp8 = int(known) if isinstance(known, (int, np.integer)) else int(np.count_nonzero(materialize_map(op.weight_map)))
    blocks = int(np.prod(op.weight_map.shape))
    return int(level_bits(fp8, blocks, storage, pe.vector_width, "packed", pe.datapath_precisions)
               + blocks * storage.metadata_bits_per_block)


def plan_op(arch: Arch, op: GemmOp, mapping: Mapping | None = None) -> Tiling:
    """The tiling of ``op``: the explicit ``mapping`` checked, or the mapper's choice (on systolic_ws: its folds,
    :func:`fgmpsim.sim.hw.systolic.fold_tiling`)."""
    if arch.pe_array.systolic:
        from fgmpsim.sim.hw.systolic import fold_tiling  # systolic imports this module's records

        return fold_tiling(arch, op, mapping)
    shape = OpShape.of(op, arch.pe_array.vector_width, static_weight_bits(arch, op))
    return choose_tiling(arch, shape) if mapping is None else check_mapping(arch, shape, mapping)


def glb_step_bits(arch: Arch, tiling: Tiling) -> int:
    """Worst-case GLB bits one tile step of ``tiling`` holds (the GLB row of the module docstring's table)."""
    m, shape = tiling.mapping, tiling.shape
    return _glb_need(arch, worst_block_bits(arch), shape, m.tile_m, m.tile_n, m.tile_k_blocks, tiling.chunk_tiles,
                     tiling.x_resident, tiling.w_resident, tiling.ws)
