"""Bits of stored blocks and the weight-memory footprint of a block-precision map.

A block is ``vector_width`` elements along K. An NVFP4 block stores ``vector_width * fp4_value_bits`` value bits
plus its ``fp4_scale_bits`` scale; an FP8 block ``vector_width * fp8_value_bits + fp8_scale_bits``. Every block
also carries ``metadata_bits_per_block`` (its precision flag) and every tensor one ``tensor_scale_bits`` scale.

Layout (``storage.layout``, per level): a ``packed`` level stores each block in its own length; a ``slotted`` level
stores every block in a slot of :func:`slot_bits` (the widest block the datapath stores), so on a mixed datapath an
NVFP4 block takes an FP8 block's 128 bits. On a one-precision datapath every block is slot-wide: the layout changes
nothing there. :func:`level_bits` is the one formula the footprint, the simulator's traffic and its output bits use.

An operand in a uniform format (:mod:`fgmpsim.trace.formats`) is stored as its elements and group scales instead:
:func:`uniform_storage` gives the block widths the simulator moves it with, :func:`operand_footprint_bits` its exact
weight-memory footprint (values + every group scale once + M2 channel scales + LoRC factors + metadata per block).
"""

from __future__ import annotations

import numpy as np

from dataclasses import replace

from fgmpsim.arch.record import Arch, BlockStorage
from fgmpsim.errors import TraceError
from fgmpsim.precision import WIDE_PRECISIONS
from fgmpsim.trace.formats import OperandFormat, lorc_storage_bits


def _widths(storage: BlockStorage, vector_width: int) -> tuple[int, int]:
    """Bits of an NVFP4 and of an FP8 block (values + block scale, no metadata)."""
    return (vector_width * storage.fp4_value_bits + storage.fp4_scale_bits,
            vector_width * storage.fp8_value_bits + storage.fp8_scale_bits)


def block_bits(is_fp8: bool | np.ndarray, storage: BlockStorage, vector_width: int) -> int | np.ndarray:
    """Bits of one stored block (values + block scale, *without* metadata): an ``int`` for a scalar flag, an
    ``int64`` array of the same shape for an array of flags (``True`` = FP8)."""
    fp4, fp8 = _widths(storage, vector_width)
    if np.ndim(is_fp8) == 0:
        return fp8 if bool(is_fp8) else fp4
    return np.where(np.asarray(is_fp8, dtype=bool), np.int64(fp8), np.int64(fp4))


def mixed_sizes(arch: Arch) -> bool:
    """True when the datapath stores blocks of two sizes (FP4 and FP8 blocks with different bit counts): only then
    does a packed level need alignment networks (:mod:`fgmpsim.sim.hw.layout`)."""
    vw, st = arch.pe_array.vector_width, arch.storage
    return (set(arch.pe_array.datapath_precisions) == {"fp4", "fp8"}
            and block_bits(True, st, vw) != block_bits(False, st, vw))


def slot_bits(storage: BlockStorage, vector_width: int, datapath_precisions: tuple[str, ...]) -> int:
    """Bits of a slot of a slotted level: the widest block (values + scale) the datapath stores."""
    return max(int(block_bits(p in WIDE_PRECISIONS, storage, vector_width)) for p in datapath_precisions)


def level_bits(fp8: int | np.ndarray, blocks: int | np.ndarray, storage: BlockStorage, vector_width: int,
               layout: str, datapath_precisions: tuple[str, ...]) -> int | np.ndarray:
    """Data bits (values + scales, no metadata) of ``blocks`` blocks of which ``fp8`` are FP8, stored at a level
    with ``layout`` (``packed``: each block its own size; ``slotted``: every block :func:`slot_bits` wide)."""
    if layout == "slotted":
        return blocks * slot_bits(storage, vector_width, datapath_precisions)
    fp4_bits, fp8_bits = _widths(storage, vector_width)
    return fp8 * fp8_bits + (blocks - fp8) * fp4_bits


def storage_precision_map(precision_map: np.ndarray, datapath_precisions: tuple[str, ...]) -> np.ndarray:
    """The map as stored and computed on an array: an FP8-only datapath promotes every block to FP8, an
    FP4-only datapath demotes every block to NVFP4, a mixed datapath keeps the map."""
    precision_map = np.asarray(precision_map, dtype=bool)
    if "fp4" not in datapath_precisions:
        return np.ones_like(precision_map)
    if "fp8" not in datapath_precisions:
        return np.zeros_like(precision_map)
    return precision_map


