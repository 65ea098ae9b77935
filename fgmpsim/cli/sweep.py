"""fgmpsim sweep SPEC --out DIR: a design-space sweep from a YAML spec into a resumable Parquet store.

exit status: 0 when every point has a result, 1 when some failed (the summary line says how many; rerun to retry
the transient ones), 2 on bad input (before any point runs), 130 on Ctrl-C (finished points are kept; rerun the
same command to resume).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="run a design-space sweep (local processes or Dask), resumable",
                                   description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="examples:\n  fgmpsim sweep docs/examples/sweep_smollm2.yaml --out out/sweep"
                                          " --dry-run\n  fgmpsim sweep docs/examples/sweep_smollm2.yaml --out out/sweep"
                                          " --dask local\n\n" + __doc__.split("\n\n", 1)[1])
    parser.add_argument("spec", metavar="SPEC", help="sweep spec YAML (traces, archs, grid/points, baseline)")
    parser.add_argument("--out", required=True, metavar="DIR", help="store directory (created; rerun to resume)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes (default: the cores available)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="run on Dask: 'local' starts a LocalCluster, tcp://HOST:PORT uses a running scheduler")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the number of points and a run-time estimate from one simulated point")
    parser.set_defaults(func=_sweep)


def _bar():  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr (points done / failed / rate / ETA), or ``None`` when stderr is no terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                    TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def _sweep(args: argparse.Namespace) -> int:
    import time

    from fgmpsim.sweep import run

    bar = None if args.dry_run else _bar()
    state: dict[str, float] = {}

    def progress(done: int, failed: int, total: int) -> None:
        if bar is None:
            return
        if "task" not in state:  # the first call comes before any point of this run: earlier runs' are done
            state["start"], state["first"] = time.perf_counter(), done + failed
            state["task"] = bar.add_task("sweep", total=total, failed=0, rate="")
        elapsed = time.perf_counter() - state["start"]
        rate = (done + failed - state["first"]) / elapsed if elapsed > 0 else 0.0
        bar.update(int(state["task"]), completed=done + failed, failed=failed, rate=f"{rate:.2f} points/s")

    try:
        if bar is not None:
            bar.start()
        report = run(args.spec, args.out, workers=args.workers, dask=args.dask, dry_run=args.dry_run,
                     progress=progress)
    except KeyboardInterrupt:
        if bar is not None:
            bar.stop()
        sys.stderr.write(f"error: interrupted (sweep): finished points are kept in {args.out}; "
                         "rerun the same command to resume\n")
        return 130
    finally:
        if bar is not None:
            bar.stop()
    print(report.line())
    return 0 if report.dry_run or report.complete else 1
