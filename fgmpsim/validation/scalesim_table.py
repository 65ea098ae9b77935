"""The SCALE-Sim cycle table: stored SCALE-Sim "Total Cycles" (``tests/data/scalesim_*.csv``) next to fgmpsim's
cycles computed live.

A CSV needs at least the columns ``array_rows, array_cols, m, k, n, scalesim_total_cycles`` (header comment lines
start with ``#``; spaces or case in the names do not matter). An ``arch`` column (and optional ``set``: overrides
separated by spaces) names the fgmpsim architecture of each row; without it the row runs on
:data:`DEFAULT_ARCH` when that file exists, else on :data:`FALLBACK_ARCH` with one PE of ``array_cols`` lanes.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.arch.loader import find_arch
from fgmpsim.errors import FgmpsimError
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace

PATTERN = "tests/data/scalesim_*.csv"
SCRIPT = "benchmarks/scalesim_ws.py"
"""The script that runs SCALE-Sim (in its own interpreter) and writes a CSV of the :data:`REQUIRED` columns."""
LIVE_TIMEOUT_S = 1800
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


def live_cycles(python: str, root: Path, table: pd.DataFrame) -> pd.Series:
    """SCALE-Sim's Total Cycles re-run now by ``python`` (an interpreter with ``scalesim``) for every row of
    ``table``, through :data:`SCRIPT` (one run per array shape); a :class:`FgmpsimError` naming the option when
    the interpreter or the script fails."""
    script = root / SCRIPT
    if not script.is_file():
        raise FgmpsimError(f"{script} is missing", "--scalesim-python", "run fgmpsim validate from the repository root")
    live = pd.Series(index=table.index, dtype="Int64")
    for (rows, cols), group in table.groupby(["array_rows", "array_cols"]):
        gemms = ",".join(f"{r.m}x{r.k}x{r.n}" for r in group.itertuples())
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "live.csv"
            command = [python, str(script), "--rows", str(rows), "--cols", str(cols), "--gemms", gemms,
                       "--out", str(out)]
            try:
                subprocess.run(command, check=True, capture_output=True, text=True, timeout=LIVE_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as error:
                detail = getattr(error, "stderr", "") or str(error)
                raise FgmpsimError(f"SCALE-Sim did not run with {python}: {detail.strip().splitlines()[-1:]}",
                                   "--scalesim-python", "point it at a Python with scalesim installed "
                                   "(python -m venv V && V/bin/pip install scalesim 'numpy<2.3')") from None
            frame = _normalise(pd.read_csv(out, comment="#", skipinitialspace=True))
        cycles = {(int(r.m), int(r.k), int(r.n)): int(r.scalesim_total_cycles) for r in frame.itertuples()}
        for index, r in group.iterrows():
            live[index] = cycles[(int(r["m"]), int(r["k"]), int(r["n"]))]
    return live
