"""Per-scope metrics of one simulated run: the whole trace (``"total"``) and each op kind.

Works on a :class:`~fgmpsim.sim.RunResult` (or its ``to_frame()``): it sums the per-op rows, it never simulates.
Metrics (units in the names or below):

* ``energy_<component>_pj`` and ``energy_pj`` (pJ), ``pj_per_mac``, ``macs``, ``cycles``, ``seconds``;
* ``utilization`` = MACs / (cycles x peak MACs per cycle);
* ``tokens_per_s`` = tokens of one pass / seconds, ``j_per_token`` = energy (J) / tokens, ``power_w`` = energy (J)
  / seconds. Tokens of one pass are the rows of the linear ops (``M`` = tokens x batch in prefill, batch in
  decode); per op kind the same token count is used, so ``j_per_token`` of the kinds sums to the total's;
* ``weight_bytes`` (stored static weights) and ``weight_bits_per_element``;
* ``area_mm2`` (total only: the arch's area, not a property of an op kind) and ``perplexity`` (total only, when the
  trace's manifest measured one; see :func:`manifest_perplexity`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fgmpsim.energy.actions import COMPONENTS
from fgmpsim.sim.result import RunResult

TOTAL = "total"
ENERGY_COLUMNS: tuple[str, ...] = tuple(f"energy_{c}_pj" for c in COMPONENTS)
METRICS: tuple[str, ...] = (*ENERGY_COLUMNS, "energy_pj", "pj_per_mac", "macs", "cycles", "seconds", "utilization",
                            "tokens_per_s", "j_per_token", "power_w", "weight_bytes", "weight_bits_per_element",
                            "area_mm2", "perplexity")
"""Metric columns of :func:`run_metrics`, in display order."""


def manifest_perplexity(meta: Mapping[str, Any]) -> float | None:
    """The perplexity a trace's manifest measured at export (``meta.perplexity.value``), or ``None``."""
    entry = meta.get("perplexity") if isinstance(meta, Mapping) else None
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def tokens_per_pass(frame: pd.DataFrame) -> int:
    """Tokens of one forward pass: the ``M`` of the trace's linear ops (tokens x batch)."""
    linear = frame.loc[frame["kind"].isin(("linear", "lm_head")), "M"]
    return int(linear.max()) if len(linear) else int(frame["M"].max())


def _scope(rows: pd.DataFrame, tokens: int, clock_hz: float, peak: int) -> dict[str, float]:
    sums = rows[[*ENERGY_COLUMNS, "energy_pj", "macs", "cycles", "weight_bits", "weight_elements"]].sum()
    energy, macs, cycles = float(sums["energy_pj"]), float(sums["macs"]), float(sums["cycles"])
    seconds = cycles / clock_hz
    return {
        **{c: float(sums[c]) for c in ENERGY_COLUMNS}, "energy_pj": energy,
        "pj_per_mac": energy / macs if macs else math.nan, "macs": macs, "cycles": cycles, "seconds": seconds,
        "utilization": macs / (cycles * peak) if cycles else math.nan,
        "tokens_per_s": tokens / seconds if seconds else math.nan, "j_per_token": energy * 1e-12 / tokens,
        "power_w": energy * 1e-12 / seconds if seconds else math.nan,
        "weight_bytes": float(sums["weight_bits"]) / 8,
        "weight_bits_per_element": (float(sums["weight_bits"]) / float(sums["weight_elements"])
                                    if sums["weight_elements"] else math.nan),
        "area_mm2": math.nan, "perplexity": math.nan,
    }


def run_metrics(result: RunResult, perplexity: float | None = None) -> pd.DataFrame:
    """One row per scope (``"total"`` first, then each op kind in trace order), one column per :data:`METRICS`."""
    frame = result.to_frame()
    tokens = tokens_per_pass(frame)
    scopes = {TOTAL: _scope(frame, tokens, result.clock_hz, result.peak_macs_per_cycle)}
    for kind in dict.fromkeys(frame["kind"]):
        scopes[kind] = _scope(frame[frame["kind"] == kind], tokens, result.clock_hz, result.peak_macs_per_cycle)
    summary = result.summary()
    scopes[TOTAL]["area_mm2"] = summary.get("area_mm2", math.nan)
    scopes[TOTAL]["perplexity"] = math.nan if perplexity is None else float(perplexity)
    out = pd.DataFrame.from_dict(scopes, orient="index")[list(METRICS)]
    out.index.name = "scope"
    return out.astype(np.float64)
