"""Mutation score of the suite over the simulator core: mutmut over fgmpsim/sim and fgmpsim/energy, resumable,
under a wall-clock budget, writing the stored report docs/results/mutation_report.json that ``fgmpsim validate``
renders (section 6 of docs/validation.md). A full run takes hours; it is run by hand, never in CI.

Setup (mutmut is not an fgmpsim dependency; give it its own venv with the project's dependencies)::

    python -m venv /tmp/peers/mut-venv
    /tmp/peers/mut-venv/bin/pip install mutmut==3.8.1 -e ".[dev]" pyyaml==6.0.3   # 6.0.4 words deep-YAML errors
                                                                                   # differently: test_reliability

Run (from the repository root)::

    nice python benchmarks/mutation.py --mutmut /tmp/peers/mut-venv/bin/mutmut --until 06:10   # UTC clock time
    nice python benchmarks/mutation.py --until 09:50 --seed 11 --weight fgmpsim/sim/hw/dram.py=2  # random sample
    python benchmarks/mutation.py --budget 600 --paths fgmpsim/energy/price.py                 # one module, 10 min
    python benchmarks/mutation.py --rerun-survivors      # re-test the undetected mutants (after adding tests)
    python benchmarks/mutation.py --rerun-survivors "fgmpsim.energy.*"                          # ... some of them
    python benchmarks/mutation.py --report-only          # rewrite the report from the work folder, run nothing

How it runs. The sources, tests, arch_configs/ and traces/ are synced into a work folder (``--work``, default
out/mutation/, ignored by git; a file is copied only when it changed, keeping mutmut's cache of generated mutants
and verdicts valid), which gets a ``setup.cfg`` [mutmut] section: every file of fgmpsim/ is copied, only those under
``--paths`` are mutated. ``mutmut run --max-children 1`` (``--workers``) then records, once, which test calls which
function, and runs each mutant against only those tests (``pytest -x``, fastest test first), each with a CPU limit
of 2 x ``--timeout-multiplier`` x (its tests' clean time + ``--timeout-constant`` s). Mutants go cheapest test set
first, or, with ``--seed``, in a random order (a hash of the seed and the mutant's name; ``--weight FILE=W`` draws
a file's mutants W times as fast, ``--sample N`` stops after N): a run that its budget stops has then tested a
uniform random sample of each file's mutants, and the report estimates the score over all of them with a 95%
interval (:meth:`fgmpsim.validation.mutation.MutationReport.estimate`). A work folder keeps one selection: another
``--seed``/``--weight``/``--sample`` needs ``--fresh``. Verdicts are stored per
mutant as they come, so a run stopped by its budget (SIGINT to mutmut, which finishes nothing in flight) resumes
where it stopped on the next call (SIGINT or SIGTERM to this script ends the budget early the same way); a
changed option, or ``--fresh`` (use it after the sources changed), starts over. The work folder's sessions.json lists
the sessions whose verdicts it holds; the report copies it.
Undetected mutants keep the reasons written for them in
docs/results/mutation_explanations.yaml (mutant name -> ``change``: the mutated line as mutmut writes it, ``why``:
one line), used only while the change still matches.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import filecmp
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fgmpsim.validation.files import atomic_write  # noqa: E402
from fgmpsim.validation.mutation import FORMAT, REPORT_JSON, STATUSES, UNDETECTED, parse_report  # noqa: E402

EXPLANATIONS = "docs/results/mutation_explanations.yaml"
DEFAULT_PATHS = ("fgmpsim/sim", "fgmpsim/energy")
DEFAULT_TESTS = ("tests/test_sim_*.py", "tests/test_energy_*.py", "tests/test_area.py", "tests/test_reliability.py",
                 "tests/test_trace_any_k.py")
SELECTION = "selection.json"
"""The work folder's record of the order its verdicts were drawn in (``--seed``, ``--sample``, ``--weight``)."""
SYNCED = ("fgmpsim", "tests", "arch_configs", "traces", "pyproject.toml")
"""What the work folder gets from the repository (the package must be whole to import; the tests read the rest)."""
STATUS_BY_EXIT_CODE = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 36: "timeout",
                       24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -9: "crashed", -11: "crashed",
                       None: "not_run", 2: "not_run"}
