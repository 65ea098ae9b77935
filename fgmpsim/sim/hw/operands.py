"""One op's operands as the hardware sees them: maps after the datapath's promotion/demotion, and the output format.

This is input semantics shared by every engine (tile, reference, analytic), not a cost model:

* **Storage formats** (:mod:`fgmpsim.trace.formats`, ``pe_array.storage_formats``): every operand's format must be
  one the array accepts (:func:`check_formats`, else :class:`ConfigError`: an INT operand on an FP array, or an FP
  one on an INT8 array, is refused rather than silently converted, since no route between them is exact).
  Its route (:data:`fgmpsim.arch.record.STORAGE_ROUTES`) sets the map the lanes see and the block widths it moves:

  - ``mixed`` (route ``map``): **datapath precisions** are applied before anything else
    (:func:`fgmpsim.energy.storage_precision_map`): an FP8-only array stores and computes every block as FP8
    (all-True maps), an FP4-only array every block as NVFP4 (all-False maps); blocks move at ``storage``'s widths.
    :func:`precision_adjustment` says which happened.
  - a uniform format: every block moves at :func:`fgmpsim.energy.uniform_storage` widths (its elements and its
    group-scale share) and computes in the lanes' 8-bit slot (route ``native`` of ``fp8`` or ``int8``;
    ``cast_fp8``: the cast unit expands each block from the PE buffer into the lane, one ``cast_blocks`` per block
    pair; ``widen``: INT4 sign-extended onto INT8 lanes) or as FP4 (``native`` FP4).
    Its block may not be wider than the widest block the datapath holds (the buffers are sized for that).
* **Output format** of an op (``M * N * repeat`` elements). Blocks run along the consumer's K axis. For every
  consumer operand but ``attn_pv``'s V that axis is this op's output channels (N), so each of the ``repeat * M``
  output rows pads to whole blocks: ``repeat * M * ceil(N / vector_width)`` blocks. V's blocks run along tokens,
  which decode appends one per step, so they are counted by elements, amortized: ``ceil(elements /
  vector_width)`` (also the count for an op without a consumer). Blocks set storage, traffic and AQU energy; AQU
  *time* streams the real elements at ``blocks_per_cycle * vector_width`` per cycle (padding costs no cycles).

  - no consumer: written unquantized, ``storage.unquantized_output_bits`` per element (BF16), no metadata, no AQU;
  - consumer and AQU enabled: the AQU quantizes every output block; the FP8 share is the consumer operand's
    (datapath-adjusted) FP8 fraction scaled to the output size, ``fp8_blocks = round(blocks * fp8 / size)``
    (half rounds up); each block carries ``metadata_bits_per_block``;
  - consumer and AQU disabled: every block in the datapath's highest precision (FP8, or NVFP4 on an FP4-only
    array), each with ``metadata_bits_per_block`` (0 on the shipped baselines).
  - a consumer operand in a uniform format: its blocks are written at that format's widths (the FP8 split above no
    longer changes the bits).

  For every block it quantizes the AQU reads the Fisher sensitivity of each of the block's ``vector_width``
  channels from its table: ``aqu_sensitivity_read_bits = aqu_blocks * vector_width *
  sensitivity_bits_per_channel`` (no reuse across tokens is assumed: an upper estimate of that small cost).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fgmpsim.arch.record import CAST_FP8, WIDEN, Arch, BlockStorage
from fgmpsim.energy import block_bits, level_bits, storage_precision_map, uniform_storage
from fgmpsim.errors import ConfigError
from fgmpsim.precision import WIDE_PRECISIONS
from fgmpsim.trace.formats import OperandFormat
from fgmpsim.trace.record import GemmOp, PrecisionMap, Trace, materialize_map


@dataclass(frozen=True)
class OutputFormat:
    """How an op's output is written: ``blocks`` of ``vector_width`` outputs (``fp8_blocks`` of them FP8);
    ``data_bits`` (values + block scales) and ``metadata_bits`` of the whole output over all repeats;
    ``aqu_blocks`` blocks pass through the AQU (0 when it does not quantize); ``slotted_data_bits``: the data bits
    at a slotted level (= ``data_bits`` for BF16 outputs)."""

    blocks: int
    fp8_blocks: int
    data_bits: int
    metadata_bits: int
    aqu_blocks: int
    slotted_data_bits: int

    def data_bits_at(self, layout: str) -> int:
        """Data bits of the whole output at a level with ``layout``."""
        return self.slotted_data_bits if layout == "slotted" else self.data_bits


@dataclass(frozen=True, eq=False)
class Operands:
    """An op's datapath-adjusted maps, each 3-D: ``w`` ``[Rw, N, KB]`` and ``a`` ``[Ra, M, KB]`` where ``Rw``/``Ra``
    is 1 (one map shared by every repeat) or ``repeat``; ``vw`` elements per block; ``w_fp8_blocks`` and
    ``a_fp8_blocks``: the FP8 blocks of ``w`` and ``a``; ``w_storage``/``a_storage``: the block widths each moves
    with; ``routes``: (weight, act) route to the datapath."""

    op: GemmOp
    w: np.ndarray
    a: np.ndarray
    vw: int
    out: OutputFormat
    w_fp8_blocks: int
    a_fp8_blocks: int
    w_storage: BlockStorage
    a_storage: BlockStorage
    routes: tuple[str, str]
    source: tuple = ()
    """``()`` for an op's own maps; for a band of a causal op (:mod:`fgmpsim.sim.hw.causal`) what its maps are cut
    from: ``(weight map, act map, weight cut, act cut)`` of that op. With the op's formats and routes it identifies
    the maps across simulations (:func:`fgmpsim.sim.vector.map_counts.op_counts`)."""
    w_groups: Callable[[int, int], np.ndarray | None] | None = None
    """For a band of a causal op: ``(tile_n, lanes_per_pe) ->`` the FP8 blocks of ``w`` per PE group
    (:func:`fgmpsim.sim.vector.map_counts.pe_group_counts`) cut from its op's, or ``None`` where they cannot be
    (:meth:`fgmpsim.sim.hw.causal._CutMap.pe_groups`)."""

    @property
    def kb(self) -> int:
        """Blocks along K."""
        return self.w.shape[2]


def precision_adjustment(arch: Arch) -> str:
    """What the datapath does to the trace's maps and formats, in words."""
    dp = arch.pe_array.datapath_precisions
    if arch.pe_array.integer:
        text = "INT8 datapath: uniform INT operands only"
    elif "fp4" not in dp:
        text = "every NVFP4 block promoted to FP8 (FP8-only datapath)"
    elif "fp8" not in dp:
        text = "every FP8 block demoted to NVFP4 (FP4-only datapath)"
    else:
        text = "none (mixed FP4/FP8 datapath: maps used as traced)"
    said = {CAST_FP8: "cast to FP8 at the lane input", WIDEN: "sign-extended to INT8 at the lane input"}
    uniform = [f"{fmt} {said.get(route, 'computed as stored')}"
               for fmt, route in arch.pe_array.storage_formats if route != "map"]
    return "; ".join([text, *uniform])


