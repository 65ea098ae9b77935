"""Terminal tables shared by the verbs: totals first (units scaled to magnitude), changes vs a first column, the
costliest ops. Tables fit the terminal; in a pipe or a file they are printed whole (no truncation at 80 columns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fgmpsim.analysis.units import format_change, format_quantity, format_row

if TYPE_CHECKING:
    from fgmpsim.sim.result import RunResult

STALL_CAUSES = {"stall_dram_cycles": "DRAM", "stall_glb_cycles": "GLB", "stall_imbalance_cycles": "lane imbalance",
                "stall_aqu_cycles": "AQU", "stall_fill_cycles": "pipeline fill"}
"""How a stall column of :data:`~fgmpsim.sim.result.STALLS` reads in a table (others: the column's own words)."""


def _stall_cause(column: str) -> str:
    return STALL_CAUSES.get(column, column.removeprefix("stall_").removesuffix("_cycles").replace("_", " "))

PIPE_WIDTH = 200
"""Columns used when stdout is not a terminal: wide enough that no table of fgmpsim truncates."""


def console() -> Any:
    """A rich console for results: the terminal's width on a terminal, :data:`PIPE_WIDTH` in a pipe."""
    from rich.console import Console

    out = Console(soft_wrap=False)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


def quantity_row(label: str, kind: str, values: Sequence[float], changes: Sequence[float | None]) -> list[str]:
    """[label with the row's unit, then each value, each followed by its relative change unless that is None].
    ``kind`` is a quantity kind of :mod:`fgmpsim.analysis.units` (one unit for the whole row)."""
    unit, shown = format_row(values, kind)
    cells = [f"{label} ({unit})" if unit and unit != label else label]
    for text, change in zip(shown, changes):
        cells.append(text)
        if change is not None:
            cells.append(format_change(change))
    return cells


def results_table(title: str, heads: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> Any:
    """A table whose value columns never truncate: the first ``text_columns`` fold onto more lines instead (an op's
    name stays whole on a narrow terminal)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE, pad_edge=False)
    for i, head in enumerate(heads):
        if i < text_columns:
            table.add_column(head, overflow="fold")
        else:
            width = max(len(head), *(len(row[i]) for row in rows)) if rows else len(head)
            table.add_column(head, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def _energy_components(result: RunResult) -> dict[str, float]:
    """Total pJ per energy component (``energy_<component>_pj`` summed over ops)."""
    return {key: sum(row[key] for row in result.rows)
            for key in result.rows[0] if key.startswith("energy_") and key.endswith("_pj") and key != "energy_pj"}


def _quantities(result: RunResult) -> list[tuple[str, str, float]]:
    """(label, quantity kind, value in base units) of one result's totals, in display order."""
    from fgmpsim.sim.result import STALLS

    s = result.summary()
    return [
        ("cycles", "cycles", s["cycles"]),
        (f"time at {result.clock_hz / 1e9:g} GHz", "seconds", s["seconds"]),
        ("utilization", "fraction", s["utilization"]),
        *((f"  {_stall_cause(key)} stalls", "cycles", s[key]) for key in STALLS),
        ("MACs", "count", s["macs"]),
        ("energy", "energy_pj", s["energy_pj"]),
        ("energy per MAC", "pj_per_mac", s["pj_per_mac"]),
        *((f"  {key[len('energy_'):-len('_pj')].replace('_', ' ')}", "energy_pj", pj)
          for key, pj in _energy_components(result).items()),
        ("area", "mm2", s.get("area_mm2", math.nan)),
        ("weight memory", "bytes", s["weight_bytes"]),
        ("weight bits per element", "bits", s["weight_bits_per_element"]),
        ("DRAM traffic", "bytes", s["dram_bytes"]),
        ("GLB traffic", "bytes", s["glb_bytes"]),
        ("PE buffer traffic", "bytes", s["pe_buffer_bytes"]),
    ]


def summary_table(results: Sequence[RunResult]) -> Any:
    """Totals of each result side by side; from the second result on, each value's change vs the first's."""
    columns = [_quantities(result) for result in results]
    rows = []
    for line in zip(*columns):
        (label, kind, base), values = line[0], [value for _, _, value in line]
        changes = [None, *(value / base - 1 if base else math.nan for value in values[1:])]
        rows.append(quantity_row(label, kind, values, changes))
    heads = ["quantity", results[0].arch]
    for result in results[1:]:
        heads += [result.arch, f"vs {results[0].arch}"]
    return results_table(f"{results[0].trace} ({results[0].engine} engine)", heads, rows)


_OP_COLUMNS = (("op", "op", None), ("kind", "kind", None), ("M", "M", None), ("K", "K", None), ("N", "N", None),
               ("rep", "repeat", None), ("cycles", "cycles", "cycles"), ("stalls", "stalls", "fraction"),
               ("MACs", "macs", "count"), ("energy", "energy_pj", "energy_pj"), ("share", "share", "fraction"),
               ("pJ/MAC", "pj_per_mac", "pj_per_mac"))
"""(header, row key, quantity kind or None for text) of the per-op table."""
_OP_OPTIONAL = ("rep", "K", "M", "N", "MACs", "share")
"""Columns of the per-op table left out, in this order, while it is wider than the terminal (the op's name, its
cycles and energy always show)."""


def _fitted(heads: list[str], cells: list[list[str]], width: int | None) -> tuple[list[int], list[str]]:
    """The columns of a table that fit ``width`` terminal columns (``None``: all) after leaving out
    :data:`_OP_OPTIONAL` columns in order, and the headers left out."""
    keep, hidden = list(range(len(heads))), []

    def natural() -> int:  # cells, three columns between two (padding, border, padding) and one at each edge
        return sum(max(len(heads[i]), *(len(row[i]) for row in cells)) for i in keep) + 3 * (len(keep) - 1) + 2

    for head in _OP_OPTIONAL:
        if width is None or not cells or natural() <= width:
            break
        keep.remove(heads.index(head))
        hidden.append(head)
    return keep, hidden


def op_table(result: RunResult, top: int | None, width: int | None = None) -> Any:
    """Per-op table: every op in trace order (``top=None``) or the ``top`` ops with the most energy; ``width``: the
    terminal's columns (``None``: print every column), so a narrow terminal loses the op shape and MAC columns (the
    title says which), not the op names."""
    total_pj = sum(row["energy_pj"] for row in result.rows) or 1.0
    rows = [{**row, "share": row["energy_pj"] / total_pj,
             "stalls": 1 - row["compute_cycles"] / row["cycles"] if row["cycles"] else 0.0} for row in result.rows]
    if top is not None:
        rows = sorted(rows, key=lambda row: -row["energy_pj"])[:top]
    title = (f"{result.arch}: every op" if top is None
             else f"{result.arch}: the {len(rows)} ops with the most energy (--per-op for all {len(result.rows)})")
    cells = [[str(row[key]) if kind is None else format_quantity(row[key], kind) for _, key, kind in _OP_COLUMNS]
             for row in rows]
    heads = [head for head, _, _ in _OP_COLUMNS]
    keep, hidden = _fitted(heads, cells, width)
    if hidden:
        title += f"; {', '.join(hidden)} left out at {width} columns"
    return results_table(title, [heads[i] for i in keep], [[row[i] for i in keep] for row in cells], text_columns=2)
