"""A per-op summary table of a trace: shapes, MACs, FP4 fractions and stored weight bits.

Weight bits use :func:`fgmpsim.energy.operand_footprint_bits` with the block storage of an architecture (a mixed
map: values, block scales, one metadata bit per block, one tensor scale per weight; a uniform format: its values,
group scales, channel scales and LoRC factors); attention ops have no stored weight (their second operand is a
dynamic activation), so their ``weight_bits`` is missing (``<NA>``). ``weight_format``/``act_format`` are the
operands' formats (:meth:`fgmpsim.trace.formats.OperandFormat.label`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fgmpsim.arch.record import BlockStorage
from fgmpsim.energy import operand_footprint_bits
from fgmpsim.trace.record import PrecisionMap, Trace, materialize_map
from fgmpsim.trace.stats import fp8_blocks
from fgmpsim.trace.synthetic_map import SyntheticMap

SUMMARY_COLUMNS = ("op", "layer", "kind", "M", "K", "N", "repeat", "static_weight", "macs", "weight_blocks",
                   "weight_fp8_blocks",
                   "act_blocks", "act_fp8_blocks", "weight_fp4_fraction", "act_fp4_fraction", "weight_elements",
                   "weight_bits", "weight_format", "act_format")


def trace_summary(trace: Trace, storage: BlockStorage) -> pd.DataFrame:
    """One row per op (columns :data:`SUMMARY_COLUMNS`; fractions are of blocks, ``macs`` includes repeats,
    ``weight_elements``/``weight_bits`` count the stored weight, missing for attention).
    Materializes one stored (not synthetic) weight map at a time for its footprint."""
    rows = []
    for op in trace.ops:
        w_blocks, a_blocks = math.prod(op.weight_map.shape), math.prod(op.act_map.shape)
        w_fp8, a_fp8 = fp8_blocks(op.weight_map), fp8_blocks(op.act_map)
        stored: tuple[object, object] = (pd.NA, pd.NA)
        if op.static_weight:
            stored = (w_blocks * trace.block_size,
                      operand_footprint_bits(_footprint_map(op.weight_map), op.weight_format, op.k, storage,
                                             trace.block_size))
        rows.append((op.name, op.layer, op.kind, op.m, op.k, op.n, op.repeat, op.static_weight, op.macs, w_blocks,
                     w_fp8, a_blocks,
                     a_fp8, 1.0 - w_fp8 / w_blocks, 1.0 - a_fp8 / a_blocks, *stored, op.weight_format.label(),
                     op.act_format.label()))
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    frame[["weight_elements", "weight_bits"]] = frame[["weight_elements", "weight_bits"]].astype("Int64")
    return frame


def _footprint_map(pmap: PrecisionMap) -> np.ndarray:
    """The map to price. The footprint depends only on a map's shape and FP8 count, so a synthetic map is stood in
    for by one with its FP8 blocks first instead of being generated (Llama-2-70B: seconds, not a minute)."""
    if not isinstance(pmap, SyntheticMap):
        return materialize_map(pmap)
    flat = np.zeros(pmap.blocks, dtype=np.bool_)
    flat[:pmap.fp8_blocks] = True
    return flat.reshape(pmap.shape)


def summary_totals(frame: pd.DataFrame) -> dict[str, float | int]:
    """Totals of a :func:`trace_summary` frame: ``ops``, ``macs``, block-weighted FP4 fractions of the static
    weights (all of them, and without ``lm_head``, which policies keep unquantized: what a policy's target counts), of the
    activation maps and of the dynamic second operands of attention (``nan`` without attention),
    stored weight bits/bytes and bits per stored weight element."""
    static = frame["static_weight"].astype(bool)

    def fp4(rows: pd.DataFrame, operand: str) -> float:
        blocks = int(rows[f"{operand}_blocks"].sum())
        return 1.0 - int(rows[f"{operand}_fp8_blocks"].sum()) / blocks if blocks else float("nan")

    weight_elements = int(frame["weight_elements"].sum())
    weight_bits = int(frame["weight_bits"].sum())
    return {
        "ops": len(frame),
        "macs": int(frame["macs"].sum()),
        "static_weight_fp4_fraction": fp4(frame[static], "weight"),
        "quantized_weight_fp4_fraction": fp4(frame[static & (frame["kind"] != "lm_head")], "weight"),
        "act_fp4_fraction": fp4(frame, "act"),
        "dynamic_operand_fp4_fraction": fp4(frame[~static], "weight"),
        "weight_bits": weight_bits,
        "weight_bytes": weight_bits / 8,
        "weight_bits_per_element": weight_bits / weight_elements if weight_elements else float("nan"),
    }
