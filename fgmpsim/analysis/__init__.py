"""Analysis of finished runs: comparison against a baseline, Pareto fronts, plots. It never simulates.

* :func:`compare_results` (designs vs a baseline, per op kind and in total, relative changes) -> :class:`Comparison`;
  :func:`run_metrics` (the metrics of one run), :func:`manifest_perplexity`;
* :func:`pareto_front` / :func:`pareto_mask`;
* plots (matplotlib, imported when drawing): :func:`energy_breakdown_plot`, :func:`pareto_plot`,
  :func:`fp4_fraction_plot`, :func:`roofline_plot`, :func:`precision_map_plot`;
* :func:`format_quantity` / :func:`format_change`: numbers with units scaled to their magnitude.

Names are imported on first use, so the CLI can format quantities (:mod:`~fgmpsim.analysis.units`) without pandas.
"""

from fgmpsim._lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(("Comparison", "compare_results"), "fgmpsim.analysis.comparison"),
    **dict.fromkeys(("METRICS", "TOTAL", "manifest_perplexity", "run_metrics", "tokens_per_pass"),
                    "fgmpsim.analysis.metrics"),
    **dict.fromkeys(("pareto_front", "pareto_mask"), "fgmpsim.analysis.pareto"),
    **dict.fromkeys(("energy_breakdown_plot", "fp4_fraction_plot", "pareto_plot", "precision_map_plot",
                     "roofline_plot"), "fgmpsim.analysis.plots"),
    **dict.fromkeys(("format_change", "format_quantity", "metric_label"), "fgmpsim.analysis.units"),
}
"""Public name -> the module that defines it."""

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
