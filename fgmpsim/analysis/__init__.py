"""Analysis of finished runs: comparison against a baseline, Pareto fronts, plots. It never simulates.

* :func:`compare_results` (designs vs a baseline, per op kind and in total, relative changes) -> :class:`Comparison`;
  :func:`run_metrics` (the metrics of one run), :func:`manifest_perplexity`;
* :func:`pareto_front` / :func:`pareto_mask`;
* plots (matplotlib, imported when drawing): :func:`energy_breakdown_plot`, :func:`pareto_plot`,
  :func:`fp4_fraction_plot`, :func:`roofline_plot`, :func:`precision_map_plot`;
* :func:`format_quantity` / :func:`format_change`: numbers with units scaled to their magnitude.
"""

from fgmpsim.analysis.comparison import Comparison, compare_results
from fgmpsim.analysis.metrics import METRICS, TOTAL, manifest_perplexity, run_metrics, tokens_per_pass
from fgmpsim.analysis.pareto import pareto_front, pareto_mask
from fgmpsim.analysis.plots import (energy_breakdown_plot, fp4_fraction_plot, pareto_plot, precision_map_plot,
                                    roofline_plot)
from fgmpsim.analysis.units import format_change, format_quantity, metric_label

__all__ = ["METRICS", "TOTAL", "Comparison", "compare_results", "energy_breakdown_plot", "format_change",
           "format_quantity", "fp4_fraction_plot", "manifest_perplexity", "metric_label", "pareto_front", "pareto_mask",
           "pareto_plot", "precision_map_plot", "roofline_plot", "run_metrics", "tokens_per_pass"]