"""mutmut 3.8.1's exit codes (``mutmut.stats.status_by_exit_code``) -> the report's statuses; any other code is
``suspicious``. -9 is the SIGKILL mutmut sends one CPU second after SIGXCPU, -11 a segfault; 2 = interrupted."""
_DIFF_CHILD = """import importlib.metadata, json, sys, time
from mutmut.mutation.diff_apply import get_diff_for_mutant

def diff(name):  # a running mutmut rewrites the .meta files it reads: retry a torn read
    for attempt in range(5):
        try:
            return get_diff_for_mutant(name)
        except ValueError:
            time.sleep(0.5)
    return get_diff_for_mutant(name)

print(json.dumps({"version": importlib.metadata.version("mutmut"),
                  "diffs": {name: diff(name) for name in json.load(sys.stdin)}}))
"""


_RUN_CHILD = """import hashlib, json, math, os, sys
import mutmut.__main__ as mm
from mutmut.state import state
from mutmut.workers import isolation

opts = json.loads(sys.argv[1])

def module_of(name):  # fgmpsim.sim.hw.dram.x_f__mutmut_3 -> fgmpsim/sim/hw/dram.py (or .../__init__.py)
    base = name.rsplit(".", 1)[0].replace(".", "/")
    return base + ".py" if os.path.isfile(base + ".py") else base + "/__init__.py"

def key(name):  # uniform in (0, 1] from the seed and the name, divided by the module's weight
    u = (int(hashlib.sha256(f"{opts['seed']}:{name}".encode()).hexdigest()[:15], 16) + 1) / 16 ** 15
    return u / opts["weights"].get(module_of(name), 1.0)

if opts["seed"] is not None:
    mm.estimated_worst_case_time = key
    if opts["sample"] is not None and not opts["names"]:
        collect = mm.collect_source_file_mutation_data
        def sampled(*, mutant_names):
            mutants, by_path = collect(mutant_names=mutant_names)
            return sorted(mutants, key=lambda m: key(m[1]))[:opts["sample"]], by_path
        mm.collect_source_file_mutation_data = sampled

for cls in (isolation.ForkServerRunner, isolation.ForkRunner):  # fastest tests first: -x stops at the first kill
    def submit(self, name, tests, *rest, _orig=cls.submit):
        return _orig(self, name, sorted(tests, key=lambda t: (state().duration_by_test.get(t, 0.0), t)), *rest)
    cls.submit = submit

sys.argv = ["mutmut", "run", "--max-children", str(opts["workers"]), *opts["names"]]
mm.cli()
"""
"""Runs ``mutmut run`` in mutmut's venv with three changes, none touching verdicts: with a seed, mutants go in the
order of a per-name hash (uniform in (0, 1], divided by the weight of the mutant's file) instead of cheapest first,
so the mutants run before the budget ends are a uniformly random sample of each file's; with a sample size only
that many of the lowest keys are tested; a mutant's tests run fastest first (``pytest -x`` stops at the first
failure, so a killed mutant costs its quickest failing test)."""


def _sync(work: Path) -> None:
    """Copy :data:`SYNCED` into ``work`` where the content differs (keeping mtimes), drop files gone upstream."""
    for name in SYNCED:
        src, dst = ROOT / name, work / name
        if src.is_file():
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                shutil.copy2(src, dst)
            continue
        wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        for rel in sorted(wanted):
            target = dst / rel
            if not target.exists() or not filecmp.cmp(src / rel, target, shallow=False):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / rel, target)
        for stale in [p for p in dst.rglob("*") if p.is_file() and "__pycache__" not in p.parts]:
            if stale.relative_to(dst) not in wanted:
                stale.unlink()
                (work / "mutants" / name / stale.relative_to(dst)).unlink(missing_ok=True)


