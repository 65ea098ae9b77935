"""Cross-check with peer simulators: the same uniform-precision GEMMs through SCALE-Sim, ZigZag and fgmpsim.

Each GEMM ``Y[M, N] = X[M, K] W[N, K]^T`` (all FP8, one byte per operand) runs on one 16x16 weight-stationary array
(256 MACs per cycle) in every tool; the table puts the peers' wall times and cycle counts beside fgmpsim's.

Setup (the peers are optional and not fgmpsim dependencies; give each its own venv outside the repository)::

    python -m venv /tmp/peers/scalesim-venv
    /tmp/peers/scalesim-venv/bin/pip install scalesim "numpy<2.3"   # SCALE-Sim 3.0.0 fails on numpy >= 2.3
    python -m venv /tmp/peers/zigzag-venv
    /tmp/peers/zigzag-venv/bin/pip install zigzag-dse six           # zigzag-dse 3.9.1 imports six undeclared

Run (from the repository root; several minutes: SCALE-Sim simulates every cycle)::

    python benchmarks/peers.py --scalesim-python /tmp/peers/scalesim-venv/bin/python \\
        --zigzag-python /tmp/peers/zigzag-venv/bin/python
    python benchmarks/peers.py --gemms 64x256x256,256x512x512 --timeout 120   # MxKxN, comma-separated

Without ``--scalesim-python``/``--zigzag-python`` a peer runs in this interpreter if it imports there, else its rows
say why it was skipped. Every tool runs in its own child process pinned to one CPU core (BLAS/OpenMP threads at 1)
under an address-space limit (``--memory-gib``) and a wall-clock limit (``--timeout``); a peer that hits either on a
GEMM is not run on GEMMs with at least as many MACs. "wall s" is the simulation call alone (after imports, including
reading its own inputs): SCALE-Sim ``scalesim(...)`` + ``run_scale``, ZigZag ``get_hardware_performance_zigzag``,
fgmpsim ``load_arch`` + ``gemm_trace`` + ``simulate``; the process time (interpreter start and imports too) is in the
detail column.

What is comparable. A 16x16 weight-stationary systolic array holds a 16 (K) x 16 (N) weight tile and takes one
16-element input row per cycle: 256 MACs per cycle. fgmpsim's closest array is one PE of 16 lanes, each lane a
16-wide dot product over K (``pe_array.pes=1``, ``pe_array.lanes_per_pe=16``; ``vector_width`` stays 16, the block
size): lane j owns output channel j of the n-tile, the PE broadcasts one 16-element input block per cycle to all
lanes, as the systolic rows share an input row; the PE's buffers (32 KB weights = 128 B per MAC, 16 KB inputs,
6 KB partial sums) are base.yaml's, sized for 16 lanes. 16 PEs x 1 lane would have the same peak but 16 input
buffers each holding the same input rows. The peers' memories are derived from that fgmpsim arch:

* SCALE-Sim (``ArrayHeight`` = vector width = K rows, ``ArrayWidth`` = lanes = N columns, ``Dataflow: ws``, 1-byte
  words): the 2 MB GLB split 1/2 input, 1/4 filter, 1/4 output SRAM; ``InterfaceBandwidth: CALC`` (SCALE-Sim's
  default: it estimates the DRAM bandwidth needed instead of stalling). GEMM topology rows are
  ``name, M, N, K,`` with K the reduction (``topology_utils.load_arrays_gemm``: filter width = K, filters = N).
* ZigZag: the inputs of ``fgmpsim validate``'s energy comparison (``fgmpsim.validation.zigzag_peer``):
  ``O[b][k] += I[b][c] * W[c][k]`` with B = M, C = K (reduction), K = N; spatial mapping K (N) over D1 (16
  columns), C over D2 (16 rows), both systolic here; fgmpsim's weight, input and accumulation buffers (shared by the
  array), its GLB and DRAM with their sizes and bits per cycle, priced with fgmpsim's energy table; one FP32 sum
  per column. LOMA searches the temporal mapping for minimum latency.

What the cycle counts mean:

* SCALE-Sim "Total Cycles" (COMPUTE_REPORT.csv): cycles of its systolic dataflow, every one of the
  ceil(K/16) x ceil(N/16) weight folds paying fill and drain (folds are not overlapped); no memory stalls in CALC
  mode. The detail gives "Total Cycles (incl. prefetch)", which adds the DRAM prefetch before the first fold.
* ZigZag ``latency_total2``: an analytical estimate for the best temporal mapping: ideal temporal cycles + memory
  stalls (bandwidth-limited transfers not hidden by compute) + data on-/off-loading + systolic drain.
* fgmpsim ``cycles`` (tile engine): tiles of the modeled array and memory hierarchy with double-buffered transfers:
  compute + DRAM/GLB/imbalance stalls; no fill/drain (a lane's dot product is not pipelined across lanes).

Measured (2-core x86_64 machine shared with other jobs, one core per tool; scalesim 3.0.0 with numpy 2.2.6,
zigzag-dse 3.9.1 with numpy 2.4.6): SCALE-Sim took 1.8 / 24 / 124 / 279 s on 64x256x256 / 256x512x512 /
1024x512x512 / 512x1024x1024 (94x to 9,750x fgmpsim's wall time; its peak RSS grows by about 2 KB per simulated
cycle, 4.6 GiB at 2.3 M cycles) and timed out on 1024x1024x1024; ZigZag took 2.4-6.1 s on every GEMM up to
2048x4096x4096 (10x to 144x); fgmpsim 0.02-0.23 s. SCALE-Sim's cycles are exactly
ceil(K/16) * ceil(N/16) * (M + 3*16 - 2) - 1 on all of them (fill and drain per fold), 1.68x fgmpsim's at M=64
and 1.04x at M=1024; ZigZag's are 1.5-7.4% above fgmpsim's (1.074x at 64x256x256, 1.031x, 1.015x, 1.062x on
2048x4096x4096: memory stalls of its chosen temporal mapping, with the weight buffer feeding every MAC each cycle).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
DEFAULT_GEMMS = "64x256x256,256x512x512,1024x1024x1024,2048x4096x4096"  # the last: Llama-2-7B q_proj, 2048 tokens
FGMPSIM_ARCH = "fp8_baseline"
FGMPSIM_SET = ("pe_array.pes=1", "pe_array.lanes_per_pe=16")  # one 16x16 array (module docstring)
PROBE_TIMEOUT_S = 120
RESULT_FILE = "result.json"
JOB_FILE = "job.json"


@dataclass(frozen=True)
class Gemm:
    """``Y[M, N] = X[M, K] W[N, K]^T``; sizes in elements."""

    m: int
    k: int
    n: int

    @property
    def label(self) -> str:
        return f"{self.m}x{self.k}x{self.n}"

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def parse_gemms(text: str) -> list[Gemm]:
    """``"MxKxN,MxKxN,..."`` -> GEMMs (argparse type: bad input is one usage line)."""
    gemms = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        sizes = item.lower().split("x")
        if len(sizes) != 3 or not all(s.isdigit() and int(s) > 0 for s in sizes):
            raise argparse.ArgumentTypeError(f"GEMM {item!r} is not MxKxN with positive integers (e.g. 64x256x256)")
        gemms.append(Gemm(*map(int, sizes)))
    if not gemms:
        raise argparse.ArgumentTypeError("give at least one GEMM as MxKxN")
    return gemms


@dataclass(frozen=True)
class PeerArray:
    """The array every tool models, read off the fgmpsim arch: ``rows`` = K elements per cycle (vector width),
    ``cols`` = N channels (lanes); memory sizes in bytes, bandwidths in bits per cycle, precisions in bits."""

    rows: int
    cols: int
    glb_bytes: int
    glb_read_bits_per_cycle: int
    glb_write_bits_per_cycle: int
    dram_read_bits_per_cycle: int
    dram_write_bits_per_cycle: int
    arch_name: str
    overrides: tuple[str, ...]
    operand_bits: int
    psum_bits: int
    output_bits: int


def peer_array(arch_name: str, overrides: list[str]) -> PeerArray:
    """The :class:`PeerArray` of an all-FP8 weight-stationary fgmpsim arch; exits with one line otherwise."""
    from fgmpsim.arch import load_arch
    from fgmpsim.errors import FgmpsimError

    try:
        arch = load_arch(arch_name, overrides)
    except FgmpsimError as error:
        raise SystemExit(f"error: {error}") from None
    pe, mem = arch.pe_array, arch.memory
    if pe.dataflow != "weight_stationary" or tuple(pe.datapath_precisions) != ("fp8",) or mem.glb.size_bytes is None:
        raise SystemExit(f"error: {arch.name} must be an all-FP8 weight-stationary array with a sized GLB to map onto "
                         "the peers (use --fgmpsim-arch fp8_baseline)")
    return PeerArray(rows=pe.vector_width, cols=pe.lanes, glb_bytes=mem.glb.size_bytes,
                     glb_read_bits_per_cycle=mem.glb.read_bits_per_cycle,
                     glb_write_bits_per_cycle=mem.glb.write_bits_per_cycle,
                     dram_read_bits_per_cycle=mem.dram.read_bits_per_cycle,
                     dram_write_bits_per_cycle=mem.dram.write_bits_per_cycle,
                     arch_name=arch_name, overrides=tuple(overrides),
                     operand_bits=arch.storage.fp8_value_bits, psum_bits=arch.storage.psum_bits,
                     output_bits=arch.storage.unquantized_output_bits)


# ---- peer inputs, written by the parent into the peer's work folder --------------------------------------------

def write_scalesim_inputs(array: PeerArray, gemm: Gemm, folder: Path) -> None:
    """SCALE-Sim v3 config (``s.cfg``), GEMM topology (``gemm.csv``) and an empty layout (``layout.csv``)."""
    kib = array.glb_bytes // 1024
    word_bits = array.operand_bits
    (folder / "s.cfg").write_text(f"""\