def route_of(fmt: OperandFormat, arch: Arch) -> str | None:
    """The route of an operand stored in ``fmt`` on ``arch`` (``None``: not accepted)."""
    return arch.pe_array.route(fmt.name)


def operand_storage(fmt: OperandFormat, arch: Arch) -> BlockStorage:
    """The block widths an operand in ``fmt`` moves with on ``arch``."""
    return uniform_storage(fmt, arch.storage, arch.pe_array.vector_width) if fmt.uniform else arch.storage


def computes_wide(fmt: OperandFormat, arch: Arch) -> bool:
    """Whether the lanes compute a uniform operand in ``fmt`` in their 8-bit slot (native FP8 or INT8, an FP4 cast
    to FP8, an INT4 sign-extended to INT8) rather than as FP4."""
    return route_of(fmt, arch) in (CAST_FP8, WIDEN) or fmt.spec.element in WIDE_PRECISIONS


def check_formats(trace: Trace, arch: Arch) -> None:
    """:class:`ConfigError` for the first operand whose format ``arch`` does not accept, or whose blocks are wider
    than the widest block its buffers are sized for."""
    pe = arch.pe_array
    accepted = ", ".join(f"{fmt} ({route})" for fmt, route in pe.storage_formats) or "none"
    widest = max(int(block_bits(p in WIDE_PRECISIONS, arch.storage, pe.vector_width)) for p in pe.datapath_precisions)
    for op in trace.ops:
        for operand, fmt in (("weight", op.weight_format), ("act", op.act_format)):
            if route_of(fmt, arch) is None:
                why, fix = _refusal(fmt, arch)
                raise ConfigError(f"op {op.name!r}: arch {arch.name} does not accept {operand} format "
                                  f"{fmt.label()} ({why}; accepted: {accepted})", "pe_array.storage_formats", fix)
            bits = int(block_bits(True, operand_storage(fmt, arch), pe.vector_width))
            if fmt.uniform and bits > widest:
                raise ConfigError(f"op {op.name!r}: {operand} blocks in {fmt.label()} take {bits} bits, more than "
                                  f"the {widest}-bit blocks arch {arch.name}'s buffers are sized for",
                                  f"ops.{op.name}.{operand}_format.group_size", "use a larger group size")


