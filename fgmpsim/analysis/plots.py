"""Plots shared by the CLI and the notebooks. Each takes finished results (frames, a RunResult, a map), writes one
figure and returns its path.

Every axis names its quantity and unit (scaled to the magnitude: mJ or J, ...); series differ by hatch or marker
as well as by grey level, so a figure reads in grey scale. Files are PNG, or SVG when the path ends in ``.svg``.
matplotlib is imported when a plot is drawn (with the non-interactive Agg backend), never on ``import fgmpsim``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fgmpsim.analysis.metrics import ENERGY_COLUMNS
from fgmpsim.analysis.pareto import pareto_mask
from fgmpsim.analysis.units import axis_label
from fgmpsim.arch.record import Arch
from fgmpsim.errors import ConfigError
from fgmpsim.io.atomic import atomic_path, check_output_file
from fgmpsim.sim.result import RunResult

PLOT_SUFFIXES = (".png", ".svg")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo", "||", "**")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_GREYS = ("0.15", "0.45", "0.7", "0.9")


def plot_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if a plot can be written there (``.png`` or ``.svg``, a writable place), else :class:`ConfigError`
    naming the fix."""
    return check_output_file(path, "--plot", ConfigError, PLOT_SUFFIXES)


def _figure(width_in: float = 7.0, height_in: float = 4.5) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width_in, height_in), layout="constrained")


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    import matplotlib.pyplot as plt

    path = plot_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, metadata={"Software": "fgmpsim"} if path.suffix.lower() == ".png" else None)
    plt.close(fig)
    return path


def energy_breakdown_plot(frame: pd.DataFrame, path: str | os.PathLike[str], *, label: str = "design",
                          title: str | None = None) -> Path:
    """Stacked bars of energy per component, one bar per row of ``frame`` (columns ``label`` and
    ``energy_<component>_pj``, e.g. :meth:`Comparison.total` reset to columns, or a sweep table)."""
    columns = [c for c in ENERGY_COLUMNS if c in frame.columns and frame[c].fillna(0).any()]
    if not columns or frame.empty:
        raise ConfigError("no energy columns to plot", "frame", "pass rows with energy_<component>_pj columns")
    divisor, ylabel = axis_label("energy_pj", frame[columns].sum(axis=1), "energy")
    fig, ax = _figure(max(4.0, 1.2 * len(frame) + 3.0))
    bottom = np.zeros(len(frame))
    x = np.arange(len(frame))
    for i, column in enumerate(columns):
        values = frame[column].fillna(0).to_numpy(np.float64) / divisor
        ax.bar(x, values, 0.6, bottom=bottom, color=_GREYS[i % len(_GREYS)], hatch=_HATCHES[i % len(_HATCHES)],
               edgecolor="black", linewidth=0.6, label=column.removeprefix("energy_").removesuffix("_pj"))
        bottom += values
    ax.set_xticks(x, [str(v) for v in frame[label]])
    ax.set_ylabel(ylabel)
    ax.set_xlabel(label)
    ax.legend(title="component", fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title or "energy by component")
    return _save(fig, path)


