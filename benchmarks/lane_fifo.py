"""``fgmp_fp8_half_rate`` with bounded lane FIFOs (``pe_array.lane_fifo_depth``) on the synthetic Llama-2-7B
prefill (:data:`fgmpsim.validation.headline.TRACE_ARGS`) and the shipped SmolLM2-135M trace: cycles, the imbalance
stall, energy and the CPU seconds of each simulation (tile engine).

Usage::

    python benchmarks/lane_fifo.py                               # every trace x depth, then the markdown table
    python benchmarks/lane_fifo.py --trace llama2_7b --depth 4   # one point, one JSON line (run points in parallel)
    python benchmarks/lane_fifo.py --table points.jsonl          # the markdown table of stored points

Depth ``none`` is the unbounded FIFO (the shipped arch). CPU seconds are ``time.process_time`` of ``simulate``
alone (trace generation and loading excluded), on whatever else the machine is running.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace import load_trace, synth_trace
from fgmpsim.validation.headline import TRACE_ARGS

ROOT = Path(__file__).resolve().parents[1]
ARCH = "fgmp_fp8_half_rate"
DEPTHS = ("1", "2", "4", "8", "none")
TRACES = ("llama2_7b", "smollm2")


def _trace(name: str):
    if name == "llama2_7b":
        return synth_trace(**TRACE_ARGS)
    return load_trace(ROOT / "traces" / "smollm2-135m-fgmp70")


def point(trace_name: str, depth: str) -> dict:
    """Simulate one trace x depth; the row of the table as a dict."""
    trace = _trace(trace_name)
    arch = load_arch(ARCH, {"pe_array.lane_fifo_depth": None if depth == "none" else int(depth)})
    start = time.process_time()
    frame = simulate(trace, arch).to_frame()
    seconds = time.process_time() - start
    return {"trace": trace_name, "depth": depth, "cycles": int(frame.cycles.sum()),
            "compute_cycles": int(frame.compute_cycles.sum()),
            "stall_imbalance_cycles": int(frame.stall_imbalance_cycles.sum()),
            "energy_j": float(frame.energy_pj.sum()) * 1e-12, "cpu_s": round(seconds, 1)}


def table(rows: list[dict]) -> str:
    """Markdown table, cycles relative to the unbounded FIFO of the same trace."""
    free = {r["trace"]: r["cycles"] for r in rows if r["depth"] == "none"}
    lines = ["| trace | lane_fifo_depth | cycles | vs unbounded | compute | imbalance stall | energy (J) | CPU s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    order = {d: i for i, d in enumerate(DEPTHS)}
    for r in sorted(rows, key=lambda r: (TRACES.index(r["trace"]), order[r["depth"]])):
        rel = f"{r['cycles'] / free[r['trace']] - 1:+.2%}" if r["trace"] in free else "-"
        lines.append(f"| {r['trace']} | {r['depth']} | {r['cycles']:,} | {rel} | {r['compute_cycles']:,} | "
                     f"{r['stall_imbalance_cycles']:,} | {r['energy_j']:.4f} | {r['cpu_s']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", choices=TRACES)
    parser.add_argument("--depth", choices=DEPTHS)
    parser.add_argument("--table", type=Path, help="render stored JSON lines")
    args = parser.parse_args(argv)
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return 0
    if args.trace and args.depth:
        print(json.dumps(point(args.trace, args.depth)), flush=True)
        return 0
    print(table([point(t, d) for t in TRACES for d in DEPTHS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