def _refusal(fmt: OperandFormat, arch: Arch) -> tuple[str, str]:
    """(why, fix) for an operand format ``arch`` does not list: the other datapath family needs another arch; a
    format of its own family needs the route that fits it."""
    pe = arch.pe_array
    element = fmt.spec.element if fmt.uniform else None
    if (fmt.uniform and fmt.spec.integer) != pe.integer:
        if pe.integer:
            other = "zqfp_w4a8 (fp8, fp4_pow2)" if fmt.uniform else "fgmp, fp8_baseline or nvfp4 (FP8/NVFP4 maps)"
            return "its INT8 lanes have no exact route for FP elements", f"simulate it on {other}"
        return ("it has no integer datapath and no exact route of INT elements into FP lanes",
                "simulate it on an INT8 arch (arch_configs/int_w4a8.yaml)")
    if not fmt.uniform:
        route = "map"
    elif element == "int4":
        route = "widen"
    elif fmt.name == "fp4_pow2" and "fp8" in pe.datapath_precisions:
        route = "cast_fp8"
    elif element in pe.datapath_precisions:
        route = "native"
    else:
        return f"it lists no route for it and has no {element} lanes", (
            f"simulate it on an arch with {element} in pe_array.datapath_precisions and '{fmt.name}: native'")
    return "it lists no route for it", f"add '{fmt.name}: {route}' to pe_array.storage_formats"


def _bits_of(pmap: PrecisionMap) -> np.ndarray:
    """The map's bits; an array is checked by type first (the protocol check of a lazy map is slow)."""
    return pmap if isinstance(pmap, np.ndarray) else materialize_map(pmap)


def as_3d(pmap: np.ndarray) -> np.ndarray:
    """A map with its repeat axis: ``[R, rows, KB]`` (a 2-D map, shared by every repeat, gets ``R = 1``)."""
    return pmap[None] if pmap.ndim == 2 else pmap


