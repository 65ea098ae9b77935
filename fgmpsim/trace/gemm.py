"""One-GEMM traces for microbenchmarks and cross-checks with other simulators.

Both maps are lazy :class:`~fgmpsim.trace.synthetic_map.SyntheticMap` objects without structure: uniform when the
FP4 fraction is 0 or 1, else exactly ``round(fp4_fraction * blocks)`` NVFP4 blocks per map at uniformly random,
seeded positions (weight map ``[N, KB]`` and activation map ``[M, KB]``, ``KB = ceil(K / block)``, shared by all
repeats). K may be any positive integer: the last block is zero-padded.
"""

from __future__ import annotations

import math

from fgmpsim.quant.scores import check_fraction
from fgmpsim.trace.budget import MAX_OP_MAP_BLOCKS, check_op_size
from fgmpsim.trace.checks import positive_int, seed_value
from fgmpsim.trace.record import GemmOp, Trace
from fgmpsim.trace.synthetic_map import SyntheticMap

GEMM_OP = "gemm"


def gemm_trace(m: int, k: int, n: int, fp4_fraction: float = 1.0, seed: int = 0, repeat: int = 1,
               block_size: int = 16, max_op_map_blocks: int = MAX_OP_MAP_BLOCKS) -> Trace:
    """A trace of one ``linear`` op ``Y[M, N] = X[M, K] W[N, K]^T`` repeated ``repeat`` times. An op larger than
    ``max_op_map_blocks`` (:mod:`fgmpsim.trace.budget`) is refused before anything is built."""
    m, k, n, repeat, block_size = (positive_int(value, field, f"give --{field.replace('_', '-')} >= 1")
                                   for field, value in (("m", m), ("k", k), ("n", n), ("repeat", repeat),
                                                        ("block_size", block_size)))
    check_op_size(m, k, n, repeat, block_size, "trace gemm", max_op_map_blocks)
    fp4_fraction = check_fraction(fp4_fraction)
    seed = seed_value(seed)

    kb = math.ceil(k / block_size)  # any K: the last block holds the remaining elements, zero-padded

    def random_map(rows: int, operand: str) -> SyntheticMap:
        blocks = rows * kb
        return SyntheticMap((rows, kb), blocks - round(fp4_fraction * blocks), seed,
                            f"{GEMM_OP}/{operand}")

    weight, act = random_map(n, "weight"), random_map(m, "act")
    op = GemmOp(GEMM_OP, 0, "linear", m, k, n, repeat, weight, act)
    meta = {"provenance": "fgmpsim trace gemm: one GEMM with uniformly random block-precision maps",
            "gemm": {"m": m, "k": k, "n": n, "repeat": repeat, "seed": seed},
            "fp4_fraction_target": {"weight": fp4_fraction, "act": fp4_fraction},
            "fp4_fraction_achieved": {"weight": 1.0 - weight.fp8_fraction, "act": 1.0 - act.fp8_fraction},
            "formats": {"low": "nvfp4", "high": "fp8_e4m3", "block_size": block_size}}
    return Trace(name=f"gemm-m{m}-k{k}-n{n}-r{repeat}-fp4_{fp4_fraction:g}-s{seed}", ops=(op,),
                 block_size=block_size, meta=meta)
