"""Statistics of a trace's precision maps: FP8 counts per map, per role and per class, and map structure.

Counts of a :class:`~fgmpsim.trace.synthetic_map.SyntheticMap` are read from its fields (no generation), so
these are cheap on full-size synthetic traces; structure statistics materialize the maps one at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fgmpsim.trace.record import PrecisionMap, Trace, materialize_map
from fgmpsim.trace.synth_model import ROLE_CLASS, op_roles
from fgmpsim.trace.synthetic_map import SyntheticMap

OPERANDS = ("weight", "act")


def fp8_blocks(pmap: PrecisionMap) -> int:
    """Number of FP8 (True) blocks of a map, without generating a synthetic one."""
    if isinstance(pmap, SyntheticMap):
        return pmap.fp8_blocks
    return int(np.count_nonzero(materialize_map(pmap)))


def map_table(trace: Trace) -> pd.DataFrame:
    """One row per (op, operand): ``op, layer, kind, operand, role, cls, blocks, fp8_blocks, map_id`` where
    ``role``/``cls`` come from :func:`~fgmpsim.trace.synth_model.op_roles` (``None`` if unknown) and ``map_id``
    is equal for operands that share one map object (q/k/v inputs)."""
    rows = []
    for op in trace.ops:
        roles = op_roles(op)
        for operand, role, pmap in zip(OPERANDS, roles, (op.weight_map, op.act_map)):
            rows.append({"op": op.name, "layer": op.layer, "kind": op.kind, "operand": operand, "role": role,
                         "cls": ROLE_CLASS.get(role) if role else None, "blocks": int(np.prod(pmap.shape)),
                         "fp8_blocks": fp8_blocks(pmap), "map_id": id(pmap)})
    return pd.DataFrame(rows)


def class_fp4_fractions(trace: Trace, roles: set[str] | None = None) -> dict[str, float]:
    """NVFP4 fraction of blocks per class (``weight``, ``act``) over every op's maps (a map read by several ops
    counts once per op), optionally only over ``roles``."""
    table = map_table(trace)
    table = table[table["cls"].notna() & (table["role"].isin(roles) if roles is not None else True)]
    sums = table.groupby("cls")[["blocks", "fp8_blocks"]].sum()
    return {cls: 1.0 - row.fp8_blocks / row.blocks for cls, row in sums.iterrows()}


def row_col_fractions(pmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FP8 fraction of every row and every column of a 2-D map or of each head of a 3-D map, pooled over heads
    (rows = output channels or tokens, columns = block index along K)."""
    heads = pmap.reshape((-1,) + pmap.shape[-2:])
    return heads.mean(axis=2).ravel(), heads.mean(axis=1).ravel()


def distinct_maps(trace: Trace) -> list[tuple[str, int, PrecisionMap]]:
    """``(role, layer, map)`` for every distinct map object with a known role, in op order."""
    seen: set[int] = set()
    out = []
    for op in trace.ops:
        for role, pmap in zip(op_roles(op), (op.weight_map, op.act_map)):
            if role is not None and id(pmap) not in seen:
                seen.add(id(pmap))
                out.append((role, op.layer, pmap))
    return out



def structure_table(trace: Trace) -> pd.DataFrame:
    """One row per distinct map with a known role: ``role, layer, blocks, fp8_fraction, row_std, col_std`` (the
    standard deviation of per-row and per-column FP8 fractions); materializes one map at a time."""
    rows = []
    for role, layer, pmap in distinct_maps(trace):
        bits = materialize_map(pmap)
        row, col = row_col_fractions(bits)
        rows.append({"role": role, "layer": layer, "blocks": bits.size, "fp8_fraction": float(bits.mean()),
                     "row_std": float(row.std()), "col_std": float(col.std())})
    return pd.DataFrame(rows)