def _config(paths: list[str], tests: list[str], multiplier: float, constant: float) -> str:
    only = [p if p.endswith(".py") else p.rstrip("/") + "/*" for p in paths]

    def lines(values: list[str]) -> str:
        return "".join(f"\n    {v}" for v in values)

    return ("# written by benchmarks/mutation.py\n[mutmut]\nsource_paths = fgmpsim\n"
            f"only_mutate ={lines(only)}\nalso_copy ={lines(['arch_configs', 'traces'])}\n"
            f"pytest_add_cli_args_test_selection ={lines(tests)}\npytest_add_cli_args =\n    -p\n    no:cacheprovider\n"
            f"timeout_multiplier = {multiplier}\ntimeout_constant = {constant}\n")


def _run_mutmut(mutmut: str, work: Path, names: list[str], workers: int, deadline: float, nice: int,
                selection: dict) -> bool:
    """``mutmut run`` (through :data:`_RUN_CHILD`, in the order ``selection`` sets) in ``work`` until it ends or
    ``deadline`` (``time.time()``); True if the budget stopped it."""
    log = (work / "mutmut.log").open("a")
    log.write(f"\n==== {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC: mutmut run {' '.join(names)}\n")
    opts = {"seed": selection["seed"], "sample": selection["sample"], "weights": selection["weights"],
            "workers": workers, "names": names}
    log.flush()
    def child_setup() -> None:   # a shell's background job ignores SIGINT; mutmut needs it to stop cleanly
        os.nice(nice)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([str(Path(mutmut).with_name("python")), "-c", _RUN_CHILD, json.dumps(opts)], cwd=work,
                            stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=child_setup)
    stopped, asked = False, []
    for sig in (signal.SIGINT, signal.SIGTERM):   # being stopped by hand ends the budget early
        signal.signal(sig, lambda *_: asked.append(True))
    while proc.poll() is None:
        if (time.time() >= deadline or asked) and not stopped:
            print("budget reached: stopping mutmut (verdicts so far are kept)", flush=True)
            proc.send_signal(signal.SIGINT)
            stopped = True
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(2)
    log.close()
    if proc.returncode not in (0, None) and not stopped:
        tail = (work / "mutmut.log").read_text(errors="replace")[-2000:]
        sys.exit(f"mutmut exited with {proc.returncode}; the end of {work / 'mutmut.log'}:\n{tail}")
    return stopped


def _verdicts(work: Path, paths: list[str]) -> dict[str, dict[str, int | None]]:
    """Source file -> mutant name -> mutmut exit code (``None`` = not run), for the files under ``paths``."""
    out = {}
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        rel = meta.relative_to(work / "mutants").as_posix()[:-len(".meta")]
        if (work / rel).is_file() and any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in paths):
            out[rel] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def _function_span(source: str, mutant: str) -> tuple[int, int] | None:
    """First and last line (decorators included) of the function a mutmut mutant name points at."""
    name = mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    parts = name[1:].split("ǁ")[1:] if name.startswith("xǁ") else [name[2:]]
    body = ast.parse(source).body
    for part in parts:
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        if not found:
            return None
        node = found[0]
        body = node.body
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first, node.end_lineno


def _first_changed_line(source: str, mutant: str, diff: str) -> int | None:
    """1-based line in ``source`` of the first line the mutant's diff removes: its hunk's old side (mutmut diffs
    the function alone, a method dedented) is located by content inside the function."""
    span = _function_span(source, mutant)
    old = [ln for ln in diff.split("\n@@", 1)[-1].splitlines()[1:] if ln[:1] in (" ", "-")]
    first_removed = next((i for i, ln in enumerate(old) if ln.startswith("-")), None)
    if span is None or first_removed is None:
        return None
    want = [ln[1:].strip() for ln in old]
    lines = [ln.strip() for ln in source.splitlines()]
    for start in range(span[0] - 1, span[1]):
        if lines[start:start + len(want)] == want:
            return start + 1 + first_removed
    return None


