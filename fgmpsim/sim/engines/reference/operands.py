"""What the reference engine reads of an op, derived from the trace and arch records alone.

Written from the spec (the docstrings of :mod:`fgmpsim.sim.hw.operands` and :mod:`fgmpsim.arch.record`, and
docs/energy_model.md), sharing no code with the tile engine:

* **Blocks along K**: ``KB = ceil(K / vector_width)``. K need not be a multiple of the block: the last block is
  zero-padded and is stored, moved and computed as a whole block, so an op has ``M * N * KB`` block pairs per
  repeat and ``macs_<pair>`` counts ``vector_width`` MACs for each.
* **Datapath precision** of an operand in the ``mixed`` format: a datapath without ``fp4`` stores and computes
  every block as FP8, one without ``fp8`` every block as NVFP4; a mixed datapath keeps the traced map.
* An operand in a **uniform format** (``GemmOp.weight_format``/``act_format``; the array lists a route for it in
  ``pe_array.storage_formats``): every block is computed in the lanes' 8-bit slot when the route is ``cast_fp8``
  or ``widen`` or the elements are FP8 or INT8, as FP4 otherwise, whatever its map says; it is stored with ``element_bits`` per element and its group scale
  shared by the group's blocks, ``ceil(scale_bits * vector_width / group_size)`` bits per block (no block share for
  one scale per row).
* **Block bits** (values + block scale, metadata apart): NVFP4 ``vector_width * fp4_value_bits + fp4_scale_bits``,
  FP8 ``vector_width * fp8_value_bits + fp8_scale_bits`` (a uniform format: its own, both alike); every block also
  carries ``metadata_bits_per_block``.
* **Output format**, over all ``repeat * M * N`` outputs: without a consumer, ``unquantized_output_bits`` per
  element, ``ceil(elements / vector_width)`` blocks, no metadata, nothing through the AQU. With a consumer the
  output is written in blocks along the consumer's K axis: ``repeat * M * ceil(N / vector_width)`` blocks (each
  output row padded to whole blocks), except when it becomes the V operand (``weight``) of an ``attn_pv`` op,
  whose blocks run along tokens: ``ceil(elements / vector_width)``. With the AQU enabled its FP8 blocks are the
  consumer operand's (datapath-adjusted) FP8 share, rounded to the nearest block, a half rounding up:
  ``floor((2 * blocks * fp8 + size) / (2 * size))`` with ``fp8`` of ``size`` blocks of that map; without the AQU
  every block is in the datapath's highest precision. Each block carries its metadata bits; the AQU quantizes
  every block when enabled.
* **Storage layout** (``storage.layout``, docs/microarchitecture.md): a ``packed`` level stores each block in its
  own bits; a ``slotted`` level stores every block in a slot as wide as the widest block the datapath stores (the
  largest block bits over ``datapath_precisions``). A quantized output at a slotted level is ``blocks x slot``
  bits; a BF16 output is the same at every level.
  The output of an op whose consumer operand is in a uniform format is written at that format's block bits.
* **Weight footprint** of a static weight: its stored blocks' bits in DRAM's layout, their metadata, and one
  ``tensor_scale_bits`` per tensor (a 2-D map is one tensor shared by every repeat, a 3-D map one per repeat). In a
  uniform format, per tensor: every stored element at ``element_bits``, each group scale once (``rows * K /
  group_size`` of them, ``rows`` with one per row), M2's FP32 channel scale per row, the LoRC factors (``rank * (rows
  + K)`` 8-bit elements and an FP32 scale for each of the ``rows + rank`` factor rows), metadata per block.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.trace.formats import OperandFormat
from fgmpsim.trace.record import GemmOp, PrecisionMap, Trace, materialize_map


def blocks_along_k(k: int, vector_width: int) -> int:
    """``ceil(K / vector_width)``: the last block may be partial (zero-padded)."""
    return -(-k // vector_width)


def block_bits(arch: Arch, fp8: int, fmt: OperandFormat) -> int:
    """Bits of one stored block of an operand in ``fmt``, values + block scale (``fp8`` 1 = FP8, 0 = NVFP4; a
    uniform format's blocks are all alike)."""
    st, vw = arch.storage, arch.pe_array.vector_width
    if fmt.uniform:
        per_block = vw * fmt.spec.scale_bits
        return vw * fmt.spec.element_bits + (-(-per_block // fmt.group_size) if fmt.group_size else 0)
    return vw * st.fp8_value_bits + st.fp8_scale_bits if fp8 else vw * st.fp4_value_bits + st.fp4_scale_bits


def level_block_bits(arch: Arch, level: str, fmt: OperandFormat) -> tuple[int, int]:
    """(NVFP4, FP8) bits of one block of an operand in ``fmt`` stored at ``level`` (``dram``, ``glb`` or
    ``pe_buffers``), by its layout."""
    if getattr(arch.storage.layout, level) == "slotted":
        slot = max(block_bits(arch, int(p in ("fp8", "int8")), fmt) for p in arch.pe_array.datapath_precisions)
        return slot, slot
    return block_bits(arch, 0, fmt), block_bits(arch, 1, fmt)


def stored_map(pmap: PrecisionMap, arch: Arch, fmt: OperandFormat) -> list[list[list[int]]]:
    """The map of an operand in ``fmt`` as the lanes compute it, ``[R][rows][KB]`` of 0/1 (``R`` = 1 for a 2-D
    map)."""
    dp = arch.pe_array.datapath_precisions
    bits = materialize_map(pmap).tolist()
    if len(tuple(pmap.shape)) == 2:
        bits = [bits]
    if fmt.uniform:
        force = int(dict(arch.pe_array.storage_formats)[fmt.name] in ("cast_fp8", "widen")
                    or fmt.spec.element in ("fp8", "int8"))
    else:
        force = 1 if "fp4" not in dp else 0 if "fp8" not in dp else None
    return [[[int(b) if force is None else force for b in row] for row in rep] for rep in bits]


def fp8_share(blocks: list[list[list[int]]]) -> tuple[int, int]:
    """(FP8 blocks, blocks) of a stored map."""
    return sum(b for rep in blocks for row in rep for b in row), sum(len(row) for rep in blocks for row in rep)


@dataclass(frozen=True)
class Output:
    """An op's output over all repeats: ``blocks`` (``fp8_blocks`` FP8), ``data_bits`` (packed), ``metadata_bits``,
    the blocks the AQU quantizes and ``slotted_bits``, its data bits at a slotted level."""

    blocks: int
    fp8_blocks: int
    data_bits: int
    metadata_bits: int
    aqu_blocks: int
    slotted_bits: int

    def bits_at(self, arch: Arch, level: str) -> int:
        """Data bits of the whole output at ``level`` (``dram`` or ``glb``), by its layout."""
        return self.slotted_bits if getattr(arch.storage.layout, level) == "slotted" else self.data_bits


def output_of(trace: Trace, op: GemmOp, arch: Arch) -> Output:
    """The output format of ``op`` (module docstring)."""
    vw, st = arch.pe_array.vector_width, arch.storage
    elements = op.repeat * op.m * op.n
    if op.consumer is None:
        bf16 = elements * st.unquantized_output_bits
        return Output(-(-elements // vw), 0, bf16, 0, 0, bf16)
    consumer = trace.op(op.consumer)
    becomes_v = op.consumer_operand == "weight" and consumer.kind == "attn_pv"
    blocks = -(-elements // vw) if becomes_v else op.repeat * op.m * -(-op.n // vw)
    as_weight = op.consumer_operand == "weight"
    fmt = consumer.weight_format if as_weight else consumer.act_format
    if arch.aqu.enabled:
        fp8, size = fp8_share(stored_map(consumer.weight_map if as_weight else consumer.act_map, arch, fmt))
        fp8_blocks = (2 * blocks * fp8 + size) // (2 * size)
    else:
        fp8_blocks = blocks if {"fp8", "int8"} & set(arch.pe_array.datapath_precisions) else 0
    data = fp8_blocks * block_bits(arch, 1, fmt) + (blocks - fp8_blocks) * block_bits(arch, 0, fmt)
    slot = max(block_bits(arch, int(p in ("fp8", "int8")), fmt) for p in arch.pe_array.datapath_precisions)
    return Output(blocks, fp8_blocks, data, blocks * st.metadata_bits_per_block,
                  blocks if arch.aqu.enabled else 0, blocks * slot)


def footprint_bits(weights: list[list[list[int]]], arch: Arch, op: GemmOp) -> int:
    """Stored bits of ``op``'s weight-side tensor (module docstring), from its stored map."""
    fp8, blocks = fp8_share(weights)
    meta = blocks * arch.storage.metadata_bits_per_block
    fmt = op.weight_format
    if fmt.uniform:
        rows = len(weights[0])
        scales = rows * (op.k // (fmt.group_size or op.k)) * fmt.spec.scale_bits + (32 * rows if fmt.channel_scale
                                                                                     else 0)
        r = fmt.lorc_rank
        lorc = r * (rows + op.k) * 8 + (rows + r) * 32 if r else 0
        return blocks * arch.pe_array.vector_width * fmt.spec.element_bits + meta + len(weights) * (scales + lorc)
    fp4_bits, fp8_bits = level_block_bits(arch, "dram", fmt)
    return fp8 * fp8_bits + (blocks - fp8) * fp4_bits + meta + len(weights) * arch.storage.tensor_scale_bits
