"""The Arch record: a validated, typed accelerator description.

Built once from YAML by :func:`fgmpsim.arch.load_arch` (which does all validation); the simulator and the energy
model read these plain frozen records and never re-check them.

Microarchitecture modeled (FGMP paper, Sec. 5; Simba-style PE array):

* ``pes`` processing elements, each with ``lanes_per_pe`` vector-MAC lanes.
* A lane computes the dot product of one weight block and one activation block (``vector_width`` elements each,
  ``vector_width`` = the quantization block size) in ``cycles_per_block_pair[mode]`` cycles, where mode is the
  weight x activation precision pair (``fp4xfp4``, ``fp4xfp8``, ``fp8xfp4``, ``fp8xfp8``; ``int8xint8`` on an
  INT8 array), then scales and accumulates the partial sum in FP32 (an INT8 lane accumulates a scale group's
  sums as integers and rescales the group once in FP32).
* Lanes run independently inside a tile and synchronize at tile boundaries (the slowest lane sets the tile time).

``dataflow: systolic_ws`` is a different array: ``rows x cols`` scalar MACs, weight stationary, one datapath
precision (:mod:`fgmpsim.sim.hw.systolic`); ``pes``, ``lanes_per_pe``, ``vector_width`` and
``cycles_per_block_pair`` are then not used (its blocks are the trace's).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from fgmpsim.precision import PRECISION_PAIRS, is_integer

Dataflow = Literal["weight_stationary", "output_stationary", "systolic_ws"]
DATAFLOWS: tuple[str, ...] = ("weight_stationary", "output_stationary", "systolic_ws")
SYSTOLIC = "systolic_ws"


CAST_FP8 = "cast_fp8"
WIDEN = "widen"
STORAGE_ROUTES: tuple[str, ...] = ("map", "native", CAST_FP8, WIDEN)
"""How a stored operand reaches the lanes: ``map`` (``mixed`` only): each block of the FP8/NVFP4 map as the datapath
adjusts it (an unsupported precision stored and computed in the supported one); ``native``: a uniform format whose
elements the datapath computes as they are (``fp8`` on FP8 lanes, ``fp4_pow2``/``fp4_fp32`` on FP4 lanes, the group
scale applied by the lane's scale-accumulate); ``cast_fp8`` (``fp4_pow2`` only): stored as FP4, each block expanded
to E4M3 by a cast unit on its way from the PE buffer into the lane (exact: ``E2M1 x 2^e`` is an E4M3 value for
``e`` in [-8, 6]) and computed on FP8 lanes; ``widen`` (``int4`` only): stored as INT4, sign-extended to INT8 at
the lane input (exact for every code, wiring only: no energy or area of its own) and computed on INT8 lanes."""


def _hash_once(record: object) -> int:
    """The fields' hash of a frozen record, computed once per object: an arch and its energy table key the
    simulator's caches on every op of a run, and hashing the whole record each time cost ~10% of a small op."""
    cached = record.__dict__.get("_hash")
    if cached is None:
        cached = hash(tuple(getattr(record, f.name) for f in fields(record)))
        object.__setattr__(record, "_hash", cached)
    return cached


def _fields_state(record: object) -> dict:
    """The fields without the cached hash: string hashes differ between processes, so a pickled record (sent to a
    sweep worker) hashes itself again where it lands."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True)
class ModeCycles:
    """Cycles one lane needs for one block pair, per weight x activation precision pair: the four FP pairs on a
    floating-point datapath, ``int8xint8`` on an INT8 one (the loader requires the datapath's own; ``None``: not
    given, the datapath has no such mode)."""

    fp4xfp4: int | None = None
    fp4xfp8: int | None = None
    fp8xfp4: int | None = None
    fp8xfp8: int | None = None
    int8xint8: int | None = None

    def as_table(self, integer: bool = False) -> tuple[tuple[int, int], tuple[int, int]]:
        """``table[w_wide][a_wide]`` in cycles; ``integer``: on an INT8 datapath, where every slot is its one
        mode (:func:`fgmpsim.precision.slot_pairs`)."""
        if integer:
            c = self.int8xint8
            return ((c, c), (c, c))  # type: ignore[return-value]
        return ((self.fp4xfp4, self.fp4xfp8), (self.fp8xfp4, self.fp8xfp8))  # type: ignore[return-value]


@dataclass(frozen=True)
class PEArray:
    """The compute array. ``datapath_precisions`` lists what the MAC datapath supports ("fp4", "fp8", or "int8"
    alone): blocks in an unsupported precision are stored and computed in the supported one (an FP8-only array
    promotes every NVFP4 block to FP8; an FP4-only array demotes FP8 blocks to NVFP4). ``("int8",)`` is an integer
    array: INT8 x INT8 lanes that take uniform INT operands only (``storage_formats``; mixed FP8/NVFP4 maps have no
    exact route into it).

    Inside each lane (:mod:`fgmpsim.sim.hw.collectors`): a weight collector of ``weight_collector_blocks`` weight
    blocks (0 = none: operands come straight from the weight buffer) and a partial-sum collector of
    ``psum_collector_entries`` partial sums (1 = the lane's accumulator register only); ``pipeline_depth`` VMAC
    stages, so a tile's compute lasts its slowest lane's work plus ``pipeline_depth - 1`` fill/drain cycles;
    ``lane_fifo_depth`` block pairs in each lane's FIFO behind the PE's activation broadcast (``None`` = unbounded:
    lanes skew freely inside a tile; :mod:`fgmpsim.sim.hw.skew`)."""

    pes: int
    lanes_per_pe: int
    vector_width: int
    cycles_per_block_pair: ModeCycles
    dataflow: str
    datapath_precisions: tuple[str, ...] = ("fp4", "fp8")
    weight_collector_blocks: int = 0
    psum_collector_entries: int = 1
    pipeline_depth: int = 1
    lane_fifo_depth: int | None = None
    rows: int | None = None
    cols: int | None = None
    storage_formats: tuple[tuple[str, str], ...] = (("mixed", "map"),)
    """(trace operand format, route to the datapath) for every storage format the array accepts, sorted by format
    (:data:`STORAGE_ROUTES`; formats: :mod:`fgmpsim.trace.formats`). An operand in a format not listed is refused."""

    @property
    def integer(self) -> bool:
        """An INT8 datapath (:func:`fgmpsim.precision.is_integer`)."""
        return is_integer(self.datapath_precisions)

    @property
    def mode_table(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Cycles per block pair, ``table[w_wide][a_wide]``, for this datapath's modes."""
        return self.cycles_per_block_pair.as_table(self.integer)

    def route(self, fmt: str) -> str | None:
        """How operands stored in format ``fmt`` reach the lanes (``None``: the array does not accept it)."""
        return dict(self.storage_formats).get(fmt)

    @property
    def casts(self) -> bool:
        """Some accepted format is expanded by a cast unit in front of the lanes."""
        return any(route == CAST_FP8 for _, route in self.storage_formats)

    @property
    def lanes(self) -> int:
        """Total lanes in the array."""
        return self.pes * self.lanes_per_pe

    @property
    def systolic(self) -> bool:
        """A ``systolic_ws`` array of ``rows`` (K) x ``cols`` (N) scalar MACs."""
        return self.dataflow == SYSTOLIC


@dataclass(frozen=True)
class AQU:
    """Activation quantization unit on the array's output stream.

    It quantizes ``blocks_per_cycle`` output blocks per cycle after a pipeline ``latency_cycles``, choosing each
    block's precision from its Fisher-weighted perturbation using ``sensitivity_bits_per_channel``-bit per-channel
    sensitivities held in a local table of ``sensitivity_channels`` entries (it sizes the table's area only).
    """

    enabled: bool
    blocks_per_cycle: int
    latency_cycles: int
    sensitivity_bits_per_channel: int
    sensitivity_channels: int = 0

    @property
    def sensitivity_table_bytes(self) -> int:
        """Bytes of the per-channel sensitivity table (0 when the AQU is disabled)."""
        return -(-self.sensitivity_channels * self.sensitivity_bits_per_channel // 8) if self.enabled else 0


@dataclass(frozen=True)
class MemoryLevel:
    """One level of the hierarchy. ``size_bytes`` is ``None`` for DRAM (unbounded). Per-PE buffers give the size of
    one PE's buffer. With ``double_buffered`` half of ``size_bytes`` is usable for a tile. ``keep_outputs`` (GLB
    only): an op's output stays in the GLB for the next op when it fits (:mod:`fgmpsim.sim.hw.glb_residency`)."""

    name: str
    size_bytes: int | None
    read_bits_per_cycle: int
    write_bits_per_cycle: int
    double_buffered: bool
    keep_outputs: bool = False

    @property
    def usable_tile_bytes(self) -> int | None:
        """Bytes available to one tile (half the buffer when double buffered); ``None`` if unbounded."""
        if self.size_bytes is None:
            return None
        return self.size_bytes // 2 if self.double_buffered else self.size_bytes


@dataclass(frozen=True)
class Memory:
    """DRAM, the global buffer (GLB) and the per-PE weight, input and accumulation buffers. ``ideal`` (systolic_ws
    only): transfers take no cycles (no memory stalls), as SCALE-Sim's default ``InterfaceBandwidth: CALC``; the
    bits moved are still counted and priced. ``prefetch_next_weights``: the next op's first weight tile is fetched
    from DRAM during the current op's tail when the GLB has room (:mod:`fgmpsim.sim.hw.prefetch`)."""

    dram: MemoryLevel
    glb: MemoryLevel
    weight_buffer: MemoryLevel
    input_buffer: MemoryLevel
    accum_buffer: MemoryLevel
    ideal: bool = False
    prefetch_next_weights: bool = False

    def levels(self) -> tuple[MemoryLevel, ...]:
        return (self.dram, self.glb, self.weight_buffer, self.input_buffer, self.accum_buffer)


LAYOUTS: tuple[str, ...] = ("packed", "slotted")
LAYOUT_LEVELS: tuple[str, ...] = ("dram", "glb", "pe_buffers")


@dataclass(frozen=True)
class StorageLayout:
    """How blocks of two sizes (NVFP4 72 bits, FP8 128 bits) are laid out at each level: ``packed`` (back to back,
    each block its own length, its precision flag in a side array; an alignment network moves a block between the
    packed array and a fixed-width port) or ``slotted`` (every block in a slot as wide as the widest block the
    datapath stores; an NVFP4 block leaves the rest of its slot unused). ``pe_buffers``: the weight and input
    buffers of every PE (partial sums are fixed-width words at every level)."""

    dram: str = "packed"
    glb: str = "packed"
    pe_buffers: str = "packed"

    def at(self, level: str) -> str:
        """The layout of memory level ``level`` (``weight_buffer`` and ``input_buffer`` are ``pe_buffers``)."""
        return self.pe_buffers if level in ("weight_buffer", "input_buffer", "pe") else getattr(self, level)


@dataclass(frozen=True)
class BlockStorage:
    """How one block is stored and moved, in bits. An NVFP4 block costs ``vector_width * fp4_value_bits +
    fp4_scale_bits``; an FP8 block ``vector_width * fp8_value_bits + fp8_scale_bits``; every block adds
    ``metadata_bits_per_block`` (its precision flag); every tensor adds ``tensor_scale_bits``. Partial sums are
    ``psum_bits`` wide; an op output with no quantized consumer is written with ``unquantized_output_bits`` per
    element (BF16)."""

    fp4_value_bits: int
    fp8_value_bits: int
    fp4_scale_bits: int
    fp8_scale_bits: int
    metadata_bits_per_block: int
    tensor_scale_bits: int
    psum_bits: int
    unquantized_output_bits: int
    layout: StorageLayout = StorageLayout()


@dataclass(frozen=True)
class EnergyEntry:
    """Energy of one action in pJ, with where the number comes from."""

    pj: float
    source: str


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action. ``entries`` maps action names (see ``fgmpsim.energy.ACTIONS``) to :class:`EnergyEntry`.
    ``leakage_pj_per_cycle`` and ``clock_pj_per_cycle`` are the whole array's static energy per clock cycle,
    derived at load time from the area model and :class:`StaticPower` (0 when static energy is off)."""

    technology_node_nm: int
    entries: tuple[tuple[str, EnergyEntry], ...]
    leakage_pj_per_cycle: float = 0.0
    clock_pj_per_cycle: float = 0.0

    __hash__ = _hash_once
    __getstate__ = _fields_state

    def pj(self, action: str) -> float:
        for name, entry in self.entries:
            if name == action:
                return entry.pj
        raise KeyError(action)

    def as_dict(self) -> dict[str, float]:
        return {name: entry.pj for name, entry in self.entries}

    def priced(self) -> dict[str, float]:
        """:meth:`as_dict` plus the derived static entries ``leakage_cycle`` and ``clock_cycle`` (pJ per cycle)."""
        return {**self.as_dict(), "leakage_cycle": self.leakage_pj_per_cycle, "clock_cycle": self.clock_pj_per_cycle}


@dataclass(frozen=True)
class AreaEntry:
    """Silicon area of one unit (a KiB of SRAM, a scalar MAC, a lane, a block per cycle of AQU throughput) in mm²,
    with where the number comes from."""

    mm2: float
    source: str


@dataclass(frozen=True)
class AreaTable:
    """mm² per unit at ``technology_node_nm``. ``entries`` maps names (see ``fgmpsim.energy.AREA_ENTRIES``) to
    :class:`AreaEntry`."""

    technology_node_nm: int
    entries: tuple[tuple[str, AreaEntry], ...]

    def as_dict(self) -> dict[str, float]:
        return {name: entry.mm2 for name, entry in self.entries}


@dataclass(frozen=True)
class StaticPower:
    """Leakage and clock power densities (``static:`` in the YAML), applied to the area of every component
    (:func:`fgmpsim.energy.static_power`): SRAM macros leak ``sram_leakage_mw_per_mm2``; logic leaks
    ``logic_leakage_mw_per_mm2`` and its clock tree and flip-flops take ``logic_clock_pj_per_cycle_per_mm2`` every
    cycle (no clock gating). ``sources``: (field, where its number comes from)."""

    enabled: bool
    logic_leakage_mw_per_mm2: float = 0.0
    sram_leakage_mw_per_mm2: float = 0.0
    logic_clock_pj_per_cycle_per_mm2: float = 0.0
    sources: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FixedMapping:
    """Optional tile sizes fixed in the YAML (``None`` = chosen by the mapper). Units: elements (``tile_m``,
    ``tile_n``) and blocks (``tile_k_blocks``)."""

    tile_m: int | None = None
    tile_n: int | None = None
    tile_k_blocks: int | None = None


@dataclass(frozen=True)
class Arch:
    """A whole accelerator. ``name`` is the YAML's ``name``; ``source`` the file it was loaded from."""

    name: str
    clock_hz: float
    pe_array: PEArray
    aqu: AQU
    memory: Memory
    storage: BlockStorage
    energy: EnergyTable
    mapping: FixedMapping = FixedMapping()
    source: str = ""
    area: AreaTable | None = None
    static: StaticPower = StaticPower(enabled=False)

    __hash__ = _hash_once
    __getstate__ = _fields_state

    @property
    def peak_macs_per_cycle(self) -> int:
        """Scalar MACs per cycle with every lane busy in its fastest supported mode (systolic: rows x cols)."""
        if self.pe_array.systolic:
            return self.pe_array.rows * self.pe_array.cols
        fastest = min(min(row) for row in self.pe_array.mode_table)
        return self.pe_array.lanes * self.pe_array.vector_width // fastest

    def describe(self) -> str:
        """One line: name, array size, dataflow, clock, peak throughput."""
        pe = self.pe_array
        if pe.systolic:
            return (f"{self.name}: {pe.rows}x{pe.cols} systolic array, weight stationary, {self.clock_hz / 1e9:g} GHz, "
                    f"peak {self.peak_macs_per_cycle} MAC/cycle, datapath {pe.datapath_precisions[0]}, memory "
                    f"{'ideal (no stalls)' if self.memory.ideal else 'modeled'}")
        return (f"{self.name}: {pe.pes} PEs x {pe.lanes_per_pe} lanes x {pe.vector_width}-wide, {pe.dataflow}, "
                f"{self.clock_hz / 1e9:g} GHz, peak {self.peak_macs_per_cycle} MAC/cycle, "
                f"datapath {'+'.join(pe.datapath_precisions)}, AQU {'on' if self.aqu.enabled else 'off'}")
