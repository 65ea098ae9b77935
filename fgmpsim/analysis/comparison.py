"""Designs against one baseline: every metric of :mod:`fgmpsim.analysis.metrics` with its relative change.

:func:`compare_results` takes finished runs (it never simulates): the baseline (typically the all-FP8 run of the
same shapes) and any number of named designs. The result's ``frame`` has one row per (design, scope) with the
metric columns and, for each, ``<metric>_vs_baseline`` = design / baseline - 1 (NaN where the baseline's value is
0 or missing, e.g. a perplexity no manifest measured). The baseline's own rows are included (changes 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fgmpsim.analysis.metrics import TOTAL, run_metrics
from fgmpsim.errors import ConfigError
from fgmpsim.sim.result import RunResult


@dataclass(frozen=True)
class Comparison:
    """``frame``: rows (design, scope), columns ``design, arch, trace, scope``, the metrics of :data:`fgmpsim.analysis.metrics.METRICS` and
    ``<metric>_vs_baseline``. ``baseline`` names the baseline's rows; ``designs`` the others, in the given order."""

    baseline: str
    designs: tuple[str, ...]
    frame: pd.DataFrame

    def total(self) -> pd.DataFrame:
        """The ``"total"`` rows, indexed by design (baseline first)."""
        return self.frame[self.frame["scope"] == TOTAL].set_index("design")

    def change(self, design: str, metric: str, scope: str = TOTAL) -> float:
        """``design``'s relative change of ``metric`` vs the baseline in ``scope`` (e.g. -0.26 = 26% less)."""
        row = self.frame[(self.frame["design"] == design) & (self.frame["scope"] == scope)]
        if row.empty:
            raise ConfigError(f"no rows for design {design!r} in scope {scope!r}", "design",
                              f"use one of {', '.join((self.baseline, *self.designs))}")
        return float(row[f"{metric}_vs_baseline"].iloc[0])


def _relative(values: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    aligned = base.reindex(values.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = values.to_numpy() / aligned.to_numpy() - 1.0
    rel[~np.isfinite(rel)] = np.nan
    return pd.DataFrame(rel, index=values.index, columns=[f"{m}_vs_baseline" for m in values.columns])


def compare_results(baseline: RunResult, designs: Mapping[str, RunResult], *, baseline_name: str | None = None,
                    perplexities: Mapping[str, float | None] | None = None) -> Comparison:
    """Compare each design's run with ``baseline`` per op kind and in total. ``baseline_name`` defaults to the
    baseline's arch name; ``perplexities`` maps design (or baseline) names to a measured perplexity."""
    name = baseline_name or baseline.arch
    if not designs:
        raise ConfigError("nothing to compare: no designs given", "designs", "give at least one design")
    if name in designs:
        raise ConfigError(f"design name {name!r} is also the baseline's", "designs", "give the design another name")
    perplexities = perplexities or {}
    base = run_metrics(baseline, perplexities.get(name))
    parts = []
    for design, result in {name: baseline, **designs}.items():
        values = base if design == name else run_metrics(result, perplexities.get(design))
        head = pd.DataFrame({"design": design, "arch": result.arch, "trace": result.trace,
                             "scope": values.index}, index=values.index)
        parts.append(pd.concat([head, values, _relative(values, base)], axis=1))
    frame = pd.concat(parts, ignore_index=True)
    return Comparison(baseline=name, designs=tuple(designs), frame=frame)