def _explanations() -> dict[str, dict[str, str]]:
    path = ROOT / EXPLANATIONS
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data or {}


def _added_line(diff: str) -> str:
    return " / ".join(ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))


def write_report(work: Path, mutmut: str, paths: list[str], tests: list[str], sessions: list[dict],
                 selection: dict, out: Path) -> dict:
    """Build the report from the work folder's verdicts, check it with the renderer's parser, write it."""
    verdicts = _verdicts(work, paths)
    modules, survivors = {}, []
    for module, codes in verdicts.items():
        counts = dict.fromkeys(STATUSES, 0)
        for name, code in codes.items():
            status = STATUS_BY_EXIT_CODE.get(code, "suspicious")
            counts[status] += 1
            if status in UNDETECTED:
                survivors.append({"mutant": name, "status": status, "file": module})
        modules[module] = counts
    python = str(Path(mutmut).with_name("python"))
    proc = subprocess.run([python, "-c", _DIFF_CHILD], cwd=work, capture_output=True, text=True,
                          input=json.dumps([s["mutant"] for s in survivors]))
    if proc.returncode:
        sys.exit(f"{python} could not read the mutants' diffs:\n{proc.stderr[-2000:]}")
    child = json.loads(proc.stdout)
    diffs = child["diffs"]
    notes, stale = _explanations(), []
    for s in survivors:
        s["diff"] = diffs[s["mutant"]]
        s["line"] = _first_changed_line((work / s["file"]).read_text(), s["mutant"], s["diff"])
        note = notes.get(s["mutant"])
        if note and note.get("change", "").strip() == _added_line(s["diff"]):
            s["explanation"] = note["why"]
        else:
            s["explanation"] = None
            if note:
                stale.append(s["mutant"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths, "tests"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    report = {"format": FORMAT, "tool": f"mutmut {child['version']}",
              "source_commit": head + ("+uncommitted" if dirty else ""),
              "generated_utc": f"{_utc_now()} UTC", "paths": paths, "tests": tests, "sessions": sessions, "selection": selection,
              "modules": modules, "survivors": survivors}
    parse_report(report)
    atomic_write(out, lambda p: p.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n"))
    for name in stale:
        print(f"warning: {EXPLANATIONS}: {name} no longer makes the change written there; its reason was dropped")
    return report


def _utc_now() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}"


def _sessions(work: Path) -> list[dict]:
    """The sessions whose verdicts the work folder holds (``sessions.json``, appended by every run)."""
    path = work / "sessions.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _selection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The order the mutants are tested in, as the report records it (``seed`` ``None`` = mutmut's cheapest
    first)."""
    if args.seed is None and (args.sample is not None or args.weight):
        parser.error("--sample and --weight need --seed (they shape a random order)")
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample {args.sample}: give a number of mutants >= 1")
    weights = {}
    for item in args.weight:
        path, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = 0.0
        if not (ROOT / path).is_file() or not weight > 0:
            parser.error(f"--weight {item}: give FILE=W with FILE a source file (e.g. fgmpsim/sim/hw/dram.py=3) "
                         "and W > 0")
        weights[path] = weight
    return {"seed": args.seed, "sample": args.sample, "weights": weights}


def _held_selection(work: Path) -> dict:
    """The selection of the verdicts in ``work`` (cheapest first when none was recorded)."""
    path = work / SELECTION
    return json.loads(path.read_text()) if path.is_file() else {"seed": None, "sample": None, "weights": {}}


def _deadline(args: argparse.Namespace) -> float:
    if args.until:
        hour, minute = (int(x) for x in args.until.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return (at if at > now else at + dt.timedelta(days=1)).timestamp()
    return time.time() + args.budget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutmut", default=shutil.which("mutmut") or "/tmp/peers/mut-venv/bin/mutmut",
                        help="the mutmut 3.8 executable (its venv needs fgmpsim's dependencies)")
    parser.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS), help="folders or .py files to mutate")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), help="test files (globs) to run")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=float, default=3600.0, help="wall-clock seconds of mutation (default 3600)")
    budget.add_argument("--until", metavar="HH:MM", help="stop at this UTC clock time instead")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of mutmut and its tests (default 10)")
    parser.add_argument("--seed", type=int, help="test mutants in a random order drawn from this seed (default: "
                        "mutmut's cheapest first): those run before the budget ends are a uniform sample of each file")
    parser.add_argument("--sample", type=int, metavar="N", help="with --seed: test only the first N of that order")
    parser.add_argument("--weight", nargs="+", default=[], metavar="FILE=W",
                        help="with --seed: draw the mutants of FILE W times as fast as the others (W > 0)")
    parser.add_argument("--timeout-multiplier", type=float, default=3.0)
    parser.add_argument("--timeout-constant", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "mutation")
    parser.add_argument("--report", type=Path, default=ROOT / REPORT_JSON)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rerun-survivors", nargs="*", metavar="GLOB",
                      help="re-test the report's undetected mutants that have no written reason (only those whose "
                           "names match a GLOB, if given)")
    mode.add_argument("--report-only", action="store_true", help="write the report from the work folder, run nothing")
    parser.add_argument("--fresh", action="store_true",
                        help="forget the work folder's mutants and verdicts (do this after the sources changed)")
    args = parser.parse_args(argv)
    if args.until and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", args.until):
        parser.error(f"--until {args.until!r}: give a UTC clock time HH:MM")
    if not Path(args.mutmut).is_file():
        parser.error(f"--mutmut {args.mutmut}: no such file; install mutmut in its own venv (see --help)")
    selection = _selection(parser, args)
    tests = sorted({str(p.relative_to(ROOT)) for g in args.tests for p in ROOT.glob(g)})
    if not tests:
        parser.error(f"--tests {' '.join(args.tests)}: no test file matches")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/mutation.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    start, started = time.time(), f"{_utc_now()} UTC"
    if not args.report_only:
        _sync(work)
        config = _config(args.paths, tests, args.timeout_multiplier, args.timeout_constant)
        if args.fresh or not (work / "setup.cfg").is_file() or (work / "setup.cfg").read_text() != config:
            shutil.rmtree(work / "mutants", ignore_errors=True)   # mutmut's test map covers the mutated files only
            (work / "sessions.json").unlink(missing_ok=True)
            (work / SELECTION).unlink(missing_ok=True)
            (work / "setup.cfg").write_text(config)
        if args.rerun_survivors is None:
            held = json.loads((work / SELECTION).read_text()) if (work / SELECTION).is_file() else None
            if held is not None and held != selection:
                parser.error(f"the work folder holds verdicts of the selection {held}, not {selection}: give the same "
                             "--seed/--sample/--weight, or --fresh to start over")
            (work / SELECTION).write_text(json.dumps(selection) + "\n")
        names = []
        if args.rerun_survivors is not None:
            globs = args.rerun_survivors or ["*"]
            names = [s["mutant"] for s in json.loads(args.report.read_text())["survivors"]
                     if not s["explanation"] and any(fnmatch.fnmatchcase(s["mutant"], g) for g in globs)]
            if not names:
                print("no undetected mutants to re-run")
                return 0
        stopped = _run_mutmut(args.mutmut, work, names, args.workers, _deadline(args), args.nice,
                              _held_selection(work))
        session = {"command": command.strip(), "started_utc": started, "wall_s": round(time.time() - start, 1),
                   "budget_stopped": stopped}
        (work / "sessions.json").write_text(json.dumps([*_sessions(work), session], indent=1) + "\n")
    report = write_report(work, args.mutmut, args.paths, tests, _sessions(work), _held_selection(work), args.report)
    parsed = parse_report(report)
    totals = parsed.totals()
    score = parsed.score(totals)
    print(f"wrote {args.report}: " + ", ".join(f"{k} {v}" for k, v in totals.items())
          + (f"; score {100 * score:.1f}%" if score is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
