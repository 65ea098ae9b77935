"""Worker side of the fuzz suite: run one case, classify how it ended, check every result it produced.

A case must end in one of two ways:

* ``typed``: a :class:`~fgmpsim.errors.FgmpsimError` that names a field, on one line of reasonable length (for
  the CLI: exit status 2 and exactly one ``error: <what> (<field>): <fix>`` line on stderr);
* ``valid``: a result that passes :func:`sanity_problems` (finite, non-negative, utilization <= 1, compute +
  stalls = cycles, MACs conserved, the analytic bound <= cycles, and on tiny cases the per-cycle reference engine
  equal to the tile engine).

Anything else is a failure: ``untyped`` (another exception, or a typed error without a field or spanning lines),
``insane`` (a result that fails a sanity check: a silently wrong number); the parent adds ``hang`` and ``crash``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fgmpsim.arch import load_arch
from fgmpsim.arch.record import Arch
from fgmpsim.errors import FgmpsimError, excerpt
from fgmpsim.sim import simulate
from fgmpsim.sim.result import STALLS, RunResult
from fgmpsim.testing.worker import Outcome
from fgmpsim.trace import GemmOp, SyntheticMap, Trace, load_trace

TYPED, VALID, UNTYPED, INSANE = "typed", "valid", "untyped", "insane"
MAX_ERROR_CHARS = 2000
REFERENCE_MAX_CYCLES = 20_000
"""Tile-engine cycles under which a valid result is also run on the per-cycle reference engine and compared."""
_CLI_ERROR = re.compile(r"^error: .+ \(.+\)")


def fixture_trace() -> Trace:
    """The small trace every simulating case runs: three ops with consumer wiring (AQU), dense and lazy maps, a
    3-D attention map (repeat 2) and a padded output (N = 24 is not a multiple of 16)."""
    rng = np.random.default_rng(0)
    ops = (GemmOp("q", 0, "linear", 8, 32, 24, 1, rng.random((24, 2)) < 0.3, rng.random((8, 2)) < 0.4,
                  consumer="qk"),
           GemmOp("qk", 0, "attn_qk", 8, 16, 8, 2, SyntheticMap((2, 8, 1), 5, 3, "qk/weight", 0.5, 0.5),
                  rng.random((2, 8, 1)) < 0.5, static_weight=False, consumer="o"),
           GemmOp("o", 0, "linear", 8, 16, 16, 1, rng.random((16, 1)) < 0.2, rng.random((8, 1)) < 0.5))
    return Trace("fuzz-fixture", ops, meta={"fp4_fraction_achieved": {"weight": 0.7, "act": 0.6}})


def sanity_problems(result: RunResult, trace: Trace, arch: Arch) -> list[str]:
    """Every way ``result`` is not a sane simulation of ``trace`` on ``arch`` (empty when it is)."""
    problems = []
    frame = result.to_frame()
    numeric = frame.select_dtypes(include="number").astype("float64")
    values = numeric.to_numpy()
    if not np.isfinite(values).all():
        problems.append(f"non-finite values in {sorted(numeric.columns[~np.isfinite(values).all(axis=0)])}")
    if (values < 0).any():
        problems.append(f"negative values in {sorted(numeric.columns[(values < 0).any(axis=0)])}")
    by_name = {op.name: op for op in trace.ops}
    for row in result.rows:
        op = by_name[row["op"]]
        if row["compute_cycles"] + sum(row[s] for s in STALLS) != row["cycles"]:
            problems.append(f"op {row['op']}: compute + stalls != cycles")
        if row["macs"] != op.m * op.k * op.n * op.repeat:
            problems.append(f"op {row['op']}: {row['macs']} MACs, expected M*K*N*repeat = {op.macs}")
        if row["macs"] > row["cycles"] * result.peak_macs_per_cycle:
            problems.append(f"op {row['op']}: more MACs than the peak allows in its cycles")
        if row["bound_cycles"] > row["cycles"]:
            problems.append(f"op {row['op']}: analytic lower bound {row['bound_cycles']} > cycles {row['cycles']}")
    summary = result.summary()
    if not 0.0 <= summary["utilization"] <= 1.0:
        problems.append(f"utilization {summary['utilization']}")
    if not (np.isfinite(summary["seconds"]) and summary["seconds"] > 0):
        problems.append(f"seconds {summary['seconds']}")
    if summary["macs"] != trace.macs:
        problems.append("total MACs not conserved")
    return problems


def _reference_problems(result: RunResult, trace: Trace, arch: Arch) -> list[str]:
    """The reference engine must equal the tile engine cycle for cycle and count for count (tiny cases only)."""
    if result.summary()["cycles"] > REFERENCE_MAX_CYCLES:
        return []
    try:
        reference = simulate(trace, arch, engine="reference")
    except FgmpsimError:  # the reference engine's own size guard: not a disagreement
        return []
    keys = ("cycles", "compute_cycles", *STALLS, "macs", "dram_bytes", "glb_bytes", "pe_buffer_bytes")
    return [f"op {tile['op']}: {key} tile {tile[key]} != reference {ref[key]}"
            for tile, ref in zip(result.rows, reference.rows) for key in keys if tile[key] != ref[key]]


def _typed(err: FgmpsimError) -> Outcome:
    text = str(err)
    if not err.field or "\n" in text or len(text) > MAX_ERROR_CHARS:
        return Outcome(UNTYPED, f"{type(err).__name__} without a field or not one short line: {excerpt(text, 200)}")
    return Outcome(TYPED, excerpt(text, 200), err.field)


class CaseRunner:
    """Runs cases of every family against a fixture trace saved in ``fixture_dir``."""

    def __init__(self, fixture_dir: str) -> None:
        self.fixture = Path(fixture_dir)
        self.trace = load_trace(self.fixture / "trace")
        self.manifest = (self.fixture / "trace" / "manifest.yaml").read_bytes()
        self.maps = (self.fixture / "trace" / "maps.npz").read_bytes()

    def run(self, family: str, payload: dict[str, Any]) -> Outcome:
        scratch = Path(tempfile.mkdtemp(prefix="case-", dir=self.fixture))
        try:
            return getattr(self, f"_{family}")(payload, scratch)
        except FgmpsimError as err:
            return _typed(err)
        except Exception as err:  # noqa: BLE001 - classifying every exception is the point
            where = traceback.extract_tb(err.__traceback__)[-1]
            return Outcome(UNTYPED, f"{type(err).__name__}: {excerpt(str(err), 200)} at "
                                    f"{Path(where.filename).name}:{where.lineno}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _simulated(self, trace: Trace, arch: Arch) -> Outcome:
        result = simulate(trace, arch)
        problems = sanity_problems(result, trace, arch) or _reference_problems(result, trace, arch)
        return Outcome(INSANE, "; ".join(problems)[:500]) if problems else Outcome(VALID)

    def _arch_yaml(self, payload: dict[str, Any], scratch: Path) -> Outcome:
        configs = scratch / "configs"
        for name, data in payload["files"].items():
            path = scratch / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for name, target in payload.get("links", {}).items():
            (scratch / name).symlink_to(scratch / target)
        arch = load_arch(configs / "main.yaml", payload.get("overrides"))
        return self._simulated(self.trace, arch)

    def _overrides(self, payload: dict[str, Any], scratch: Path) -> Outcome:
        return self._simulated(self.trace, load_arch(payload["arch"], payload["overrides"]))

    def _write_trace(self, scratch: Path, manifest: bytes, maps: bytes) -> Path:
        directory = scratch / "trace"
        directory.mkdir()
        (directory / "manifest.yaml").write_bytes(manifest)
        (directory / "maps.npz").write_bytes(maps)
        return directory

    def _manifest(self, payload: dict[str, Any], scratch: Path) -> Outcome:
        trace = load_trace(self._write_trace(scratch, payload["manifest"], self.maps))
        return self._simulated(trace, load_arch("fgmp"))

    def _maps(self, payload: dict[str, Any], scratch: Path) -> Outcome:
        trace = load_trace(self._write_trace(scratch, payload["manifest"], payload["maps"]))
        return self._simulated(trace, load_arch("fgmp"))

    def _cli(self, payload: dict[str, Any], scratch: Path) -> Outcome:
        import fgmpsim.cli as cli

        (scratch / "file.txt").write_text("not a directory")
        argv = [arg.replace("{trace}", str(self.fixture / "trace")).replace("{tmp}", str(scratch))
                for arg in payload["argv"]]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = cli.main(argv)
            except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
                status = exit_.code if isinstance(exit_.code, int) else 2
        lines = stderr.getvalue().strip().splitlines()
        if status == 0:
            return Outcome(VALID)
        if status == 2 and len(lines) == 1 and _CLI_ERROR.match(lines[0]) and len(lines[0]) <= MAX_ERROR_CHARS:
            return Outcome(TYPED, excerpt(lines[0], 200), lines[0].split("(")[-1].split(")")[0])
        return Outcome(UNTYPED, f"exit {status}, stderr {excerpt(stderr.getvalue(), 300)}")


def save_fixture(directory: str | os.PathLike[str]) -> Path:
    """Save :func:`fixture_trace` into ``directory/trace`` (the worker and the case generators read it)."""
    return fixture_trace().save(Path(directory) / "trace")
