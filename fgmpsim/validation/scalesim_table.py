"""The SCALE-Sim cycle table: stored SCALE-Sim "Total Cycles" (``tests/data/scalesim_*.csv``) next to fgmpsim's
cycles computed live.

A CSV needs at least the columns ``array_rows, array_cols, m, k, n, scalesim_total_cycles`` (header comment lines
start with ``#``; spaces or case in the names do not matter). An ``arch`` column (and optional ``set``: overrides
separated by spaces) names the fgmpsim architecture of each row; without it the row runs on
:data:`DEFAULT_ARCH` when that file exists, else on :data:`FALLBACK_ARCH` with one PE of ``array_cols`` lanes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.arch.loader import find_arch
from fgmpsim.errors import FgmpsimError
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace

PATTERN = "tests/data/scalesim_*.csv"
REQUIRED = ("array_rows", "array_cols", "m", "k", "n", "scalesim_total_cycles")
DEFAULT_ARCH = "systolic_{rows}x{cols}"
FALLBACK_ARCH = "fp8_baseline"


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={c: "_".join(str(c).strip().lower().split()) for c in frame.columns})


def _arch_for(row: pd.Series) -> tuple[str, list[str]]:
    if isinstance(row.get("arch"), str) and row["arch"]:
        return row["arch"], str(row.get("set") or "").split()
    name = DEFAULT_ARCH.format(rows=int(row["array_rows"]), cols=int(row["array_cols"]))
    try:
        find_arch(name)
        return name, []
    except FgmpsimError:
        return FALLBACK_ARCH, ["pe_array.pes=1", f"pe_array.lanes_per_pe={int(row['array_cols'])}"]


def scalesim_table(root: Path) -> pd.DataFrame | None:
    """All stored rows with ``fgmpsim_cycles`` (live; ``None`` and the reason in ``note`` when fgmpsim refuses
    the row), ``fgmpsim_arch`` and ``ratio`` (SCALE-Sim / fgmpsim); ``None`` when no CSV is stored."""
    files = sorted(root.glob(PATTERN))
    if not files:
        return None
    rows = []
    for path in files:
        frame = _normalise(pd.read_csv(path, comment="#", skipinitialspace=True))
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            rows.append({"file": path.name, "note": f"missing columns {', '.join(missing)}"})
            continue
        for _, row in frame.iterrows():
            name, overrides = _arch_for(row)
            out = {"file": path.name, **{c: int(row[c]) for c in REQUIRED},
                   "fgmpsim_arch": " ".join([name, *overrides]), "fgmpsim_cycles": None, "note": ""}
            try:
                result = simulate(gemm_trace(out["m"], out["k"], out["n"], fp4_fraction=0.0),
                                  load_arch(name, overrides))
                out["fgmpsim_cycles"] = int(result.rows[0]["cycles"])
            except FgmpsimError as error:
                out["note"] = str(error)
            rows.append(out)
    table = pd.DataFrame(rows)
    if "fgmpsim_cycles" in table:
        table["ratio"] = table["scalesim_total_cycles"] / table["fgmpsim_cycles"].astype(float)
    return table
