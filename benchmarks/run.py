"""Speed benchmarks of fgmpsim's simulator: wall time, peak RSS, SimPy events and simulated MACs per second.

Usage::

    python benchmarks/run.py            # every case (several minutes: includes Llama-2-70B)
    python benchmarks/run.py --quick    # the cases that finish in under a minute in total
    python benchmarks/run.py --case llama2_7b_prefill --markdown

Each case runs in its own child process pinned to one CPU core (with BLAS/OpenMP threads at 1; the sweep case,
which measures parallel workers, may use every core), so peak RSS is the case's own and the timing is a one-core
timing. Wall times are measured with ``time.perf_counter``; peak RSS is the
child's ``ru_maxrss``. A case passes when every measured quantity meets its target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30


@dataclass
class Measurement:
    """What one case measured. Seconds are wall-clock; ``peak_rss_bytes`` is the child process's maximum RSS."""

    case: str
    description: str
    sim_seconds: float
    total_seconds: float
    peak_rss_bytes: int
    simpy_events: int
    macs: int
    checks: list[tuple[str, float, str, float, bool]] = field(default_factory=list)
    """(what, measured, "<=" or ">=", target, passed) for each target of the case."""
    info: list[tuple[str, float]] = field(default_factory=list)
    """(what, measured) for quantities shown without a target."""

    def check(self, what: str, measured: float, relation: str, target: float) -> None:
        """Record one target: ``measured`` must be ``<=`` (a time, a size) or ``>=`` (a speedup) ``target``."""
        passed = measured <= target if relation == "<=" else measured >= target
        self.checks.append((what, measured, relation, target, bool(passed)))

    @property
    def passed(self) -> bool:
        return all(ok for *_, ok in self.checks)


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _simulate(trace, arch_name: str, engine: str = "tile"):
    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate

    arch = load_arch(arch_name)
    start = time.perf_counter()
    result = simulate(trace, arch, engine=engine)
    return result, time.perf_counter() - start


def _synth_case(case: str, description: str, model: str, *, tokens: int | None, phase: str = "prefill",
                batch: int = 1, kv_len: int | None = None, sim_target_s: float, total_target_s: float | None = None,
                rss_target_gib: float | None = None, warm: bool = True) -> Measurement:
    """Generate a synthetic trace and simulate it (cold: every lazy map generated on first use). With ``warm``,
    simulate it once more on the same trace object, as every design point after the first of a sweep does (and
    every decode step over the same weights), with the unit costs of the first run forgotten
    (:func:`fgmpsim.sim.unit_costs.clear`: the second run costs every op again, as a point with another tiling
    would): that second run is the "simulate s" measured against ``sim_target_s``; otherwise the cold run is."""
    from fgmpsim.sim import unit_costs
    from fgmpsim.trace import synth_trace

    start = time.perf_counter()
    trace = synth_trace(model, tokens=tokens, batch=batch, phase=phase, kv_len=kv_len, fp4_fraction=0.7, seed=0)
    result, sim_s = _simulate(trace, "fgmp")
    total_s = time.perf_counter() - start
    if warm:
        unit_costs.clear()
        result, sim_s = _simulate(trace, "fgmp")
    summary = result.summary()
    m = Measurement(case, description, sim_s, total_s, _peak_rss_bytes(), int(summary.get("simpy_events", 0)),
                    int(summary["macs"]))
    m.check(f"simulate s ({'warm' if warm else 'cold'})", sim_s, "<=", sim_target_s)
    if total_target_s is not None:
        m.check("generate+simulate s", total_s, "<=", total_target_s)
    if rss_target_gib is not None:
        m.check("peak RSS GiB", m.peak_rss_bytes / GIB, "<=", rss_target_gib)
    return m


def case_llama2_7b_prefill() -> Measurement:
    return _synth_case("llama2_7b_prefill", "Llama-2-7B prefill, 2048 tokens, batch 1, 70% FP4 (synthetic), fgmp",
                       "llama-2-7b", tokens=2048, sim_target_s=5.0, total_target_s=10.0, rss_target_gib=2.0)


def case_llama2_70b_prefill() -> Measurement:
    return _synth_case("llama2_70b_prefill", "Llama-2-70B prefill, 2048 tokens, batch 1, 70% FP4 (synthetic), fgmp",
                       "llama-2-70b", tokens=2048, sim_target_s=60.0, rss_target_gib=8.0, warm=False)


