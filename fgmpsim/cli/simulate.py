"""fgmpsim simulate: one trace on one or more architectures -> totals, the costliest ops, an optional results file."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  fgmpsim simulate --trace traces/smollm2-135m-fgmp70 --arch fgmp
  fgmpsim simulate --trace traces/smollm2-135m-fgmp70 --arch fgmp --arch fp8_baseline      (side by side)
  fgmpsim simulate --trace traces/smollm2-135m-fgmp70 --arch fgmp --set pe_array.lanes_per_pe=8 --per-op
  fgmpsim simulate --trace out/l7b --arch fgmp --engine analytic --out out/l7b.parquet
  fgmpsim simulate --trace out/l7b --arch fgmp --attention dense --set memory.dram.size_bytes=8589934592
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="simulate a trace on one or more architectures",
                                   description=__doc__.split(": ", 1)[1], epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", required=True, help="trace directory (manifest.yaml + maps.npz)")
    parser.add_argument("--arch", required=True, action="append",
                        help="arch YAML path or shipped name (fgmp, fp8_baseline, ...); repeat to compare side by "
                             "side")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an arch field, e.g. --set memory.glb.size_bytes=1048576 (repeatable; "
                             "applies to every --arch)")
    parser.add_argument("--engine", default="tile", choices=("tile", "event", "reference", "analytic"),
                        help="tile (exact, vectorized, default), event (the same timing as SimPy events per tile "
                             "step, small traces), reference (per-cycle, tiny GEMMs) or analytic (lower bound)")
    parser.add_argument("--attention", default="causal", choices=("causal", "dense"),
                        help="causal (default): causal attention ops skip their masked keys in query bands; dense: "
                             "count every attention op as the full product, as an array without mask skipping")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--top", type=int, default=5, metavar="N",
                       help="show the N ops that take the most energy (default 5; 0 for none)")
    shown.add_argument("--per-op", action="store_true", help="show every op")
    parser.add_argument("--out", default=None,
                        help="write results to FILE (.parquet, .csv or .json; one --arch only)")
    parser.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from fgmpsim.arch import load_arch
    from fgmpsim.cli.display import console, op_table, summary_table
    from fgmpsim.cli.progress import op_progress
    from fgmpsim.errors import ConfigError
    from fgmpsim.sim import simulate
    from fgmpsim.sim.result import output_path
    from fgmpsim.trace import load_trace
    from fgmpsim.trace.io import manifest_sha256

    if len(set(args.arch)) != len(args.arch):
        raise ConfigError(f"--arch repeats {sorted({a for a in args.arch if args.arch.count(a) > 1})}", "--arch",
                          "name each architecture once")
    if args.top < 0:
        raise ConfigError(f"--top must be >= 0, got {args.top}", "--top", "pass the number of ops to show")
    if args.out is not None and len(args.arch) > 1:
        raise ConfigError("--out writes one result but several --arch were given", "--out",
                          "simulate one --arch per --out, or use `fgmpsim sweep` for many design points")
    if args.out is not None:  # checked before the simulation, so a bad path costs nothing (and '' is an error)
        output_path(args.out)
    archs = [load_arch(name, overrides=args.set) for name in args.arch]
    trace = load_trace(args.trace)
    results = []
    for arch in archs:
        with op_progress(f"{trace.name} on {arch.name}", len(trace.ops)) as advance:
            results.append(simulate(trace, arch, engine=args.engine, on_op=advance, attention=args.attention))
    out = console()
    out.print(summary_table(results))
    for result in results:
        out.print(f"datapath of {result.arch}: {result.precision_adjustment}")
        dram = result.summary()
        if dram["dram_fits"] is False:
            mib = {key: f"{dram[key] / 2**20:,.1f} MiB" for key in ("dram_weight_bytes", "dram_kv_cache_bytes",
                                                                       "dram_footprint_bytes", "dram_size_bytes")}
            out.print(f"warning: {result.arch}: weights ({mib['dram_weight_bytes']}) + KV cache "
                      f"({mib['dram_kv_cache_bytes']}) = {mib['dram_footprint_bytes']} do not fit "
                      f"memory.dram.size_bytes = {mib['dram_size_bytes']}")
        if args.per_op or args.top:
            out.print(op_table(result, None if args.per_op else args.top, out.width if out.is_terminal else None))
    if args.out is not None:
        saved = results[0].save(args.out, arch=archs[0], trace_manifest_sha256=manifest_sha256(args.trace))
        out.print(f"wrote {saved}")
    return 0
