"""Size limits of one GEMM op, checked before its maps are generated, read or simulated.

The simulator holds one op's maps at a time as ``bool`` arrays (one byte per block): the weight-side map, the
activation map and the output blocks the AQU decides, plus a few working copies of the same size. An op's *map
blocks* are therefore the measure of its memory:

    ``W [N, K/B] + X [M, K/B]`` (times ``repeat`` when a map has one slice per repeat) ``+ repeat * M * ceil(N/B)``

:data:`MAX_OP_MAP_BLOCKS` (2**30, about 1 GiB per copy) is 50x the largest op of a Llama-2-70B prefill of 2048
tokens (21.5 M blocks). Measured: ``gemm_trace(10**8, 16, 16)`` (2e8 map blocks) simulates in 32 s at 1.27 GB peak
RSS, about 6 bytes per map block, so an op at the limit needs about 7 GB. A trace builder or loader that meets a larger op refuses it up front with the estimate and
the keyword (``max_op_map_blocks``) or option (``--max-op-map-blocks``) that raises the limit.
"""

from __future__ import annotations

from fgmpsim.errors import TraceError

MAX_OP_MAP_BLOCKS = 2**30
"""Default cap on one op's map blocks (see the module docstring)."""
MAX_DIM = 2**40
"""Largest M, K, N or repeat accepted at all (keeps every product of them far inside int64 before the map cap)."""


def op_map_blocks(m: int, k: int, n: int, repeat: int, block_size: int, weight_slices: int = 1,
                  act_slices: int = 1) -> int:
    """Map blocks of one op (module docstring); ``*_slices`` are 1 (shared map) or ``repeat``."""
    kb = -(-k // block_size)
    return weight_slices * n * kb + act_slices * m * kb + repeat * m * -(-n // block_size)


def check_op_size(m: int, k: int, n: int, repeat: int, block_size: int, where: str,
                  max_blocks: int = MAX_OP_MAP_BLOCKS, weight_slices: int = 1, act_slices: int = 1) -> None:
    """:class:`TraceError` if the op's dimensions or map blocks exceed the limits, with the estimate and the
    override; dimensions must already be positive integers."""
    for dim, value in (("m", m), ("k", k), ("n", n), ("repeat", repeat)):
        if value > MAX_DIM:
            raise TraceError(f"{where}: {dim.upper()}={value:.3g} is beyond any model (at most 2**40)", dim,
                             f"give a smaller --{dim}")
    blocks = op_map_blocks(m, k, n, repeat, block_size, weight_slices, act_slices)
    if blocks > max_blocks:
        largest = max((("m", m), ("k", k), ("n", n), ("repeat", repeat)), key=lambda item: item[1])[0]
        raise TraceError(f"{where}: M={m:,} K={k:,} N={n:,} repeat={repeat:,} needs {blocks:,} map blocks "
                         f"(~{blocks / 2**30:,.1f} GiB per copy of its maps) to simulate, more than the "
                         f"{max_blocks:,} allowed", largest,
                         "use smaller dimensions, or raise the limit with max_op_map_blocks= "
                         "(--max-op-map-blocks) if the machine has the memory")