class OperandCache:
    """Materializes maps for one simulation. It keeps the last few materialized maps (q/k/v share one input map)
    and each map's FP8 count (a consumer's map is needed for the producer's output split and again for the
    consumer); a lazy map with an exact ``fp8_blocks`` count is not materialized for its count. Never more than
    :attr:`KEEP` maps are held, so full-size traces stream. A map in one precision throughout (all FP8 or all
    NVFP4 after the datapath's adjustment, e.g. every map on an FP8-only array) is a constant broadcast view:
    no bits are generated, unpacked or counted for it."""

    KEEP = 3

    def __init__(self, trace: Trace, arch: Arch) -> None:
        self.trace = trace
        self.arch = arch
        self._by_name = {op.name: op for op in trace.ops}
        self._fp8_counts: dict[int, tuple[int, int]] = {}
        self._recent: OrderedDict[int, tuple[PrecisionMap, np.ndarray]] = OrderedDict()

    def adjusted(self, pmap: PrecisionMap, fmt: OperandFormat) -> np.ndarray:
        """A map (array or lazy) of an operand in ``fmt`` as the lanes see it, as ``bool``: a uniform format's is
        constant (:func:`computes_wide`), a mixed one materialized and datapath-adjusted."""
        if fmt.uniform:
            return np.broadcast_to(np.bool_(computes_wide(fmt, self.arch)), tuple(pmap.shape))
        key = id(pmap)
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key][1]
        fp8, size = self._fp8_count(pmap, fmt)
        if fp8 in (0, size):
            array = np.broadcast_to(np.bool_(fp8 == size), tuple(pmap.shape))
        else:
            array = storage_precision_map(_bits_of(pmap), self.arch.pe_array.datapath_precisions)
        self._recent[key] = (pmap, array)  # the map object is held so its id stays unique
        if len(self._recent) > self.KEEP:
            self._recent.popitem(last=False)
        return array

    def _fp8_count(self, pmap: PrecisionMap, fmt: OperandFormat) -> tuple[int, int]:
        if fmt.uniform:
            size = int(np.prod(pmap.shape))
            return (size if computes_wide(fmt, self.arch) else 0), size
        key = id(pmap)
        if key not in self._fp8_counts:
            size = int(np.prod(pmap.shape))
            dp = self.arch.pe_array.datapath_precisions
            known = None if isinstance(pmap, np.ndarray) else getattr(pmap, "fp8_blocks", None)
            if "fp4" not in dp or "fp8" not in dp:
                count = size if "fp4" not in dp else 0
            elif isinstance(known, (int, np.integer)):
                count = int(known)
            else:
                count = int(np.count_nonzero(_bits_of(pmap)))
            self._fp8_counts[key] = (count, size)
        return self._fp8_counts[key]

    def output_format(self, op: GemmOp, consumer: GemmOp | None = None,
                      share: tuple[int, int] | None = None) -> OutputFormat:
        """The output format of ``op`` (see the module docstring). A band of a causal op (:mod:`fgmpsim.sim.hw.causal`)
        gives the ``consumer`` op it writes for and, when it writes only a band of that op's operand, ``share``: the
        FP8 blocks and blocks of that band as the lanes see it."""
        arch = self.arch
        storage, vw = arch.storage, arch.pe_array.vector_width
        elements = op.m * op.n * op.repeat
        blocks = -(-elements // vw)
        if op.consumer is None:
            bf16 = elements * storage.unquantized_output_bits
            return OutputFormat(blocks, 0, bf16, 0, 0, bf16)
        consumer = consumer or self._by_name[op.consumer]
        if op.consumer_operand == "act" or consumer.kind != "attn_pv":
            blocks = op.repeat * op.m * -(-op.n // vw)
        act = op.consumer_operand == "act"
        fmt = consumer.act_format if act else consumer.weight_format
        if arch.aqu.enabled:
            fp8, size = share or self._fp8_count(consumer.act_map if act else consumer.weight_map, fmt)
            fp8_blocks = (2 * blocks * fp8 + size) // (2 * size)
        else:
            fp8_blocks = blocks if set(WIDE_PRECISIONS) & set(arch.pe_array.datapath_precisions) else 0
        dp = arch.pe_array.datapath_precisions
        data, slotted = (int(level_bits(fp8_blocks, blocks, operand_storage(fmt, arch), vw, layout, dp))
                         for layout in ("packed", "slotted"))
        return OutputFormat(blocks, fp8_blocks, data, blocks * storage.metadata_bits_per_block,
                            blocks if arch.aqu.enabled else 0, slotted)

    def operands(self, op: GemmOp, out: OutputFormat | None = None) -> Operands:
        """The op's adjusted maps and output format (``out``, when already computed)."""
        wf, af, arch = op.weight_format, op.act_format, self.arch
        return Operands(op, as_3d(self.adjusted(op.weight_map, wf)), as_3d(self.adjusted(op.act_map, af)),
                        arch.pe_array.vector_width, out or self.output_format(op),
                        self._fp8_count(op.weight_map, wf)[0], self._fp8_count(op.act_map, af)[0],
                        operand_storage(wf, arch), operand_storage(af, arch), (route_of(wf, arch), route_of(af, arch)))
