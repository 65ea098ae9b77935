"""SCALE-Sim v3 "Total Cycles" of weight-stationary GEMMs, stored for fgmpsim's exact-equality tests.

Runs in SCALE-Sim's own venv (standard library + ``scalesim`` only; fgmpsim is not imported)::

    python -m venv /tmp/peers/scalesim-venv
    /tmp/peers/scalesim-venv/bin/pip install scalesim "numpy<2.3"
    /tmp/peers/scalesim-venv/bin/python benchmarks/scalesim_ws.py --rows 16 --cols 16 \\
        --gemms 1x16x16,1x200x50,... --out tests/data/scalesim_ws_16x16.csv

Every GEMM ``Y[M, N] = X[M, K] W[N, K]^T`` runs as one SCALE-Sim GEMM layer (topology ``name, M, N, K``: K is the
reduction, N the filters) on an ``ArrayHeight = rows`` x ``ArrayWidth = cols`` array, ``Dataflow: ws``,
``InterfaceBandwidth: CALC`` (SCALE-Sim's default: it estimates the DRAM bandwidth instead of stalling), 1-byte
words, SRAMs large enough for every shape. The CSV's ``#`` lines hold the command and the scalesim version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shlex
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
[general]
run_name = ws

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 1024
FilterSramSzkB: 512
OfmapSramSzkB: 512
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 256
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 256
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 256
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def parse_gemms(text: str) -> list[tuple[int, int, int]]:
    """``"MxKxN,MxKxN"`` -> ``[(M, K, N), ...]``."""
    gemms = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        sizes = item.lower().split("x")
        if len(sizes) != 3 or not all(s.isdigit() and int(s) > 0 for s in sizes):
            raise argparse.ArgumentTypeError(f"GEMM {item!r} is not MxKxN with positive integers")
        gemms.append(tuple(int(s) for s in sizes))
    return gemms


def total_cycles(rows: int, cols: int, m: int, k: int, n: int, folder: Path) -> int:
    """SCALE-Sim's "Total Cycles" (COMPUTE_REPORT.csv) of one GEMM."""
    from scalesim.scale_sim import scalesim

    (folder / "s.cfg").write_text(CONFIG.format(rows=rows, cols=cols))
    (folder / "gemm.csv").write_text(f"Layer, M, N, K,\ngemm, {m}, {n}, {k},\n")
    (folder / "layout.csv").write_text("Layer,\n")
    sim = scalesim(save_disk_space=True, verbose=False, config=str(folder / "s.cfg"),
                   topology=str(folder / "gemm.csv"), layout=str(folder / "layout.csv"), input_type_gemm=True)
    sim.run_scale(top_path=str(folder / "out"))
    header, row = (line.rstrip(",\n").split(",") for line in
                   (folder / "out" / "ws" / "COMPUTE_REPORT.csv").read_text().splitlines()[:2])
    return int(float(dict(zip((h.strip() for h in header), row))["Total Cycles"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="ArrayHeight (K elements per fold)")
    parser.add_argument("--cols", type=int, required=True, help="ArrayWidth (N channels per fold)")
    parser.add_argument("--gemms", type=parse_gemms, required=True, help="comma-separated MxKxN")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/scalesim_ws.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [f"# {command}",
             f"# run with {Path(sys.executable).as_posix()}: scalesim {importlib.metadata.version('scalesim')}, "
             f"numpy {importlib.metadata.version('numpy')}, Python {sys.version.split()[0]}",
             "# SCALE-Sim v3 GEMM layer per row: ArrayHeight=rows, ArrayWidth=cols, Dataflow ws, "
             "InterfaceBandwidth CALC; K = reduction",
             "array_rows,array_cols,m,k,n,scalesim_total_cycles"]
    for m, k, n in args.gemms:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="scalesim-ws-") as tmp:
            cycles = total_cycles(args.rows, args.cols, m, k, n, Path(tmp))
        print(f"{args.rows}x{args.cols} M={m} K={k} N={n}: {cycles} cycles ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr, flush=True)
        lines.append(f"{args.rows},{args.cols},{m},{k},{n},{cycles}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
