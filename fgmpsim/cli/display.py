"""Terminal tables of simulation results: totals first (units scaled to magnitude), then the costliest ops.

Tables fit the terminal; in a pipe or a file they are printed whole (no truncation at 80 columns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from fgmpsim import units
from fgmpsim.arch.record import Arch
from fgmpsim.sim.result import STALLS, RunResult

STALL_CAUSES = ("DRAM", "GLB", "lane imbalance", "AQU")
"""How the causes of :data:`~fgmpsim.sim.result.STALLS` read in a table, in that order."""

PIPE_WIDTH = 200
"""Columns used when stdout is not a terminal: wide enough that no table of fgmpsim truncates."""


def console() -> Console:
    """A console for results: the terminal's width on a terminal, :data:`PIPE_WIDTH` in a pipe."""
    out = Console(soft_wrap=False)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


def _energy_components(result: RunResult) -> dict[str, float]:
    """Total pJ per energy component (``energy_<component>_pj`` summed over ops)."""
    return {key[len("energy_"):-len("_pj")]: sum(row[key] for row in result.rows)
            for key in result.rows[0] if key.startswith("energy_") and key != "energy_pj"}


def _summary_rows(result: RunResult, arch: Arch) -> list[tuple[str, float, Callable[[float], str]]]:
    """(quantity, value in base units, formatter) for one result; the value is what relative changes compare."""
    s = result.summary()
    cycles = max(s["cycles"], 1)  # stalls print with their share of all cycles
    rows: list[tuple[str, float, Callable[[float], str]]] = [
        ("cycles", s["cycles"], "{:,.0f}".format),
        (f"time at {arch.clock_hz / 1e9:g} GHz", s["seconds"], units.duration),
        ("utilization", s["utilization"], units.percent),
        *((f"  {cause} stall cycles", s[key], lambda v: f"{v:,.0f} ({units.percent(v / cycles)})")
          for cause, key in zip(STALL_CAUSES, STALLS)),
        ("MACs", s["macs"], lambda v: units.count(v, "MAC")),
        ("energy", s["energy_pj"], units.energy),
        ("energy per MAC", s["pj_per_mac"], lambda v: f"{v:.4f} pJ"),
        *((f"  {name.replace('_', ' ')}", pj, units.energy) for name, pj in _energy_components(result).items()),
        ("weight memory", s["weight_bytes"], units.size),
        ("weight bits per element", s["weight_bits_per_element"], "{:.4f}".format),
        ("DRAM traffic", s["dram_bytes"], units.size),
        ("GLB traffic", s["glb_bytes"], units.size),
        ("PE buffer traffic", s["pe_buffer_bytes"], units.size),
    ]
    return rows


def summary_table(results: Sequence[RunResult], archs: Sequence[Arch]) -> Table:
    """Totals of each result side by side; from the second result on, a column of relative change vs the first."""
    first = results[0]
    table = Table(title=f"{first.trace} ({first.engine} engine)")
    table.add_column("quantity", no_wrap=True)
    for index, result in enumerate(results):
        table.add_column(result.arch, justify="right", no_wrap=True)
        if index:
            table.add_column(f"vs {first.arch}", justify="right", no_wrap=True)
    columns = [_summary_rows(result, arch) for result, arch in zip(results, archs)]
    for line in zip(*columns):
        cells: list[str] = [line[0][0]]
        base = line[0][1]
        for index, (_, value, fmt) in enumerate(line):
            cells.append(fmt(value))
            if index:
                cells.append(units.change(value / base - 1) if base else "-")
        table.add_row(*cells)
    return table


_OP_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("op", "op", str), ("kind", "kind", str), ("M", "M", str), ("K", "K", str), ("N", "N", str),
    ("rep", "repeat", str), ("cycles", "cycles", "{:,}".format),
    ("stalls", "stalls", units.percent), ("MACs", "macs", lambda v: units.count(v, "MAC")),
    ("energy", "energy_pj", units.energy), ("share", "share", units.percent),
    ("pJ/MAC", "pj_per_mac", "{:.4f}".format),
)


def op_table(result: RunResult, top: int | None) -> Table:
    """Per-op table: every op in trace order (``top=None``) or the ``top`` ops with the most energy."""
    total_pj = sum(row["energy_pj"] for row in result.rows) or 1.0
    rows = [{**row, "share": row["energy_pj"] / total_pj,
             "stalls": 1 - row["compute_cycles"] / row["cycles"] if row["cycles"] else 0.0} for row in result.rows]
    if top is not None:
        rows = sorted(rows, key=lambda row: -row["energy_pj"])[:top]
    title = (f"{result.arch}: every op" if top is None
             else f"{result.arch}: the {len(rows)} ops with the most energy (--per-op for all {len(result.rows)})")
    table = Table(title=title)
    for header, _, _ in _OP_COLUMNS:
        table.add_column(header, justify="left" if header in ("op", "kind") else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(fmt(row[key]) for _, key, fmt in _OP_COLUMNS))
    return table
