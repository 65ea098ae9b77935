"""``compare``: designs (each a trace on an arch) against a baseline arch running the same shapes.

The baseline simulates the first design's trace (or ``baseline_trace``, which must have the same ops and shapes) on
the baseline arch; on an FP8-only baseline every NVFP4 block is promoted to FP8, so it is the all-FP8 version of the
same GEMMs. Every design's trace must hold the same ops and shapes, so all rows compare like with like.
Perplexities come from each trace's manifest where it measured one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fgmpsim.analysis.comparison import Comparison, compare_results
from fgmpsim.analysis.metrics import manifest_perplexity
from fgmpsim.arch import Arch, load_arch
from fgmpsim.errors import ConfigError, TraceError
from fgmpsim.io.atomic import atomic_path, check_output_file
from fgmpsim.sim import RunResult, simulate
from fgmpsim.trace import Trace, load_trace

TraceLike = Trace | str | os.PathLike[str]
ArchLike = Arch | str | os.PathLike[str]


@dataclass(frozen=True)
class Design:
    """One compared design: a name, its trace (a :class:`Trace` or a trace directory) and its arch (an
    :class:`Arch`, a YAML path or a shipped name)."""

    name: str
    trace: TraceLike
    arch: ArchLike


@dataclass(frozen=True)
class CompareRun:
    """A finished comparison: the :class:`Comparison` table, every run by name (baseline included) and the archs
    they ran on (for rooflines)."""

    comparison: Comparison
    results: tuple[tuple[str, RunResult], ...]
    archs: tuple[tuple[str, Arch], ...]


def parse_design(text: str) -> Design:
    """``NAME=TRACE_DIR`` or ``NAME=TRACE_DIR@ARCH`` (the ``--design`` syntax) as a :class:`Design`; without
    ``@ARCH`` the arch is left empty for :func:`compare` to fill with its ``arch``."""
    name, sep, rest = text.partition("=")
    trace, at, arch = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not sep or not name.strip() or not trace.strip() or (at and not arch.strip()):
        raise ConfigError(f"bad design {text!r}", "--design",
                          "write NAME=TRACE_DIR or NAME=TRACE_DIR@ARCH, e.g. fgmp=traces/smollm2-135m-fgmp70@fgmp")
    return Design(name=name.strip(), trace=trace.strip(), arch=arch.strip())


def _trace(trace: TraceLike) -> Trace:
    return trace if isinstance(trace, Trace) else load_trace(trace)


def _arch(arch: ArchLike, overrides: Sequence[str]) -> Arch:
    return arch if isinstance(arch, Arch) else load_arch(arch, overrides=list(overrides))


def _shapes(trace: Trace) -> tuple[tuple, ...]:
    return tuple((op.name, op.kind, op.m, op.k, op.n, op.repeat) for op in trace.ops)


def _check_same_shapes(reference: Trace, other: Trace, who: str) -> None:
    if _shapes(reference) == _shapes(other):
        return
    ref, oth = _shapes(reference), _shapes(other)
    first = next((i for i, (a, b) in enumerate(zip(ref, oth)) if a != b), min(len(ref), len(oth)))
    what = (f"{len(oth)} ops vs {len(ref)}" if first >= min(len(ref), len(oth))
            else f"op {first} is {oth[first][0]} {oth[first][2:]} vs {ref[first][0]} {ref[first][2:]}")
    raise TraceError(f"{who}'s trace {other.name!r} has other GEMMs than {reference.name!r} ({what} as "
                     "name, M, K, N, repeat)", "trace", "compare designs exported from the same model and token count")


def compare(trace: TraceLike, arch: ArchLike = "fgmp", baseline: ArchLike = "fp8_baseline", *,
            designs: Sequence[Design] = (), name: str | None = None, baseline_trace: TraceLike | None = None,
            overrides: Sequence[str] = (), engine: str = "tile", attention: str = "causal") -> CompareRun:
    """Simulate ``trace`` on ``arch`` (named ``name``, default the arch's name) and every extra design, and the
    baseline arch on the same shapes; compare them (:func:`fgmpsim.analysis.compare_results`). ``overrides``
    (``--set`` strings) apply to every arch given by name or path, the baseline included. Raises
    :class:`~fgmpsim.errors.TraceError` for traces with other GEMMs, :class:`~fgmpsim.errors.ConfigError` for a
    repeated design name. ``attention`` (``causal`` or ``dense``) as :func:`fgmpsim.sim.simulate` takes it, for every
    run (``dense`` puts traces exported before causal masking was recorded on the same footing as newer ones)."""
    first = _trace(trace)
    first_arch = _arch(arch, overrides)
    runs: list[tuple[str, Trace, Arch]] = [(name or first_arch.name, first, first_arch)]
    for design in designs:
        design_trace = _trace(design.trace)
        _check_same_shapes(first, design_trace, f"design {design.name!r}")
        runs.append((design.name, design_trace, _arch(design.arch or arch, overrides)))
    names = [n for n, _, _ in runs]
    base_arch = _arch(baseline, overrides)
    if len(set(names)) != len(names) or base_arch.name in names:
        repeated = next(n for n in names if names.count(n) > 1 or n == base_arch.name)
        raise ConfigError(f"design name {repeated!r} is used twice (designs and baseline need distinct names)",
                          "--design", "give each design its own NAME (NAME=TRACE_DIR@ARCH)")
    base_trace = first if baseline_trace is None else _trace(baseline_trace)
    if baseline_trace is not None:
        _check_same_shapes(first, base_trace, "the baseline")
    base_run = simulate(base_trace, base_arch, engine=engine, attention=attention)
    results = {n: simulate(t, a, engine=engine, attention=attention) for n, t, a in runs}
    perplexities = {n: manifest_perplexity(t.meta) for n, t, _ in runs}
    perplexities[base_arch.name] = manifest_perplexity(base_trace.meta) if baseline_trace is not None else None
    comparison = compare_results(base_run, results, baseline_name=base_arch.name, perplexities=perplexities)
    return CompareRun(comparison=comparison, results=((base_arch.name, base_run), *results.items()),
                      archs=((base_arch.name, base_arch), *((n, a) for n, _, a in runs)))


def comparison_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if :func:`save_comparison` can write it (``.csv``, ``.parquet``, ``.json``, a writable place), else
    :class:`ConfigError` naming the fix."""
    return check_output_file(path, "--out", ConfigError, (".csv", ".parquet", ".json"))


def save_comparison(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write the comparison table (one row per design and scope) to ``.csv``, ``.parquet`` or ``.json``
    (records), atomically."""
    path = comparison_path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            comparison.frame.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            comparison.frame.to_parquet(tmp, index=False)
        else:
            comparison.frame.to_json(tmp, orient="records", indent=1)
    return path