def case_llama2_7b_decode() -> Measurement:
    return _synth_case("llama2_7b_decode", "Llama-2-7B decode, batch 16, KV cache 2048, one token step, fgmp",
                       "llama-2-7b", tokens=None, phase="decode", batch=16, kv_len=2048, sim_target_s=2.0,
                       total_target_s=10.0)


def case_smollm2_shipped() -> Measurement:
    from fgmpsim.sim import unit_costs
    from fgmpsim.trace import load_trace

    path = ROOT / "traces" / "smollm2-135m-fgmp70"
    start = time.perf_counter()
    trace = load_trace(path)
    _simulate(trace, "fgmp")  # first run loads the maps from disk; a sweep pays that once
    unit_costs.clear()  # the measured run costs every op again (a rerun of the same arch would only re-price)
    result, sim_s = _simulate(trace, "fgmp")
    summary = result.summary()
    m = Measurement("smollm2_shipped", f"shipped real trace {path.name} (SmolLM2-135M, Q4_1 GGUF weights), fgmp",
                    sim_s, time.perf_counter() - start, _peak_rss_bytes(), int(summary.get("simpy_events", 0)),
                    int(summary["macs"]))
    m.check("simulate s", sim_s, "<=", 0.5)
    return m


def _new_point_case(case: str, description: str, trace, sets: list[str], target_s: float,
                    attention: str = "causal") -> Measurement:
    """Simulate ``trace`` once on ``fgmp`` (maps generated / loaded, caches warm), then time the design point a
    sweep moves to next: ``fgmp`` with ``sets`` applied, a new arch (its own tilings, nothing reused from the first
    point but the maps). Three such points, each with a clock 1 Hz apart so every one is a new arch: the first is
    checked (with ``sets`` that change the tiling its tilings, map counts and unit costs are new, as on a sweep's
    next point; with ``sets`` empty only the clock changes, so it re-prices the first run's unit costs,
    :mod:`fgmpsim.sim.unit_costs`); the best of the other two, which re-price its unit costs (a sweep over the
    clock), is shown beside it."""
    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate

    start = time.perf_counter()
    simulate(trace, load_arch("fgmp"), attention=attention)
    first_s = time.perf_counter() - start
    runs, cpu = [], []
    for i in range(3):
        arch = load_arch("fgmp", [*sets, f"clock_hz={1e9 + i + 1}"])
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = simulate(trace, arch, attention=attention)
        runs.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    summary = result.summary()
    m = Measurement(case, description, runs[0], first_s + sum(runs), _peak_rss_bytes(),
                    int(summary.get("simpy_events", 0)), int(summary["macs"]))
    m.info.append(("same tilings, another clock CPU s", min(cpu[1:])))
    m.check("new point s", runs[0], "<=", target_s)
    # the process's own CPU seconds: equal to the wall time on an idle core, below it when the core is shared
    m.check("new point CPU s", cpu[0], "<=", target_s)
    return m


def case_llama2_7b_new_point() -> Measurement:
    from fgmpsim.trace import synth_trace

    trace = synth_trace("llama-2-7b", tokens=2048, batch=1, phase="prefill", fp4_fraction=0.7, seed=0)
    return _new_point_case("llama2_7b_new_point", "Llama-2-7B prefill 2048 (synthetic): new design point "
                           "pe_array.lanes_per_pe=8 after one fgmp run", trace, ["pe_array.lanes_per_pe=8"], 1.5)


def case_llama2_7b_new_point_dense() -> Measurement:
    """As :func:`case_llama2_7b_new_point` with ``attention="dense"``: what the causal bands cost (1,249 ops
    instead of 289)."""
    from fgmpsim.trace import synth_trace

    trace = synth_trace("llama-2-7b", tokens=2048, batch=1, phase="prefill", fp4_fraction=0.7, seed=0)
    return _new_point_case("llama2_7b_new_point_dense", "Llama-2-7B prefill 2048 (synthetic): new design point "
                           "pe_array.lanes_per_pe=8 after one fgmp run, attention counted dense", trace,
                           ["pe_array.lanes_per_pe=8"], 1.5, attention="dense")


