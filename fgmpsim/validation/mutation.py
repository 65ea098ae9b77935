"""The stored mutation-testing report: read and check ``docs/results/mutation_report.json`` (written by
``benchmarks/mutation.py``, a run of hours that is not part of CI) and render it for ``docs/validation.md``.

A mutant is one small change to the simulator's source (an operator, a constant, a dropped argument). The suite
*kills* it when a test fails, *times out* when the tests exceed their CPU limit, *crashes* when the test process
dies by a signal; all three count as detected. It *survives* when the tests pass, has *no tests* when no selected
test calls the mutated function, is *suspicious* on any other exit, and is *not run* when the run's wall-clock
budget ended first. Score = detected / run (every status but ``not_run``).

When the run drew its mutants in a random order (``selection.seed``), the mutants run are, within each file, a
uniform random sample of that file's, and :meth:`MutationReport.estimate` turns the per-file sample scores into an
estimate of the score over every mutant, with a 95% interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgmpsim.errors import ConfigError

REPORT_JSON = "docs/results/mutation_report.json"
"""The stored report, relative to the repository root."""
FORMAT = 1
"""Version of the report's layout (``format`` key)."""
DETECTED = ("killed", "timeout", "crashed")
UNDETECTED = ("survived", "no_tests", "suspicious")
STATUSES = (*DETECTED, *UNDETECTED, "not_run")
"""Every status a mutant can have, in report order."""
_FIX = "regenerate it with `python benchmarks/mutation.py --report-only`"


@dataclass(frozen=True)
class Survivor:
    """One undetected mutant: where (``file``, 1-based ``line`` of the first changed line, ``None`` if the diff
    could not be placed), the unified ``diff`` of its function, and the reason it cannot be killed, if written."""

    mutant: str
    status: str
    file: str
    line: int | None
    diff: str
    explanation: str | None

    @property
    def change(self) -> str:
        """The changed lines of the diff (``-`` then ``+``, stripped), joined by `` -> ``."""
        removed = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
        added = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        return " / ".join(removed) + " -> " + " / ".join(added)


@dataclass(frozen=True)
class Session:
    """One call of the runner that tested mutants: its ``command``, when it started (``started_utc``), its
    wall-clock seconds and whether its budget stopped it."""

    command: str
    started_utc: str
    wall_s: float
    budget_stopped: bool


@dataclass(frozen=True)
class Selection:
    """The order the mutants were tested in: ``seed`` ``None`` = mutmut's cheapest first; else a random order from
    that seed, in which a file listed in ``weights`` is drawn that many times as fast as the others, and ``sample``
    (if set) caps how many are tested."""

    seed: int | None
    sample: int | None
    weights: dict[str, float]


CHEAPEST_FIRST = Selection(None, None, {})


@dataclass(frozen=True)
class Estimate:
    """The score over every mutant of the files with at least one run (``covered`` of ``total`` mutants), from a
    random sample: ``score`` +- ``half_width`` (95%)."""

    score: float
    half_width: float
    covered: int
    total: int


@dataclass(frozen=True)
class MutationReport:
    """A parsed report: how it was made (``tool``, ``source_commit``, ``generated_utc``, ``paths`` mutated,
    ``tests`` run, the ``sessions`` whose verdicts it holds, oldest first), counts per module (module path ->
    status -> mutants) and the survivors."""

    tool: str
    source_commit: str
    generated_utc: str
    paths: tuple[str, ...]
    tests: tuple[str, ...]
    sessions: tuple[Session, ...]
    modules: dict[str, dict[str, int]]
    survivors: tuple[Survivor, ...]
    selection: Selection = CHEAPEST_FIRST

    def totals(self) -> dict[str, int]:
        """Mutants per status over every module."""
        return {s: sum(counts[s] for counts in self.modules.values()) for s in STATUSES}

    @staticmethod
    def score(counts: dict[str, int]) -> float | None:
        """Detected / run for one set of counts; ``None`` when none ran."""
        ran = sum(counts[s] for s in STATUSES if s != "not_run")
        return sum(counts[s] for s in DETECTED) / ran if ran else None

    def estimate(self) -> Estimate | None:
        """The stratified estimate of the score over every mutant (each file a stratum: its sample score weighted
        by its number of mutants), for a random-order run; ``None`` for a cheapest-first one or when none ran.
        Variance per file ``(1 - n/N) p(1-p)/n`` (finite population ``N``, ``n`` run) with ``p = (d+1)/(n+2)``
        (``d`` detected), which keeps a file whose few mutants were all killed from claiming zero spread; the
        interval is the normal one, +-1.96 standard deviations."""
        if self.selection.seed is None:
            return None
        strata = []
        for counts in self.modules.values():
            size, ran = sum(counts.values()), sum(counts.values()) - counts["not_run"]
            if ran:
                strata.append((size, ran, sum(counts[s] for s in DETECTED)))
        covered = sum(size for size, _, _ in strata)
        if not covered:
            return None
        score = sum(size * detected / ran for size, ran, detected in strata) / covered
        variance = sum((size / covered) ** 2 * (1 - ran / size) * (detected + 1) * (ran - detected + 1)
                       / (ran + 2) ** 2 / ran for size, ran, detected in strata)
        return Estimate(score, 1.96 * math.sqrt(variance), covered, sum(sum(c.values()) for c in self.modules.values()))


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data or not isinstance(data[key], kind) or isinstance(data[key], bool) and kind is not bool:
        raise ConfigError(f"mutation report: {where}{key} is missing or not a {getattr(kind, '__name__', kind)}",
                          f"{where}{key}", _FIX)
    return data[key]


