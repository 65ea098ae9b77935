"""The stored mutation report: parsing a hand-written one, its score and survivors in Markdown, and bad reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fgmpsim.errors import ConfigError
from fgmpsim.validation.mutation import REPORT_JSON, load_report, mutation_section, parse_report

DIFF = """--- fgmpsim/sim/a.py
+++ fgmpsim/sim/a.py
@@ -1,3 +1,3 @@
 def f(x):
-    return x < 0
+    return x <= 0
"""

TINY = {
    "format": 1, "tool": "mutmut 3.8.1", "source_commit": "0123456789abcdef",
    "generated_utc": "2026-01-01 00:10 UTC", "paths": ["fgmpsim/sim"], "tests": ["tests/test_a.py"],
    "sessions": [{"command": "python benchmarks/mutation.py --budget 60", "started_utc": "2026-01-01 00:00 UTC",
                  "wall_s": 120.0, "budget_stopped": True}],
    "modules": {
        "fgmpsim/sim/a.py": {"killed": 6, "timeout": 1, "crashed": 1, "survived": 1, "no_tests": 1,
                             "suspicious": 0, "not_run": 2},
        "fgmpsim/sim/b.py": {"killed": 3, "timeout": 0, "crashed": 0, "survived": 0, "no_tests": 0,
                             "suspicious": 0, "not_run": 0}},
    "survivors": [
        {"mutant": "fgmpsim.sim.a.x_f__mutmut_2", "status": "survived", "file": "fgmpsim/sim/a.py", "line": 12,
         "diff": DIFF, "explanation": "x is never 0 here"},
        {"mutant": "fgmpsim.sim.a.x_g__mutmut_1", "status": "no_tests", "file": "fgmpsim/sim/a.py", "line": None,
         "diff": DIFF.replace("x <= 0", "x | 0"), "explanation": None}]}


def _store(root: Path, data: object) -> Path:
    path = root / REPORT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_hand_written_report_gives_its_counts_score_and_survivors(tmp_path):
    report = load_report(_store(tmp_path, TINY))
    assert report.totals() == {"killed": 9, "timeout": 1, "crashed": 1, "survived": 1, "no_tests": 1,
                               "suspicious": 0, "not_run": 2}
    # detected = killed + timeout + crashed; run = every status but not_run
    assert report.score(report.modules["fgmpsim/sim/a.py"]) == 8 / 10
    assert report.score(report.totals()) == 11 / 13
    assert report.survivors[0].change == "return x < 0 -> return x <= 0"
    text, numbers = mutation_section(tmp_path)
    assert numbers == {"mutation_score": 11 / 13, "mutation_mutants_run": 13, "mutation_mutants_total": 15,
                       "mutation_survivors": 2, "mutation_survivors_explained": 1}
    assert "**Score: 84.6%** (11 detected of 13 mutants run; 2 undetected, 1 of them explained)." in text
    assert "2 of 15 mutants were not run" in text
    assert "1 session(s): `python benchmarks/mutation.py --budget 60` (2026-01-01 00:00 UTC, 2 min, stopped by " \
           "its budget)." in text
    assert "| `fgmpsim/sim/a.py` | 12 | 6 | 1 | 1 | 1 | 1 | 0 | 2 | 80.0% |" in text
    assert "| `fgmpsim/sim/b.py` | 3 | 3 | 0 | 0 | 0 | 0 | 0 | 0 | 100.0% |" in text
    assert "| all | 15 | 9 | 1 | 1 | 1 | 1 | 0 | 2 | 84.6% |" in text
    assert "| `fgmpsim/sim/a.py:12` | survived | `return x < 0 -> return x <= 0` | x is never 0 here |" in text
    assert "| `fgmpsim/sim/a.py` | no tests | `return x < 0 -> return x \\| 0` |  |" in text


def test_no_stored_report_says_how_to_make_one(tmp_path):
    text, numbers = mutation_section(tmp_path)
    assert numbers == {} and "Not yet run" in text and "benchmarks/mutation.py" in text


def _broken(edit) -> dict:
    data = copy.deepcopy(TINY)
    edit(data)
    return data


@pytest.mark.parametrize("data, field", [
    (_broken(lambda d: d.pop("tool")), "tool"),
    (_broken(lambda d: d.update(format=2)), "format"),
    (_broken(lambda d: d["modules"]["fgmpsim/sim/a.py"].pop("not_run")), "modules.fgmpsim/sim/a.py"),
    (_broken(lambda d: d["modules"]["fgmpsim/sim/b.py"].update(killed=-1)), "modules.fgmpsim/sim/b.py.killed"),
    (_broken(lambda d: d["survivors"][1].update(status="killed")), "survivors[1].status"),
    (_broken(lambda d: d["survivors"][0].update(line=0)), "survivors[0].line"),
    (_broken(lambda d: d["survivors"].pop()), "modules.fgmpsim/sim/a.py"),          # counts 2, lists 1
    (_broken(lambda d: d["survivors"][1].update(file="fgmpsim/sim/c.py")), "modules.fgmpsim/sim/a.py"),
    (_broken(lambda d: d["sessions"][0].update(budget_stopped="yes")), "sessions[0].budget_stopped"),
    (_broken(lambda d: d["sessions"][0].pop("command")), "sessions[0].command"),
    ([], "report"),
])
def test_a_bad_report_is_one_config_error_naming_the_field(data, field):
    with pytest.raises(ConfigError) as err:
        parse_report(data)
    assert err.value.field == field and "benchmarks/mutation.py" in err.value.fix


def test_a_report_that_is_not_json_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not JSON"):
        load_report(_store(tmp_path, "{"))


def test_a_random_order_run_gives_the_stratified_estimate_of_the_whole_score(tmp_path):
    data = _broken(lambda d: d.update(selection={"seed": 3, "sample": None, "weights": {"fgmpsim/sim/a.py": 2}}))
    text, numbers = mutation_section(_store(tmp_path, data).parents[2])
    # a.py: 8 of 10 run detected, 12 mutants; b.py: 3 of 3, 3 mutants -> (12 * 0.8 + 3 * 1) / 15
    assert numbers["mutation_score_estimate"] == pytest.approx(12.6 / 15)
    # a.py alone varies: (12/15)^2 * (1 - 10/12) * p(1-p)/10 with p = 9/12 -> 0.002; b.py was run whole
    assert numbers["mutation_score_ci95"] == pytest.approx(1.96 * 0.002 ** 0.5)
    assert "13 of 15 mutants were run, in a random order (seed 3, files `fgmpsim/sim/a.py` x2 drawn" in text
    assert "**Estimated score over all 15 mutants: 84.0% +- 8.8 points**" in text


def test_a_bad_selection_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError) as err:
        parse_report(_broken(lambda d: d.update(selection={"seed": "x"})))
    assert err.value.field == "selection.seed"