def case_llama2_7b_new_clock() -> Measurement:
    from fgmpsim.trace import synth_trace

    trace = synth_trace("llama-2-7b", tokens=2048, batch=1, phase="prefill", fp4_fraction=0.7, seed=0)
    return _new_point_case("llama2_7b_new_clock", "Llama-2-7B prefill 2048 (synthetic): new design point (fgmp, "
                           "another clock: same tilings) after one fgmp run", trace, [], 1.5)


def _llama2_7b_option_case(case: str, what: str, sets: list[str]) -> Measurement:
    """What an option of the arch YAML costs: a new Llama-2-7B design point with ``sets`` on (new tilings, as
    ``llama2_7b_new_point``), to compare with ``llama2_7b_new_point`` (default options, new tilings) and
    ``llama2_7b_new_clock`` (default options, same tilings)."""
    from fgmpsim.trace import synth_trace

    trace = synth_trace("llama-2-7b", tokens=2048, batch=1, phase="prefill", fp4_fraction=0.7, seed=0)
    return _new_point_case(case, f"Llama-2-7B prefill 2048 (synthetic): new design point with {what} after one "
                           "fgmp run", trace, sets, 1.5)


def case_llama2_7b_options_off() -> Measurement:
    # a partial-sum collector without a weight collector is never used: default counts and cycles, new tilings
    return _llama2_7b_option_case("llama2_7b_options_off", "default counts (psum_collector_entries=2, unused "
                                  "without a weight collector)", ["pe_array.psum_collector_entries=2"])


def case_llama2_7b_collectors() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_collectors", "8-block weight and 8-entry partial-sum collectors",
                                  ["pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=8"])


def case_llama2_7b_fill() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_fill", "a 4-stage VMAC pipeline (3 fill cycles per tile)",
                                  ["pe_array.pipeline_depth=4"])


def case_llama2_7b_prefetch() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_prefetch", "the next-op weight prefetch (fgmpsim.sim.hw.prefetch)",
                                  ["memory.prefetch_next_weights=true"])


def case_llama2_7b_slotted() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_slotted", "PE buffers and GLB slotted (storage.layout)",
                                  ["storage.layout.pe_buffers=slotted", "storage.layout.glb=slotted"])


def case_llama2_7b_static_off() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_static_off", "static energy off", ["static.enabled=false"])


def case_llama2_7b_no_kept_outputs() -> Measurement:
    return _llama2_7b_option_case("llama2_7b_no_kept_outputs", "outputs never kept in the GLB",
                                  ["memory.glb.keep_outputs=false"])


def case_smollm2_new_point() -> Measurement:
    from fgmpsim.trace import load_trace

    trace = load_trace(ROOT / "traces" / "smollm2-135m-fgmp70")
    return _new_point_case("smollm2_new_point", "shipped smollm2-135m-fgmp70: new design point (fgmp, another "
                           "clock) after one fgmp run", trace, [], 0.2)


def case_smollm2_new_tiling() -> Measurement:
    from fgmpsim.trace import load_trace

    trace = load_trace(ROOT / "traces" / "smollm2-135m-fgmp70")
    return _new_point_case("smollm2_new_tiling", "shipped smollm2-135m-fgmp70: new design point "
                           "pe_array.lanes_per_pe=8 after one fgmp run", trace, ["pe_array.lanes_per_pe=8"], 0.2)


def case_reference_vs_tile() -> Measurement:
    from fgmpsim.trace import gemm_trace

    trace = gemm_trace(64, 512, 96, fp4_fraction=0.7, seed=0)
    ref, ref_s = _simulate(trace, "fgmp", engine="reference")
    # the tile engine takes about a millisecond here: take the best of 5 runs so timer noise and first-call
    # imports do not decide the ratio
    tile, tile_s = min((_simulate(trace, "fgmp", engine="tile") for _ in range(5)), key=lambda run: run[1])
    same = ref.to_frame()["cycles"].tolist() == tile.to_frame()["cycles"].tolist()
    speedup = ref_s / tile_s
    m = Measurement("reference_vs_tile", "64x512x96 GEMM, 70% FP4: per-cycle reference engine vs tile engine",
                    tile_s, ref_s + tile_s, _peak_rss_bytes(), int(tile.summary().get("simpy_events", 0)),
                    int(tile.summary()["macs"]))
    m.check("tile speedup x", speedup, ">=", 100.0)
    m.check("same cycles (1 = yes)", float(same), ">=", 1.0)
    return m


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (``RUSAGE_SELF``) or of its reaped children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _import_simulator() -> None:
    """Import what a sweep worker runs (the simulator, pandas, pyarrow), on a Dask worker."""
    import importlib

    for module in ("fgmpsim.sweep.executors", "pyarrow.parquet"):
        importlib.import_module(module)