def _counts(module: str, counts: Any) -> dict[str, int]:
    where = f"modules.{module}"
    if not isinstance(counts, dict) or set(counts) != set(STATUSES):
        raise ConfigError(f"mutation report: {where} must count exactly {', '.join(STATUSES)}", where, _FIX)
    for status, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"mutation report: {where}.{status} must be an integer >= 0, got {n!r}",
                              f"{where}.{status}", _FIX)
    return {s: counts[s] for s in STATUSES}


def _session(i: int, item: Any) -> Session:
    where = f"sessions[{i}]."
    if not isinstance(item, dict):
        raise ConfigError(f"mutation report: sessions[{i}] is not a mapping", f"sessions[{i}]", _FIX)
    return Session(_need(item, "command", str, where), _need(item, "started_utc", str, where),
                   float(_need(item, "wall_s", (int, float), where)), _need(item, "budget_stopped", bool, where))


def _survivor(i: int, item: Any) -> Survivor:
    where = f"survivors[{i}]."
    if not isinstance(item, dict):
        raise ConfigError(f"mutation report: survivors[{i}] is not a mapping", f"survivors[{i}]", _FIX)
    status = _need(item, "status", str, where)
    if status not in UNDETECTED:
        raise ConfigError(f"mutation report: {where}status {status!r} is not one of {', '.join(UNDETECTED)}",
                          f"{where}status", _FIX)
    line = item.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
        raise ConfigError(f"mutation report: {where}line must be a line number or null, got {line!r}",
                          f"{where}line", _FIX)
    explanation = item.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        raise ConfigError(f"mutation report: {where}explanation must be text or null", f"{where}explanation", _FIX)
    return Survivor(_need(item, "mutant", str, where), status, _need(item, "file", str, where), line,
                    _need(item, "diff", str, where), explanation)


def _selection(data: dict[str, Any]) -> Selection:
    if "selection" not in data:
        return CHEAPEST_FIRST
    item = _need(data, "selection", dict, "")
    seed, sample, weights = item.get("seed"), item.get("sample"), item.get("weights", {})
    for key, value in (("seed", seed), ("sample", sample)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"mutation report: selection.{key} must be an integer or null, got {value!r}",
                              f"selection.{key}", _FIX)
    if not isinstance(weights, dict) or not all(isinstance(w, (int, float)) and w > 0 for w in weights.values()):
        raise ConfigError("mutation report: selection.weights must map files to numbers > 0", "selection.weights",
                          _FIX)
    return Selection(seed, sample, {f: float(w) for f, w in weights.items()})


def parse_report(data: Any) -> MutationReport:
    """Check a loaded report (the JSON's top-level mapping) and build the record. Raises :class:`ConfigError`
    naming the field when a key is missing or ill-typed, or when the survivors listed for a module do not match
    its undetected counts."""
    if not isinstance(data, dict):
        raise ConfigError("mutation report: the top level must be a mapping", "report", _FIX)
    if data.get("format") != FORMAT:
        raise ConfigError(f"mutation report: format {data.get('format')!r} is not {FORMAT}", "format", _FIX)
    modules = {m: _counts(m, c) for m, c in _need(data, "modules", dict, "").items()}
    survivors = tuple(_survivor(i, s) for i, s in enumerate(_need(data, "survivors", list, "")))
    for module, counts in modules.items():
        listed = sum(1 for s in survivors if s.file == module)
        if listed != sum(counts[s] for s in UNDETECTED):
            raise ConfigError(f"mutation report: {module} counts {sum(counts[s] for s in UNDETECTED)} undetected "
                              f"mutants but lists {listed} survivors", f"modules.{module}", _FIX)
    strays = sorted({s.file for s in survivors} - set(modules))
    if strays:
        raise ConfigError(f"mutation report: survivors in {strays[0]}, which has no counts", "survivors", _FIX)
    sessions = tuple(_session(i, x) for i, x in enumerate(_need(data, "sessions", list, "")))
    return MutationReport(
        tool=_need(data, "tool", str, ""), source_commit=_need(data, "source_commit", str, ""),
        generated_utc=_need(data, "generated_utc", str, ""), paths=tuple(_need(data, "paths", list, "")),
        tests=tuple(_need(data, "tests", list, "")), sessions=sessions, modules=modules, survivors=survivors,
        selection=_selection(data))


