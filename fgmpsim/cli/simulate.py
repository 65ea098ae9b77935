"""``fgmpsim simulate``: one trace on one architecture -> per-op table, totals, optional results file."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="simulate a trace on an architecture",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--trace", required=True, help="trace directory (manifest.yaml + maps.npz)")
    parser.add_argument("--arch", required=True, help="arch YAML path or shipped name (fgmp, fp8_baseline, ...)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an arch field, e.g. --set memory.glb.size_bytes=1048576 (repeatable)")
    parser.add_argument("--engine", default="tile", choices=("tile", "event", "reference", "analytic"),
                        help="tile (exact, vectorized, default), event (the same timing as SimPy events per tile "
                             "step, small traces), reference (per-cycle, tiny GEMMs) or analytic (lower bound)")
    parser.add_argument("--out", default=None, help="write results to FILE (.parquet, .csv or .json)")
    parser.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate
    from fgmpsim.sim.result import output_path
    from fgmpsim.trace import load_trace
    from fgmpsim.trace.io import manifest_sha256

    if args.out is not None:  # checked before the simulation, so a bad path costs nothing (and '' is an error)
        output_path(args.out)
    arch = load_arch(args.arch, overrides=args.set)
    result = simulate(load_trace(args.trace), arch, engine=args.engine)
    console = Console(soft_wrap=True, width=168)
    table = Table(title=f"{result.trace} on {result.arch} ({result.engine} engine)")
    columns = (("op", "op", str), ("kind", "kind", str), ("M", "M", str), ("K", "K", str), ("N", "N", str),
               ("rep", "repeat", str), ("cycles", "cycles", "{:,}".format),
               ("compute", "compute_cycles", "{:,}".format), ("DRAM stall", "stall_dram_cycles", "{:,}".format),
               ("GLB stall", "stall_glb_cycles", "{:,}".format),
               ("imbalance", "stall_imbalance_cycles", "{:,}".format), ("AQU stall", "stall_aqu_cycles", "{:,}".format),
               ("MMAC", "macs", lambda v: f"{v / 1e6:,.1f}"), ("energy uJ", "energy_pj", lambda v: f"{v / 1e6:,.2f}"),
               ("pJ/MAC", "pj_per_mac", "{:.3f}".format))
    for title, _, _ in columns:
        table.add_column(title, justify="left" if title in ("op", "kind") else "right", no_wrap=True)
    for row in result.rows:
        table.add_row(*(fmt(row[key]) for _, key, fmt in columns))
    console.print(table)
    s = result.summary()
    cycles = max(s["cycles"], 1)
    stalls = ", ".join(f"{name} {s[f'stall_{name}_cycles']:,} ({100 * s[f'stall_{name}_cycles'] / cycles:.1f}%)"
                       for name in ("dram", "glb", "imbalance", "aqu"))
    console.print(f"[bold]{arch.describe()}[/bold]\n"
                  f"datapath: {result.precision_adjustment}\n"
                  f"total: {s['cycles']:,} cycles = {s['seconds'] * 1e3:,.3f} ms at {arch.clock_hz / 1e9:g} GHz, "
                  f"{s['macs'] / 1e9:,.3f} GMAC, utilization {100 * s['utilization']:.1f}%\n"
                  f"stalls: {stalls}\n"
                  f"energy: {s['energy_pj'] / 1e9:,.4f} mJ, {s['pj_per_mac']:.4f} pJ/MAC; weights "
                  f"{s['weight_bytes'] / 2 ** 20:,.2f} MiB, {s['weight_bits_per_element']:.4f} bits/element\n"
                  f"moved: DRAM {s['dram_bytes'] / 2 ** 20:,.2f} MiB, GLB {s['glb_bytes'] / 2 ** 20:,.2f} MiB, "
                  f"PE buffers {s['pe_buffer_bytes'] / 2 ** 20:,.2f} MiB\n"
                  f"SimPy events: {s['simpy_events']:,}")
    if args.out is not None:
        console.print(f"wrote {result.save(args.out, arch=arch, trace_manifest_sha256=manifest_sha256(args.trace))}")
    return 0