def case_sweep_smollm2_48() -> Measurement:
    """48 design points (lanes x GLB size x clock on ``fgmp``) of the shipped SmolLM2 trace through
    :func:`fgmpsim.sweep.run`, into a fresh store each time: 1 worker, 2 workers, and a Dask LocalCluster of 2
    workers. Rates are points / wall time of the whole ``run`` call (pool or cluster start-up and each worker's
    trace load included); the Dask target is checked on a cluster that is already up (``--dask tcp://...``), the
    LocalCluster rate with its start-up is shown beside it. Not pinned to one core: the case measures parallel
    workers.

    CPU seconds per point, for a machine shared with other jobs (where wall rates say little): the workers' (local
    pool processes, reaped at the end of ``run``; the running cluster's workers, read before and after) plus this
    coordinating process's, and the coordinator's alone; beside them the floor, the same 48 points simulated one
    after another in this process after the sweeps (so the sweeps' workers never inherit its warm caches).

    The running cluster's workers import the simulator before the clock starts, as a cluster in use has and as the
    local pool's workers, forked from this process, have: the comparison is the execution path, not Python
    imports (about 1.5 CPU s per fresh Dask worker process, which the LocalCluster rate with its start-up shows).
    Each worker still loads the trace itself and starts with cold simulator caches."""
    import logging
    import tempfile

    from dask.distributed import Client, LocalCluster

    import fgmpsim
    from fgmpsim.sim import simulate
    from fgmpsim.trace import load_trace

    trace_dir = ROOT / "traces" / "smollm2-135m-fgmp70"
    spec = {"name": "bench-48", "traces": [str(trace_dir)], "archs": ["fgmp"],
            "grid": {"pe_array.lanes_per_pe": [4, 8, 16, 32], "memory.glb.size_bytes": [2**19, 2**20, 2**21, 2**22],
                     "clock_hz": [0.8e9, 1.0e9, 1.2e9]}}
    rates, cpu, parent_cpu, macs = {}, {}, {}, 0
    with tempfile.TemporaryDirectory() as scratch:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            client.run(_import_simulator)  # as the local pool's forked workers have it imported
            for name, workers, dask in (("1 worker", 1, None), ("2 workers", 2, None),
                                        ("Dask LocalCluster 2", 2, "local"), ("Dask running 2", 2,
                                                                             cluster.scheduler_address)):
                out = Path(scratch) / name.replace(" ", "_")
                running = name == "Dask running 2"
                before = (_cpu_s(), _cpu_s(resource.RUSAGE_CHILDREN),
                          sum(client.run(time.process_time).values()) if running else 0.0)
                start = time.perf_counter()
                report = fgmpsim.sweep.run(spec, out, workers=workers, dask=dask)
                seconds = time.perf_counter() - start
                assert report.ran == report.points == 48 and report.failed == 0, report.line()
                rates[name] = 48 / seconds
                parent_cpu[name] = (_cpu_s() - before[0]) / 48
                workers_cpu = (sum(client.run(time.process_time).values()) - before[2] if running
                               else _cpu_s(resource.RUSAGE_CHILDREN) - before[1])
                cpu[name] = parent_cpu[name] + workers_cpu / 48
                macs = int(fgmpsim.sweep.load(out)["macs"].sum())
    trace = load_trace(trace_dir)
    simulate(trace, fgmpsim.load_arch("fgmp"))  # the maps read once, as each worker's first point does
    start = _cpu_s()
    for point in fgmpsim.sweep.expand(fgmpsim.sweep.load_spec(spec)):
        simulate(trace, point.arch, engine=point.engine)
    floor = (_cpu_s() - start) / 48
    m = Measurement("sweep_smollm2_48", "48-point sweep (lanes x GLB x clock) of the shipped SmolLM2 trace on fgmp",
                    48 / rates["2 workers"], sum(48 / r for r in rates.values()), _peak_rss_bytes(), 0, macs)
    m.info.append(("points/s 1 worker", rates["1 worker"]))
    m.info.append(("points/s Dask LocalCluster 2 workers incl. start-up", rates["Dask LocalCluster 2"]))
    m.info.append(("CPU s/point bare simulate", floor))
    for name in ("1 worker", "2 workers", "Dask running 2"):
        m.info.append((f"CPU s/point {name}", cpu[name]))
        m.info.append((f"coordinator CPU s/point {name}", parent_cpu[name]))
    m.check("points/s 2 workers", rates["2 workers"], ">=", 10.0)
    m.check("2 workers / 1 worker x", rates["2 workers"] / rates["1 worker"], ">=", 1.7)
    m.check("points/s Dask (running cluster, 2 workers)", rates["Dask running 2"], ">=", 0.8 * rates["2 workers"])
    return m


