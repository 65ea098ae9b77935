"""Storage layout of mixed-size blocks: where a block passes through an alignment network.

``storage.layout`` gives DRAM, the GLB and the PE (weight and input) buffers each a layout
(:class:`fgmpsim.arch.record.StorageLayout`): ``packed`` levels store NVFP4 (72-bit) and FP8 (128-bit) blocks back
to back, ``slotted`` levels give every block a slot of the widest block. The lanes read, and the AQU writes, one
block per fixed-width port; a slotted level's slots line up with such a port, a packed level's blocks do not.
A block is therefore shifted into (or out of) place by an alignment network (a per-port funnel shifter; its energy
is the ``align_block`` entry) once each time it crosses a boundary between a packed level and a fixed-width end:

* DRAM -> GLB fills, when the two layouts differ (one end packed, the other slotted);
* GLB -> PE buffer fills, when the GLB's layout differs from the PE buffers';
* PE buffer -> lane reads, when the PE buffers are packed (every weight-block read of a lane and every input-block
  read of a PE);
* AQU -> GLB, when the GLB is packed (every quantized output block), and GLB -> DRAM write-back when the layouts
  differ.

Packed -> packed copies stream whole lines (no per-block shift); slotted -> slotted copies move whole slots. Only a
mixed FP4/FP8 datapath stores blocks of two sizes: on a one-precision datapath every block is slot-wide, nothing is
aligned and the layout changes nothing (``fp8_baseline`` and ``nvfp4`` are unaffected by it).
"""

from __future__ import annotations

from fgmpsim.arch.record import Arch
from fgmpsim.energy import mixed_sizes


def align_blocks(counts: dict[str, int], arch: Arch) -> int:
    """Blocks one op passes through an alignment network (see the module docstring), from its action counts: every
    block moved carries its precision flag (a mixed datapath has >= 1 metadata bit per block), so the metadata bits
    of a movement over ``metadata_bits_per_block`` are its blocks (DRAM reads = fills, GLB writes = fills + the
    quantized output blocks the AQU writes, DRAM writes = the output blocks written back (none when the output stays
    in the GLB), GLB reads = PE fills + write-back, PE buffer reads = lane reads; partial sums carry no flags)."""
    if not mixed_sizes(arch):
        return 0
    meta, layout = arch.storage.metadata_bits_per_block, arch.storage.layout
    fills = counts["dram_read_metadata_bits"] // meta
    produced = counts["glb_write_metadata_bits"] // meta - fills
    written_back = counts["dram_write_metadata_bits"] // meta
    pe_fills = counts["glb_read_metadata_bits"] // meta - written_back
    lane_reads = (counts["weight_buffer_read_metadata_bits"] + counts["input_buffer_read_metadata_bits"]) // meta
    dram_glb = layout.dram != layout.glb
    return int((fills + written_back if dram_glb else 0)
               + (pe_fills if layout.glb != layout.pe_buffers else 0)
               + (lane_reads if layout.pe_buffers == "packed" else 0)
               + (produced if layout.glb == "packed" else 0))