def _checked(weight_map: np.ndarray) -> np.ndarray:
    weight_map = np.asarray(weight_map)
    if weight_map.dtype != np.bool_ or weight_map.ndim not in (2, 3):
        raise TraceError(f"a weight map must be a 2-D [N, K/block] or 3-D [repeat, N, K/block] bool array, got "
                         f"{weight_map.ndim}-D {weight_map.dtype}", "weight_map", "pass the op's precision map")
    return weight_map


def _tensors(weight_map: np.ndarray) -> int:
    return 1 if weight_map.ndim == 2 else weight_map.shape[0]


def weight_footprint_bits(weight_map: np.ndarray, storage: BlockStorage, vector_width: int,
                          datapath_precisions: tuple[str, ...] = ("fp4", "fp8")) -> int:
    """Stored bits of a weight tensor with this precision map in DRAM (``storage.layout.dram``; a slotted DRAM
    stores every block :func:`slot_bits` wide for ``datapath_precisions``): values + block scales + metadata per
    block + one tensor scale per tensor. A 2-D map ``[N, K/block]`` is one tensor (shared by all of an op's
    repeats, stored once); a 3-D map ``[repeat, N, K/block]`` is ``repeat`` distinct tensors, each with its own
    tensor scale."""
    weight_map = _checked(weight_map)
    n_blocks = weight_map.size
    n_fp8 = int(np.count_nonzero(weight_map))
    return (int(level_bits(n_fp8, n_blocks, storage, vector_width, storage.layout.dram, datapath_precisions))
            + n_blocks * storage.metadata_bits_per_block
            + _tensors(weight_map) * storage.tensor_scale_bits)


def bits_per_element(weight_map: np.ndarray, storage: BlockStorage, vector_width: int,
                     include_tensor_scale: bool = True, datapath_precisions: tuple[str, ...] = ("fp4", "fp8")) -> float:
    """Average stored bits per weight element (:func:`weight_footprint_bits` over the element count); with
    ``include_tensor_scale=False`` the per-tensor scale is left out (the per-block cost alone)."""
    weight_map = _checked(weight_map)
    bits = weight_footprint_bits(weight_map, storage, vector_width, datapath_precisions)
    if not include_tensor_scale:
        bits -= _tensors(weight_map) * storage.tensor_scale_bits
    return bits / (weight_map.size * vector_width)


def uniform_storage(fmt: OperandFormat, storage: BlockStorage, vector_width: int) -> BlockStorage:
    """The block widths an operand in uniform format ``fmt`` moves with: every block (both precision classes, so
    the map no longer matters) ``vector_width * element_bits`` value bits plus the share of its group scale,
    ``ceil(scale_bits * vector_width / group_size)`` bits (a scale is read with each block of its group: exact when
    it divides, e.g. 2 bits for an 8-bit exponent per 64 elements, an upper estimate otherwise: 1 bit at 256).
    Per-row scales (``group_size`` null, M2's channel scale) travel like the per-tensor scale: in the footprint,
    not in block traffic. No tensor scale; metadata bits per block as ``storage`` has them."""
    spec = fmt.spec
    share = -(-spec.scale_bits * vector_width // fmt.group_size) if fmt.group_size else 0
    return replace(storage, fp4_value_bits=spec.element_bits, fp8_value_bits=spec.element_bits,
                   fp4_scale_bits=share, fp8_scale_bits=share, tensor_scale_bits=0)


def operand_footprint_bits(weight_map: np.ndarray, fmt: OperandFormat, k: int, storage: BlockStorage,
                           vector_width: int, datapath_precisions: tuple[str, ...] = ("fp4", "fp8")) -> int:
    """Stored bits of a weight tensor in format ``fmt`` with reduction length ``k``: a ``mixed`` map as
    :func:`weight_footprint_bits`; a uniform format per tensor (a 3-D map holds ``repeat`` of them) its
    ``rows * KB * vector_width`` stored elements, every group scale once (:meth:`OperandFormat.scale_bits`, with M2's
    channel scales), the LoRC factors (:func:`~fgmpsim.trace.formats.lorc_storage_bits`) and
    ``metadata_bits_per_block`` per block."""
    if not fmt.uniform:
        return weight_footprint_bits(weight_map, storage, vector_width, datapath_precisions)
    weight_map = _checked(weight_map)
    rows = weight_map.shape[-2]
    per_tensor = fmt.scale_bits(rows, k) + lorc_storage_bits(rows, k, fmt.lorc_rank)
    return (weight_map.size * (vector_width * fmt.spec.element_bits + storage.metadata_bits_per_block)
            + _tensors(weight_map) * per_tensor)
