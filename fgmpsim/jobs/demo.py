"""``demo``: the main job on shipped defaults, no torch.

Two workloads, each through ``fgmp`` and the all-FP8 ``fp8_baseline`` (:func:`fgmpsim.jobs.compare`):

* the shipped real trace ``traces/smollm2-135m-fgmp70`` (SmolLM2-135M exported with the FGMP policy at 70% NVFP4,
  256 tokens; its perplexity from the manifest, the baseline's from ``traces/smollm2-135m-fp8``);
* a synthetic Llama-2-7B prefill trace (:func:`fgmpsim.synth_trace`, ``tokens`` tokens, 70% NVFP4, seed 0).

Written to ``out``: ``headline.md`` / ``headline.csv`` (energy, cycles, weight memory, area, pJ/MAC and perplexity,
each vs FP8), ``comparison.csv`` (every metric per op kind and in total), and the plots ``energy_<workload>.png``
(stacked energy by component), ``roofline_<workload>.png`` (fgmp) and ``precision_map.png`` (one SmolLM2 layer's
weight map).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fgmpsim.analysis.plots import energy_breakdown_plot, precision_map_plot, roofline_plot
from fgmpsim.analysis.units import format_change, format_quantity, kind_of, metric_label
from fgmpsim.errors import TraceError
from fgmpsim.jobs.compare import CompareRun, compare
from fgmpsim.resources import TRACE_DIR
from fgmpsim.trace import Trace, load_trace, synth_trace

REAL_TRACE, REAL_FP8_TRACE = "smollm2-135m-fgmp70", "smollm2-135m-fp8"
HEATMAP_OP = "layers.3.mlp.down_proj"
HEADLINE_METRICS = ("energy_pj", "cycles", "weight_bytes", "area_mm2", "pj_per_mac", "perplexity")


@dataclass(frozen=True)
class DemoResult:
    """What :func:`demo` produced: the comparison of each workload, the headline table (one row per workload and
    metric: ``fp8_baseline``, ``fgmp`` and ``vs_fp8``, in base units: pJ, cycles, bytes, mm²), the files written
    and the wall time of the whole job in seconds."""

    out: Path
    runs: tuple[tuple[str, CompareRun], ...]
    headline: pd.DataFrame
    files: tuple[Path, ...]
    seconds: float


def _shipped(name: str) -> Trace:
    path = TRACE_DIR / name
    if not (path / "manifest.yaml").is_file():
        raise TraceError(f"the shipped trace {name!r} is missing from {TRACE_DIR}", "trace",
                         "reinstall fgmpsim (its wheel and source checkout both carry traces/)")
    return load_trace(path)


def _headline(runs: dict[str, CompareRun]) -> pd.DataFrame:
    rows = []
    for workload, run in runs.items():
        total = run.comparison.total()
        base, design = run.comparison.baseline, run.comparison.designs[0]
        for metric in HEADLINE_METRICS:
            if total[metric].isna().all():  # e.g. no perplexity for a synthetic trace
                continue
            rows.append({"workload": workload, "metric": metric, base: total.at[base, metric],
                         design: total.at[design, metric], "vs_fp8": total.at[design, f"{metric}_vs_baseline"]})
    return pd.DataFrame(rows)


def headline_markdown(headline: pd.DataFrame) -> str:
    """The headline table as Markdown, numbers with units scaled to their magnitude."""
    names = [c for c in headline.columns if c not in ("workload", "metric", "vs_fp8")]
    lines = [f"| workload | metric | {' | '.join(f'`{n}`' for n in names)} | vs FP8 |",
             "| --- | --- | " + " | ".join("---:" for _ in names) + " | ---: |"]
    for row in headline.itertuples(index=False):
        values = row._asdict()
        shown = " | ".join(format_quantity(values[n], kind_of(row.metric)) for n in names)
        lines.append(f"| {row.workload} | {metric_label(row.metric)} | {shown} | {format_change(row.vs_fp8)} |")
    return "\n".join(lines) + "\n"


def demo(out: str | os.PathLike[str] = "fgmpsim-demo", *, tokens: int = 2048, fp4_fraction: float = 0.7,
         seed: int = 0, log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo and write its files to ``out``. ``tokens``: the Llama-2-7B prefill length (fewer = quicker);
    ``log`` receives one line per step."""
    start = time.perf_counter()
    say = log or (lambda line: None)
    out = Path(out)
    real, real_fp8 = _shipped(REAL_TRACE), _shipped(REAL_FP8_TRACE)
    workloads = {"smollm2-135m": (real, real_fp8),
                 f"llama-2-7b-prefill-{tokens}": (synth_trace("llama-2-7b", tokens=tokens, phase="prefill",
                                                              fp4_fraction=fp4_fraction, seed=seed), None)}
    runs = {}
    for workload, (trace, baseline_trace) in workloads.items():
        say(f"simulating {workload} ({len(trace.ops)} GEMMs, {trace.macs / 1e9:,.1f} GMAC) on fgmp and fp8_baseline")
        runs[workload] = compare(trace, "fgmp", "fp8_baseline", baseline_trace=baseline_trace)
    out.mkdir(parents=True, exist_ok=True)
    headline = _headline(runs)
    files = [out / "headline.csv", out / "headline.md", out / "comparison.csv"]
    headline.to_csv(files[0], index=False)
    files[1].write_text(headline_markdown(headline))
    pd.concat([run.comparison.frame.assign(workload=w) for w, run in runs.items()]).to_csv(files[2], index=False)
    say(f"plotting to {out}")
    for workload, run in runs.items():
        files.append(energy_breakdown_plot(run.comparison.total().reset_index(), out / f"energy_{workload}.png",
                                           title=f"{workload}: energy by component"))
        results, archs = dict(run.results), dict(run.archs)
        files.append(roofline_plot(results["fgmp"], archs["fgmp"], out / f"roofline_{workload}.png"))
    op = next(op for op in real.ops if op.name.endswith(HEATMAP_OP))
    blocks = -(-op.k // real.block_size)
    files.append(precision_map_plot(op.weight_map_array(), out / "precision_map.png", block_size=real.block_size,
                                    title=f"{real.name}: {op.name} weights [N={op.n}, K blocks={blocks}]"))
    return DemoResult(out=out, runs=tuple(runs.items()), headline=headline, files=tuple(files),
                      seconds=time.perf_counter() - start)
