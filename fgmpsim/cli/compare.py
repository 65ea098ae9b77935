"""``fgmpsim compare``: designs against the all-FP8 baseline on the same GEMMs -> table of changes, plot, file."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fgmpsim.analysis.units import kind_of, metric_label
from fgmpsim.cli.display import console, quantity_row, results_table

TOTAL_METRICS = ("energy_pj", "pj_per_mac", "cycles", "utilization", "tokens_per_s", "j_per_token", "power_w",
                 "weight_bytes", "area_mm2", "perplexity")
KIND_METRICS = ("energy_pj", "cycles", "pj_per_mac", "utilization")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare designs with the all-FP8 baseline on the same GEMMs",
        description=__doc__.splitlines()[0],
        epilog="example: fgmpsim compare --trace traces/smollm2-135m-fgmp70 --arch fgmp --baseline fp8_baseline "
               "--design nvfp4=traces/smollm2-135m-nvfp4@nvfp4 --plot out/energy.png --out out/compare.csv\n"
               "    or: fgmpsim compare --design fgmp=traces/smollm2-135m-fgmp70@fgmp "
               "--design nvfp4=traces/smollm2-135m-nvfp4@nvfp4", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", default=None,
                        help="trace directory of the first design (default: the first --design is the first design)")
    parser.add_argument("--arch", default="fgmp", help="arch of the first design (name or YAML path; default fgmp)")
    parser.add_argument("--name", default=None, help="name of the first design (default: its arch's name)")
    parser.add_argument("--baseline", default="fp8_baseline",
                        help="baseline arch, run on the same GEMMs (default fp8_baseline: every block in FP8)")
    parser.add_argument("--baseline-trace", default=None,
                        help="trace whose manifest gives the baseline's perplexity (same GEMMs, e.g. the fp8 export)")
    parser.add_argument("--design", action="append", default=[], metavar="NAME=TRACE_DIR[@ARCH]",
                        help="another design with its own trace (and arch, default --arch); repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of every arch, baseline included (repeatable)")
    parser.add_argument("--engine", default="tile", choices=("tile", "event", "reference", "analytic"),
                        help="simulation engine (default tile)")
    parser.add_argument("--attention", default="causal", choices=("causal", "dense"),
                        help="causal (default): skip the masked part of causal attention ops; dense: count every "
                             "op as the full product (traces exported before masking was recorded are dense)")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="draw the stacked energy breakdown side by side (.png or .svg)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="write every metric per op kind and in total (.csv, .parquet or .json)")
    parser.set_defaults(func=_compare)


def _row(cell: Callable[[str, str], float], names: tuple[str, ...], metric: str, baseline: str) -> list[str]:
    """[label with unit, the baseline's value, then each design's value and its change vs the baseline]."""
    return quantity_row(metric_label(metric), kind_of(metric), [cell(n, metric) for n in names],
                        [None if n == baseline else cell(n, f"{metric}_vs_baseline") for n in names])


def _value_heads(total: Any, names: tuple[str, ...], baseline: str) -> list[str]:
    heads = []
    for name in names:
        arch = total.at[name, "arch"]
        heads.append(name if name == arch else f"{name} ({arch})")
        if name != baseline:
            heads.append("change")
    return heads


def _compare(args: argparse.Namespace) -> int:
    from fgmpsim.analysis.plots import energy_breakdown_plot, plot_path
    from fgmpsim.jobs.compare import compare, comparison_path, parse_design, save_comparison

    from fgmpsim.errors import ConfigError

    designs = [replace(design, arch=design.arch or args.arch) for design in map(parse_design, args.design)]
    trace, arch, name = args.trace, args.arch, args.name
    if trace is None:  # the first --design is the first design
        if not designs:
            raise ConfigError("no design to compare", "--trace",
                              "give --trace DIR (with --arch) or --design NAME=TRACE_DIR[@ARCH], repeatable")
        if name is not None:
            raise ConfigError("--name names the --trace design, and there is none", "--name",
                              "name each design in --design NAME=TRACE_DIR[@ARCH]")
        first, *designs = designs
        trace, arch, name = first.trace, first.arch, first.name
    if args.out:
        comparison_path(args.out)
    if args.plot:
        plot_path(args.plot)
    run = compare(trace, arch, args.baseline, designs=designs, name=name,
                  baseline_trace=args.baseline_trace, overrides=args.set, engine=args.engine,
                  attention=args.attention)
    c = run.comparison
    names = (c.baseline, *c.designs)
    total = c.total()
    heads = _value_heads(total, names, c.baseline)
    metrics = [m for m in TOTAL_METRICS if not total[m].isna().all()]
    energy_parts = [m for m in c.frame.columns if m.startswith("energy_") and m.endswith("_pj")
                    and m != "energy_pj" and total[m].any()]
    rows = [_row(lambda n, col: total.at[n, col], names, m, c.baseline)
            for m in [*metrics[:1], *energy_parts, *metrics[1:]]]
    out = console()
    out.print(results_table(f"{total.at[c.designs[0], 'trace']}: designs vs the baseline {c.baseline}",
                            ["metric", *heads], rows))
    frame = c.frame.set_index(["design", "scope"])
    kind_rows = [[scope if m == KIND_METRICS[0] else "",
                  *_row(lambda n, col: frame.at[(n, scope), col], names, m, c.baseline)]
                 for scope in dict.fromkeys(c.frame["scope"]) if scope != "total" for m in KIND_METRICS]
    out.print(results_table("per op kind", ["op kind", "metric", *heads], kind_rows, text_columns=2))
    if args.plot:
        out.print(f"wrote {energy_breakdown_plot(total.reset_index(), args.plot, title='energy by component')}")
    if args.out:
        out.print(f"wrote {save_comparison(c, args.out)}")
    return 0