def load_report(path: Path) -> MutationReport | None:
    """The stored report at ``path``, or ``None`` when there is none."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"mutation report {path} is not JSON: {err.msg} at line {err.lineno}", "report",
                          _FIX) from None
    return parse_report(data)


def _code(text: str) -> str:
    """``text`` as a Markdown inline code span inside a table cell (pipes escaped)."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _how_chosen(report: MutationReport, totals: dict[str, int], numbers: dict[str, Any]) -> str:
    """The sentence saying which mutants were run and what their score says of all (adds the estimate to
    ``numbers``)."""
    total, sel = sum(totals.values()), report.selection
    if sel.seed is None:
        return (f" {totals['not_run']} of {total} mutants were not run (wall-clock budget); mutmut runs mutants in "
                "order of the estimated time of their tests, so the ones not run are those covered by the slowest "
                "test sets." if totals["not_run"] else "")
    ran = total - totals["not_run"]
    drawn = (f", files {', '.join(f'`{f}` x{w:g}' for f, w in sorted(sel.weights.items()))} drawn that many times "
             "as fast as the others" if sel.weights else "")
    cap = f", at most {sel.sample}" if sel.sample is not None else ""
    text = (f" {ran} of {total} mutants were run, in a random order (seed {sel.seed}{drawn}{cap}) until the "
            "wall-clock budget ended: within each file the mutants run are a uniform random sample of its mutants.")
    est = report.estimate()
    if est is not None:
        numbers.update(mutation_score_estimate=est.score, mutation_score_ci95=est.half_width)
        over = (f"all {est.total} mutants" if est.covered == est.total else
                f"the {est.covered} of the {est.total} mutants in files with at least one mutant run")
        text += (f" **Estimated score over {over}: {_pct(est.score)} +- {100 * est.half_width:.1f} "
                 "points** (95%; each file's sample score weighted by its number of mutants, normal interval, "
                 "finite-population corrected, per-file spread from (detected + 1) / (run + 2)).")
    return text


def mutation_section(root: Path) -> tuple[str, dict[str, Any]]:
    """The "Mutation score" section of docs/validation.md from the stored report under ``root``, and its numbers."""
    report = load_report(root / REPORT_JSON)
    lines = ["## 6. Mutation score", ""]
    if report is None:
        lines.append(f"Not yet run: no stored report `{REPORT_JSON}` (`python benchmarks/mutation.py` writes it; "
                     "a run takes hours and is not part of CI).")
        return "\n".join(lines), {}
    totals = report.totals()
    ran = sum(totals.values()) - totals["not_run"]
    score = MutationReport.score(totals)
    explained = sum(1 for s in report.survivors if s.explanation)
    numbers = {"mutation_score": score, "mutation_mutants_run": ran, "mutation_mutants_total": sum(totals.values()),
               "mutation_survivors": len(report.survivors), "mutation_survivors_explained": explained}
    partial = _how_chosen(report, totals, numbers)
    sessions = "; ".join(f"`{x.command}` ({x.started_utc}, {x.wall_s / 60:.0f} min"
                         + (", stopped by its budget)" if x.budget_stopped else ")") for x in report.sessions)
    commit, plus, state = report.source_commit.partition("+")
    lines += [f"Stored report `{REPORT_JSON}` ({report.tool}, source commit `{commit[:12]}{plus}{state}`, "
              f"written {report.generated_utc}), from {len(report.sessions)} session(s): {sessions}. "
              f"Mutated: {', '.join(f'`{p}`' for p in report.paths)}; tests: "
              f"{', '.join(f'`{t}`' for t in report.tests)}. Each mutant runs only the selected tests that call its "
              "function (mutmut's per-function test map); a timeout (CPU limit) or a crash of the test process "
              "counts as detected. `fgmpsim validate` reads this file; `--full` does not re-run it.", "",
              f"**Score: {_pct(score)}** ({sum(totals[s] for s in DETECTED)} detected of {ran} mutants run; "
              f"{len(report.survivors)} undetected, {explained} of them explained).{partial}", "",
              "| module | mutants | killed | timeout | crashed | survived | no tests | suspicious | not run | score |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for module, counts in sorted(report.modules.items()):
        if not sum(counts.values()):
            continue   # nothing to mutate (an __init__ of re-exports)
        lines.append(f"| `{module}` | {sum(counts.values())} | " + " | ".join(str(counts[s]) for s in STATUSES)
                     + f" | {_pct(MutationReport.score(counts))} |")
    lines.append(f"| all | {sum(totals.values())} | " + " | ".join(str(totals[s]) for s in STATUSES)
                 + f" | {_pct(score)} |")
    if report.survivors:
        lines += ["", "Every undetected mutant (the full diffs are in the JSON). *why not killed*: the reason the "
                  "mutant is equivalent or cannot be observed, from `docs/results/mutation_explanations.yaml`; "
                  "blank = open, a test should kill it:", "",
                  "| where | status | change | why not killed |", "| --- | --- | --- | --- |"]
        for s in sorted(report.survivors, key=lambda s: (s.file, s.line or 0, s.mutant)):
            where = f"{s.file}:{s.line}" if s.line else s.file
            lines.append(f"| `{where}` | {s.status.replace('_', ' ')} | {_code(s.change)} | "
                         f"{(s.explanation or '').replace('|', '/')} |")
    return "\n".join(lines), numbers