CASES = {"llama2_7b_prefill": case_llama2_7b_prefill, "llama2_7b_decode": case_llama2_7b_decode,
         "llama2_70b_prefill": case_llama2_70b_prefill, "smollm2_shipped": case_smollm2_shipped,
         "reference_vs_tile": case_reference_vs_tile, "llama2_7b_new_point": case_llama2_7b_new_point,
         "llama2_7b_new_point_dense": case_llama2_7b_new_point_dense,
         "llama2_7b_new_clock": case_llama2_7b_new_clock, "smollm2_new_point": case_smollm2_new_point,
         "smollm2_new_tiling": case_smollm2_new_tiling, "sweep_smollm2_48": case_sweep_smollm2_48,
         "llama2_7b_options_off": case_llama2_7b_options_off, "llama2_7b_collectors": case_llama2_7b_collectors,
         "llama2_7b_fill": case_llama2_7b_fill, "llama2_7b_prefetch": case_llama2_7b_prefetch,
         "llama2_7b_slotted": case_llama2_7b_slotted, "llama2_7b_static_off": case_llama2_7b_static_off,
         "llama2_7b_no_kept_outputs": case_llama2_7b_no_kept_outputs}
UNPINNED = ("sweep_smollm2_48",)
"""Cases that measure parallel workers: their child process may use every core."""
QUICK = ("smollm2_shipped", "smollm2_new_point", "smollm2_new_tiling", "reference_vs_tile", "llama2_7b_decode",
         "llama2_7b_prefill", "llama2_7b_new_point")


def _run_child(case: str) -> Measurement:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, __file__, "--child", case], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark case {case} failed (exit {proc.returncode})")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["checks"] = [tuple(c) for c in data["checks"]]
    data["info"] = [tuple(i) for i in data["info"]]
    return Measurement(**data)


def _table(results: list[Measurement]) -> str:
    lines = ["| case | simulate s | generate + first simulate s | peak RSS MiB | SimPy events | simulated MAC/s | target | result |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for m in results:
        targets = "; ".join([*(f"{what} {value:.3g}" for what, value in m.info),
                             *(f"{what} {value:.3g} ({relation} {target:.3g})"
                               for what, value, relation, target, _ in m.checks)])
        lines.append(f"| {m.case} | {m.sim_seconds:.3f} | {m.total_seconds:.3f} | {m.peak_rss_bytes / 2**20:,.0f} | "
                     f"{m.simpy_events:,} | {m.macs / m.sim_seconds:.3e} | {targets} | "
                     f"{'pass' if m.passed else 'FAIL'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} (under a minute)")
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="run only this case (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print a header for benchmarks/RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child not in UNPINNED:
            _pin_to_one_core()
        print(json.dumps(asdict(CASES[args.child]())))
        return 0
    cases = args.case or (QUICK if args.quick else tuple(CASES))
    if args.markdown:
        print(f"Measured {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} cores "
              f"({platform.python_implementation()} {platform.python_version()}), each case pinned to one core.\n")
    results = []
    for case in cases:
        results.append(_run_child(case))
        print(f"{case}: {'pass' if results[-1].passed else 'FAIL'}", file=sys.stderr)
    print(_table(results))
    return 0 if all(m.passed for m in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
