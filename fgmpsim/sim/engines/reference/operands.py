"""What the reference engine reads of an op, derived from the trace and arch records alone.

Written from the spec (the docstrings of :mod:`fgmpsim.sim.hw.operands` and :mod:`fgmpsim.arch.record`, and
docs/energy_model.md), sharing no code with the tile engine:

* **Blocks along K**: ``KB = ceil(K / vector_width)``. K need not be a multiple of the block: the last block is
  zero-padded and is stored, moved and computed as a whole block, so an op has ``M * N * KB`` block pairs per
  repeat and ``macs_<pair>`` counts ``vector_width`` MACs for each.
* **Datapath precision**: a datapath without ``fp4`` stores and computes every block as FP8, one without ``fp8``
  every block as NVFP4; a mixed datapath keeps the traced map.
* **Block bits** (values + block scale, metadata apart): NVFP4 ``vector_width * fp4_value_bits + fp4_scale_bits``,
  FP8 ``vector_width * fp8_value_bits + fp8_scale_bits``; every block also carries ``metadata_bits_per_block``.
* **Output format**, over all ``repeat * M * N`` outputs: without a consumer, ``unquantized_output_bits`` per
  element, ``ceil(elements / vector_width)`` blocks, no metadata, nothing through the AQU. With a consumer the
  output is written in blocks along the consumer's K axis: ``repeat * M * ceil(N / vector_width)`` blocks (each
  output row padded to whole blocks), except when it becomes the V operand (``weight``) of an ``attn_pv`` op,
  whose blocks run along tokens: ``ceil(elements / vector_width)``. With the AQU enabled its FP8 blocks are the
  consumer operand's (datapath-adjusted) FP8 share, rounded to the nearest block, a half rounding up:
  ``floor((2 * blocks * fp8 + size) / (2 * size))`` with ``fp8`` of ``size`` blocks of that map; without the AQU
  every block is in the datapath's highest precision. Each block carries its metadata bits; the AQU quantizes
  every block when enabled.
* **Weight footprint** of a static weight: its stored blocks' bits, their metadata, and one
  ``tensor_scale_bits`` per tensor (a 2-D map is one tensor shared by every repeat, a 3-D map one per repeat).
"""

from __future__ import annotations

from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.trace.record import GemmOp, PrecisionMap, Trace, materialize_map


def blocks_along_k(k: int, vector_width: int) -> int:
    """``ceil(K / vector_width)``: the last block may be partial (zero-padded)."""
    return -(-k // vector_width)


def block_bits(arch: Arch, fp8: int) -> int:
    """Bits of one stored block, values + block scale (``fp8`` 1 = FP8, 0 = NVFP4)."""
    st, vw = arch.storage, arch.pe_array.vector_width
    return vw * st.fp8_value_bits + st.fp8_scale_bits if fp8 else vw * st.fp4_value_bits + st.fp4_scale_bits


def stored_map(pmap: PrecisionMap, arch: Arch) -> list[list[list[int]]]:
    """The map as the datapath stores it, ``[R][rows][KB]`` of 0/1 (``R`` = 1 for a 2-D map)."""
    dp = arch.pe_array.datapath_precisions
    bits = materialize_map(pmap).tolist()
    if len(tuple(pmap.shape)) == 2:
        bits = [bits]
    force = 1 if "fp4" not in dp else 0 if "fp8" not in dp else None
    return [[[int(b) if force is None else force for b in row] for row in rep] for rep in bits]


def fp8_share(blocks: list[list[list[int]]]) -> tuple[int, int]:
    """(FP8 blocks, blocks) of a stored map."""
    return sum(b for rep in blocks for row in rep for b in row), sum(len(row) for rep in blocks for row in rep)


@dataclass(frozen=True)
class Output:
    """An op's output over all repeats: ``blocks`` (``fp8_blocks`` FP8), ``data_bits``, ``metadata_bits`` and the
    blocks the AQU quantizes."""

    blocks: int
    fp8_blocks: int
    data_bits: int
    metadata_bits: int
    aqu_blocks: int


def output_of(trace: Trace, op: GemmOp, arch: Arch) -> Output:
    """The output format of ``op`` (module docstring)."""
    vw, st = arch.pe_array.vector_width, arch.storage
    elements = op.repeat * op.m * op.n
    if op.consumer is None:
        return Output(-(-elements // vw), 0, elements * st.unquantized_output_bits, 0, 0)
    consumer = trace.op(op.consumer)
    becomes_v = op.consumer_operand == "weight" and consumer.kind == "attn_pv"
    blocks = -(-elements // vw) if becomes_v else op.repeat * op.m * -(-op.n // vw)
    if arch.aqu.enabled:
        target = consumer.weight_map if op.consumer_operand == "weight" else consumer.act_map
        fp8, size = fp8_share(stored_map(target, arch))
        fp8_blocks = (2 * blocks * fp8 + size) // (2 * size)
    else:
        fp8_blocks = blocks if "fp8" in arch.pe_array.datapath_precisions else 0
    data = fp8_blocks * block_bits(arch, 1) + (blocks - fp8_blocks) * block_bits(arch, 0)
    return Output(blocks, fp8_blocks, data, blocks * st.metadata_bits_per_block,
                  blocks if arch.aqu.enabled else 0)


def footprint_bits(weights: list[list[list[int]]], arch: Arch) -> int:
    """Stored bits of a static weight tensor (module docstring), from its stored map."""
    fp8, blocks = fp8_share(weights)
    return (fp8 * block_bits(arch, 1) + (blocks - fp8) * block_bits(arch, 0)
            + blocks * arch.storage.metadata_bits_per_block + len(weights) * arch.storage.tensor_scale_bits)
