"""Size limits checked once an op's tiling is known, before any tile is simulated.

The tile engine keeps per-tile arrays of one op (about :data:`BYTES_PER_TILE` bytes per tile) and its time grows
with the tiles of the whole trace (:data:`TILES_PER_SECOND`, measured on a 2-core 2026 x86 machine: a one-op trace
of 10**6 tiles takes 0.65 s and 150 MB). Llama-2-70B prefill of 2048 tokens on ``fgmp`` has 78 M tiles, at most
288 K in one op, so the limits leave it 13x and 58x room. Every cycle count must also fit in int64: the compute
cycles of a trace are at most its block pairs times the largest cycles per block pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from fgmpsim.arch.record import Arch
from fgmpsim.errors import ConfigError
from fgmpsim.sim.mapping import Tiling
from fgmpsim.trace.record import Trace

MAX_TILES = 2**30
"""Default limit on the tiles of one trace (``simulate(..., max_tiles=...)`` raises it)."""
MAX_OP_TILES = 2**24
"""Limit on the tiles of one op (its per-tile arrays are held at once: about 2.5 GB at this limit)."""
BYTES_PER_TILE = 150
TILES_PER_SECOND = 1.5e6
INT64_SAFE = 2**62


def check_tiles(trace: Trace, arch: Arch, tilings: Sequence[Tiling], max_tiles: int = MAX_TILES) -> None:
    """:class:`ConfigError` with the estimate (tiles, memory, time) if the trace is too large to simulate, or
    if its cycle counts could overflow int64."""
    for op, tiling in zip(trace.ops, tilings):
        if tiling.tiles > MAX_OP_TILES:
            raise ConfigError(f"op {op.name!r} maps to {tiling.tiles:,} tiles on {arch.name} (~"
                              f"{tiling.tiles * BYTES_PER_TILE / 2**30:,.1f} GiB of tile arrays at once), more than "
                              f"the {MAX_OP_TILES:,} one op may have", "mapping",
                              "use larger tiles (--set mapping.tile_m=..., tile_k_blocks=...) or a smaller op")
    tiles = sum(t.tiles for t in tilings)
    if tiles > max_tiles:
        raise ConfigError(f"trace {trace.name!r} maps to {tiles:,} tiles on {arch.name} (~"
                          f"{tiles / TILES_PER_SECOND / 3600:,.1f} h to simulate at ~1.5 M tiles/s), more than the "
                          f"{max_tiles:,} allowed", "trace",
                          "simulate fewer ops or smaller shapes, or pass max_tiles= to fgmpsim.simulate")
    pairs = sum(op.m * op.n * op.repeat * -(-op.k // trace.block_size) for op in trace.ops)
    cycles = max(max(row) for row in arch.pe_array.mode_table)
    if pairs * cycles > INT64_SAFE:
        raise ConfigError(f"trace {trace.name!r} has {pairs:,} block pairs; at up to {cycles:,} cycles per block pair "
                          "its cycle counts could overflow int64", "pe_array.cycles_per_block_pair",
                          "use fewer cycles per block pair or a smaller trace")