[general]
run_name = peer

[architecture_presets]
ArrayHeight: {array.rows}
ArrayWidth: {array.cols}
IfmapSramSzkB: {kib // 2}
FilterSramSzkB: {kib // 4}
OfmapSramSzkB: {kib // 4}
# offsets and request buffers as in SCALE-Sim's configs/scale.cfg; [layout] and [sparsity] unused (off)
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
# words per cycle; read in USER mode only
Bandwidth: {array.dram_read_bits_per_cycle // word_bits}
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {array.glb_read_bits_per_cycle // word_bits}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {array.glb_read_bits_per_cycle // word_bits}
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
""")
    (folder / "gemm.csv").write_text(f"Layer, M, N, K,\ngemm, {gemm.m}, {gemm.n}, {gemm.k},\n")
    (folder / "layout.csv").write_text("Layer,\n")  # read even without custom layouts; header only


def write_zigzag_inputs(array: PeerArray, gemm: Gemm, folder: Path) -> None:
    """ZigZag 3.x inputs from :func:`fgmpsim.validation.zigzag_peer.write_zigzag_inputs` (the same memories and
    energy table as the energy comparison of ``fgmpsim validate``), with both array dimensions systolic."""
    from fgmpsim.arch import load_arch
    from fgmpsim.validation.zigzag_peer import write_zigzag_inputs as write

    write(load_arch(array.arch_name, list(array.overrides)), gemm.m, gemm.k, gemm.n, folder, systolic=True)


# ---- child side: runs in the tool's own interpreter, needs only the standard library and that tool -------------

def _child_scalesim(folder: Path) -> dict:
    from scalesim.scale_sim import scalesim

    start = time.perf_counter()
    sim = scalesim(save_disk_space=True, verbose=False, config=str(folder / "s.cfg"),
                   topology=str(folder / "gemm.csv"), layout=str(folder / "layout.csv"), input_type_gemm=True)
    sim.run_scale(top_path=str(folder / "out"))
    wall_s = time.perf_counter() - start
    header, row = (line.rstrip(",\n").split(",") for line in
                   (folder / "out" / "peer" / "COMPUTE_REPORT.csv").read_text().splitlines()[:2])
    report = {h.strip(): float(v) for h, v in zip(header, row)}
    return {"wall_s": wall_s, "cycles": int(report["Total Cycles"]),
            "detail": f"incl. prefetch {int(report['Total Cycles (incl. prefetch)']):,}; "
                      f"util {report['Overall Util %']:.1f}%"}


def _child_zigzag(folder: Path) -> dict:
    import inspect

    from zigzag.api import get_hardware_performance_zigzag

    optional = {"loma_show_progress_bar": False, "pickle_filename": str(folder / "out" / "cmes.pickle")}
    accepted = inspect.signature(get_hardware_performance_zigzag).parameters
    start = time.perf_counter()
    _, latency, cmes = get_hardware_performance_zigzag(
        str(folder / "workload.yaml"), str(folder / "accelerator.yaml"), str(folder / "mapping.yaml"),
        opt="latency", dump_folder=str(folder / "out"), **{k: v for k, v in optional.items() if k in accepted})
    wall_s = time.perf_counter() - start
    cme = cmes[0][0]
    return {"wall_s": wall_s, "cycles": int(latency),
            "detail": f"ideal {int(cme.ideal_cycle):,}; stall {int(cme.latency_total0 - cme.ideal_temporal_cycle):,};"
                      f" on/off-load+drain {int(cme.latency_total2 - cme.latency_total0):,}"}


def _child_fgmpsim(folder: Path) -> dict:
    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate
    from fgmpsim.trace import gemm_trace

    job = json.loads((folder / JOB_FILE).read_text())
    start = time.perf_counter()
    result = simulate(gemm_trace(job["m"], job["k"], job["n"], fp4_fraction=0.0),
                      load_arch(job["arch"], job["overrides"]))
    wall_s = time.perf_counter() - start
    row = result.rows[0]
    return {"wall_s": wall_s, "cycles": int(row["cycles"]),
            "detail": f"compute {row['compute_cycles']:,}; stall DRAM {row['stall_dram_cycles']:,}, "
                      f"GLB {row['stall_glb_cycles']:,}"}


CHILDREN = {"scalesim": _child_scalesim, "zigzag": _child_zigzag, "fgmpsim": _child_fgmpsim}


def _child_main(tool: str, folder: Path) -> None:
    result = CHILDREN[tool](folder)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    (folder / RESULT_FILE).write_text(json.dumps(result))


# ---- parent side -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """A peer simulator: its key (``--KEY-python``, child tool), display name, PyPI distribution, the module the
    probe imports, and the writer of its inputs."""

    key: str
    name: str
    dist: str
    module: str
    write_inputs: Callable[[PeerArray, Gemm, Path], None]


PEERS = (Peer("scalesim", "SCALE-Sim", "scalesim", "scalesim.scale_sim", write_scalesim_inputs),
         Peer("zigzag", "ZigZag", "zigzag-dse", "zigzag.api", write_zigzag_inputs))


@dataclass
class Outcome:
    """One tool on one GEMM. ``status``: ``ok``, ``timeout``, ``out of memory``, ``error: ...`` or
    ``skipped: ...``; times in seconds; ``process_s`` includes interpreter start and imports."""

    status: str
    wall_s: float | None = None
    process_s: float | None = None
    cycles: int | None = None
    peak_rss_bytes: int | None = None
    detail: str = ""


def _limits(memory_bytes: int) -> None:
    """In the child before exec: one CPU core (as benchmarks/run.py) and an address-space cap."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _child_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                NUMBA_NUM_THREADS="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def run_tool(python: str, tool: str, folder: Path, timeout_s: float, memory_gib: float) -> Outcome:
    """Run ``tool`` on the inputs in ``folder`` in a child ``python``; kills its process group on timeout."""
    memory = int(memory_gib * GIB)
    start = time.perf_counter()
    proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--child", tool, str(folder)], cwd=folder,
                            env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: _limits(memory))
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome("timeout", detail=f"over {timeout_s:g} s")
    process_s = time.perf_counter() - start
    if proc.returncode != 0 or not (folder / RESULT_FILE).exists():
        text = out + err
        if "MemoryError" in text or "out of memory" in text.lower() or proc.returncode == -signal.SIGKILL:
            return Outcome("out of memory", process_s=process_s, detail=f"over {memory_gib:g} GiB address space")
        return Outcome(f"error: {_last_line(err or out)}", process_s=process_s)
    result = json.loads((folder / RESULT_FILE).read_text())
    return Outcome("ok", wall_s=result["wall_s"], process_s=process_s, cycles=result["cycles"],
                   peak_rss_bytes=result["peak_rss_bytes"], detail=result["detail"])


def probe(peer: Peer, python: str | None) -> tuple[str | None, str]:
    """(interpreter, version line) of a usable peer, or (None, why it is skipped)."""
    python = python or sys.executable
    if shutil.which(python) is None:
        return None, f"{python} is not an executable; pass the venv's bin/python"
    code = (f"import importlib.metadata as md, numpy, {peer.module}; "
            f"print(md.version({peer.dist!r}), numpy.__version__)")
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=_child_env())
    except subprocess.TimeoutExpired:
        return None, f"importing {peer.module} with {python} took over {PROBE_TIMEOUT_S} s"
    if proc.returncode != 0:
        return None, (f"{peer.module} does not import with {python} ({_last_line(proc.stderr)}); "
                      f"pip install {peer.dist} (see this script's docstring) or pass --{peer.key}-python")
    version, numpy_version = proc.stdout.split()
    return python, f"{peer.name}: {peer.dist} {version}, numpy {numpy_version}, {python}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _progress(gemm: Gemm, tool: str, outcome: Outcome) -> None:
    took = f" in {outcome.wall_s:.3f} s" if outcome.wall_s is not None else ""
    print(f"{gemm.label} {tool}: {outcome.status}{took}", file=sys.stderr, flush=True)


def table(rows: list[tuple[Gemm, Peer, Outcome, Outcome]]) -> str:
    lines = ["| GEMM MxKxN | peer | peer wall s | peer cycles | fgmpsim wall s | fgmpsim cycles | wall ratio "
             "peer/fgmpsim | cycle ratio peer/fgmpsim | peer peak RSS MiB | peer detail | fgmpsim detail |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for gemm, peer, theirs, ours in rows:
        both = theirs.status == "ok" and ours.status == "ok"
        wall_ratio = theirs.wall_s / ours.wall_s if both else None
        cycle_ratio = theirs.cycles / ours.cycles if both else None
        rss = theirs.peak_rss_bytes / 2**20 if theirs.peak_rss_bytes else None
        peer_detail = theirs.detail if theirs.status == "ok" else f"{theirs.status} {theirs.detail}".strip()
        if theirs.process_s is not None:
            peer_detail += f"; process {theirs.process_s:.1f} s"
        our_detail = ours.detail if ours.status == "ok" else ours.status
        lines.append(f"| {gemm.label} | {peer.name} | {_fmt(theirs.wall_s, '.3f')} | {_fmt(theirs.cycles, ',')} | "
                     f"{_fmt(ours.wall_s, '.3f')} | {_fmt(ours.cycles, ',')} | {_fmt(wall_ratio, ',.0f')} | "
                     f"{_fmt(cycle_ratio, '.3f')} | {_fmt(rss, ',.0f')} | {peer_detail} | {our_detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gemms", type=parse_gemms, default=parse_gemms(DEFAULT_GEMMS),
                        help=f"comma-separated MxKxN (default {DEFAULT_GEMMS})")
    for peer in PEERS:
        parser.add_argument(f"--{peer.key}-python", metavar="PATH",
                            help=f"interpreter with {peer.dist} installed (default: this one, if it imports)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per tool per GEMM (default 600)")
    parser.add_argument("--memory-gib", type=float, default=12.0,
                        help="address-space limit per tool per GEMM in GiB (default 12)")
    parser.add_argument("--fgmpsim-arch", default=FGMPSIM_ARCH, help=f"fgmpsim arch (default {FGMPSIM_ARCH})")
    parser.add_argument("--fgmpsim-set", action="append", metavar="FIELD=VALUE",
                        help=f"fgmpsim arch override, repeatable (default {' '.join(FGMPSIM_SET)})")
    parser.add_argument("--workdir", type=Path, help="keep the generated inputs and peer outputs here "
                                                     "(default: a temporary folder, removed)")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_main(args.child[0], Path(args.child[1]))
        return 0

    overrides = args.fgmpsim_set or list(FGMPSIM_SET)
    array = peer_array(args.fgmpsim_arch, overrides)
    usable = {}
    for peer in PEERS:
        python, line = probe(peer, getattr(args, f"{peer.key}_python"))
        print(line if python else f"{peer.name}: skipped: {line}", file=sys.stderr)
        usable[peer.key] = (python, line)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fgmpsim-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    failed_on: dict[str, tuple[Gemm, str]] = {}  # peer -> the GEMM it timed out or ran out of memory on, status
    rows = []
    try:
        for gemm in args.gemms:
            folder = work / gemm.label / "fgmpsim"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / JOB_FILE).write_text(json.dumps({**asdict(gemm), "arch": args.fgmpsim_arch,
                                                        "overrides": overrides}))
            ours = run_tool(sys.executable, "fgmpsim", folder, args.timeout, args.memory_gib)
            _progress(gemm, "fgmpsim", ours)
            for peer in PEERS:
                python, line = usable[peer.key]
                if python is None:
                    theirs = Outcome(f"skipped: {line}")
                elif peer.key in failed_on and gemm.macs >= failed_on[peer.key][0].macs:
                    smaller, status = failed_on[peer.key]
                    theirs = Outcome(f"skipped: {status} on {smaller.label}, which has no more MACs")
                else:
                    folder = work / gemm.label / peer.key
                    folder.mkdir(parents=True, exist_ok=True)
                    peer.write_inputs(array, gemm, folder)
                    theirs = run_tool(python, peer.key, folder, args.timeout, args.memory_gib)
                    if theirs.status in ("timeout", "out of memory") and (
                            peer.key not in failed_on or gemm.macs < failed_on[peer.key][0].macs):
                        failed_on[peer.key] = gemm, theirs.status
                _progress(gemm, peer.name, theirs)
                rows.append((gemm, peer, theirs, ours))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Array: {array.rows}x{array.cols} weight-stationary ({array.rows * array.cols} MACs/cycle), all FP8; "
          f"fgmpsim {args.fgmpsim_arch} with {' '.join(overrides)}; each tool pinned to one core.\n")
    print(table(rows))
    print()
    for python, line in usable.values():
        if python:
            print(f"- {line}")
    print("- SCALE-Sim cycles: 'Total Cycles' of its systolic WS dataflow, fill and drain per fold, CALC bandwidth "
          "(no memory stalls); ZigZag cycles: analytical latency_total2 of the best LOMA mapping (compute + stalls "
          "+ on/off-loading + systolic drain); fgmpsim cycles: tile engine, array + DRAM/GLB stalls.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