def pareto_plot(frame: pd.DataFrame, x: str, y: str, path: str | os.PathLike[str], *, label: str | None = None,
                title: str | None = None) -> Path:
    """Every row as a hollow point at (``x``, ``y``), the Pareto front (both minimized, see
    :func:`~fgmpsim.analysis.pareto.pareto_mask`) as filled points joined by a step line; ``label`` names a column
    whose values annotate the front's points. Typical pairs: energy_pj vs cycles, energy_pj vs area_mm2,
    energy_pj vs perplexity."""
    data = frame.dropna(subset=[x, y])
    if data.empty:
        raise ConfigError(f"no rows with both {x} and {y}", "frame", f"pass rows with {x} and {y} values")
    xdiv, xlabel = axis_label(x, data[x])
    ydiv, ylabel = axis_label(y, data[y])
    front = data[pareto_mask(data, [x, y])].sort_values(x)
    fig, ax = _figure()
    ax.scatter(data[x] / xdiv, data[y] / ydiv, facecolors="none", edgecolors="0.4", marker="o", label="design point")
    ax.step(front[x] / xdiv, front[y] / ydiv, where="post", color="black", linewidth=1.0, linestyle="--")
    ax.scatter(front[x] / xdiv, front[y] / ydiv, color="black", marker="s", label="Pareto front", zorder=3)
    if label is not None:
        for _, row in front.iterrows():
            ax.annotate(str(row[label]), (row[x] / xdiv, row[y] / ydiv), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{y} vs {x}")
    return _save(fig, path)


def fp4_fraction_plot(frame: pd.DataFrame, metrics: Sequence[str], path: str | os.PathLike[str], *,
                      fraction: str = "fp4_fraction", series: str | None = None, title: str | None = None,
                      marks: Sequence[tuple[str, float, float]] = ()) -> Path:
    """``metrics`` (columns; typically ``*_vs_baseline`` changes, or absolute values of one kind) against the FP4
    fraction column, one line per metric (and per value of ``series`` if given), markers distinguishing them.
    ``marks``: points from elsewhere (e.g. a paper's), as (label, FP4 fraction, value in the metrics' base units),
    drawn as labelled stars."""
    if fraction not in frame.columns:
        raise ConfigError(f"no column {fraction!r}", "fraction", "pass the column holding the FP4 fraction")
    data = frame.sort_values(fraction)
    relative = all(m.endswith("_vs_baseline") for m in metrics)
    divisor, ylabel = (0.01, "change vs baseline (%)") if relative else axis_label(metrics[0], data[metrics[0]])
    fig, ax = _figure()
    groups = data.groupby(series, sort=False) if series else [(None, data)]
    style = 0
    for key, rows in groups:
        for metric in metrics:
            values = rows[metric].to_numpy(np.float64) / divisor
            name = metric.removesuffix("_vs_baseline") + ("" if key is None else f" ({key})")
            ax.plot(100 * rows[fraction], values, marker=_MARKERS[style % len(_MARKERS)],
                    color=_GREYS[style % 3], linestyle=("-", "--", ":", "-.")[style % 4], label=name)
            style += 1
    for label, at, value in marks:
        ax.scatter([100 * at], [value / divisor], marker="*", s=140, facecolors="white", edgecolors="black",
                   zorder=4)
        ax.annotate(label, (100 * at, value / divisor), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.set_xlabel("blocks in NVFP4 (%)")
    ax.set_ylabel(ylabel)
    if relative:
        ax.axhline(0, color="0.5", linewidth=0.6)
    ax.legend(fontsize=8)
    ax.set_title(title or "against the FP4 fraction")
    return _save(fig, path)


def _levels(arch: Arch) -> dict[str, float]:
    """Bytes per cycle each memory level delivers (reads), the roofs of the roofline."""
    return {"DRAM": arch.memory.dram.read_bits_per_cycle / 8, "GLB": arch.memory.glb.read_bits_per_cycle / 8}


def roofline_plot(result: RunResult, arch: Arch, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Per op: achieved MAC/cycle against arithmetic intensity (MACs per byte moved) at DRAM and at the GLB, under
    each level's roof min(peak MAC/cycle, intensity x bytes/cycle). ``arch`` must be the run's architecture."""
    if arch.name != result.arch:
        raise ConfigError(f"the run is on {result.arch!r} but the roofline arch is {arch.name!r}", "arch",
                          "pass the Arch the result was simulated on")
    frame = result.to_frame()
    achieved = frame["macs"] / frame["cycles"]
    peak = result.peak_macs_per_cycle
    fig, ax = _figure()
    columns = {"DRAM": "dram_bytes", "GLB": "glb_bytes"}
    intensities = []
    for i, level in enumerate(_levels(arch)):
        moved = frame[columns[level]].to_numpy(np.float64)
        ok = moved > 0
        intensity = frame["macs"].to_numpy(np.float64)[ok] / moved[ok]
        intensities.append(intensity)
        ax.scatter(intensity, achieved[ok], marker=_MARKERS[i], facecolors="none" if i else "0.3",
                   edgecolors="black", s=18, label=f"ops at {level}")
    span = np.concatenate(intensities)
    grid = np.logspace(np.log10(max(span.min() / 4, 1e-3)), np.log10(span.max() * 4), 200)
    for i, (level, bytes_per_cycle) in enumerate(_levels(arch).items()):
        ax.plot(grid, np.minimum(peak, grid * bytes_per_cycle), color="black", linestyle=("-", "--")[i],
                linewidth=1.0, label=f"{level} roof ({bytes_per_cycle:,.0f} B/cycle)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MAC/byte)")
    ax.set_ylabel("MAC/cycle")
    ax.legend(fontsize=8)
    ax.set_title(title or f"roofline: {result.trace}\non {result.arch}, peak {peak:,} MAC/cycle", fontsize=10)
    return _save(fig, path)


def precision_map_plot(precision_map: np.ndarray, path: str | os.PathLike[str], *, rows: str = "output channel",
                       title: str | None = None, max_rows: int = 1024, block_size: int = 16) -> Path:
    """Heat map of one map (``True`` = FP8 block, black; NVFP4 white); a 3-D map shows its first slice, and at
    most ``max_rows`` rows are drawn (every k-th row of a taller map, said in the title)."""
    pmap = np.asarray(precision_map, dtype=bool)
    if pmap.ndim == 3:
        pmap = pmap[0]
    if pmap.ndim != 2:
        raise ConfigError(f"a precision map must be 2-D or 3-D, got {pmap.ndim}-D", "precision_map",
                          "pass an op's weight_map_array() or act_map_array()")
    stride = max(1, -(-pmap.shape[0] // max_rows))
    shown = pmap[::stride]
    fig, ax = _figure(6.0, 5.0)
    ax.imshow(shown, cmap="gray_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
              extent=(0, pmap.shape[1], pmap.shape[0], 0))
    ax.set_xlabel(f"K block ({block_size} elements per block)")
    ax.set_ylabel(f"{rows} (row)")
    fp8 = pmap.mean()
    note = f", every {stride}th row" if stride > 1 else ""
    ax.set_title(f"{title or 'precision map'}\nblack = FP8 ({100 * fp8:.1f}%), white = NVFP4 "
                 f"({100 * (1 - fp8):.1f}%){note}", fontsize=10)
    return _save(fig, path)
