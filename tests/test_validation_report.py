"""`fgmpsim validate` on the stored data (as CI runs it), the SCALE-Sim CSV reader, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.cli import main
from fgmpsim.errors import ConfigError
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace
from fgmpsim.validation import validate
from fgmpsim.validation.headline import HEADLINE_CSV
from fgmpsim.validation.mutation import REPORT_JSON, load_report
from fgmpsim.validation.scalesim_table import scalesim_table

ROOT = Path(__file__).resolve().parents[1]


def test_validate_command_regenerates_the_report_from_stored_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "validation.md"
    assert main(["validate", "--out", str(out)]) == 0
    text = out.read_text()
    for heading in ("## 1. Cycles against SCALE-Sim", "## 2. Energy against ZigZag",
                    "## 3. On-chip energy against published silicon", "## 4. The paper's headline, side by side",
                    "## 5. Engine agreement", "## 6. Mutation score"):
        assert heading in text
    stored = load_report(ROOT / REPORT_JSON)     # the committed mutation report, rendered as stored
    assert f"**Score: {100 * stored.score(stored.totals()):.1f}%**" in text
    assert all(f"`{s.file}:{s.line}`" in text for s in stored.survivors if s.line)
    summary = pd.read_csv(ROOT / HEADLINE_CSV, comment="#").set_index("arch")["energy_pj"]
    saving = 1 - summary["fgmp"] / summary["fp8_baseline"]
    assert f"Energy saved vs the all-FP8 accelerator: {100 * saving:.1f}%" in text
    assert "| default: NVFP4 blocks + E4M3 scale, FP8 blocks unscaled, 1-bit flag per 16-element block | " \
           "(fgmp.yaml as shipped) | 5.6125 | 29.8% |" in text
    assert "UNEXPLAINED" not in text
    for figure in ("validation_zigzag_energy.png", "validation_tornado.png"):
        assert (tmp_path / "figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".validation.md.*"))   # the temp file was renamed, not left behind
    printed = capsys.readouterr().out
    assert f"energy -{100 * saving:.1f}% vs FP8" in printed
    tests = re.search(r"`tests/test_sim_engines.py` \| [^|]+ \| (\d+) \|", text)
    assert tests and int(tests.group(1)) >= 8   # the 8 parametrized blocks of random GEMMs at least


def test_store_without_a_live_peer_is_one_line_error(capsys):
    assert main(["validate", "--store"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--zigzag-python" in err[0]


def test_a_zigzag_interpreter_that_does_not_run_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["validate", "--out", str(tmp_path / "v.md"), "--zigzag-python", str(tmp_path / "no-python")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(--zigzag-python)" in err[0]
    assert not (tmp_path / "v.md").exists()


def test_a_scalesim_interpreter_that_does_not_run_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["validate", "--out", str(tmp_path / "v.md"), "--scalesim-python", str(tmp_path / "no-python")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(--scalesim-python)" in err[0]
    assert not (tmp_path / "v.md").exists()


SCALESIM_VENV = Path("/tmp/peers/scalesim-venv/bin/python")


@pytest.mark.skipif(not SCALESIM_VENV.exists(), reason="no SCALE-Sim venv at /tmp/peers/scalesim-venv "
                                                       "(python -m venv ... && pip install scalesim 'numpy<2.3')")
def test_scalesim_rerun_live_equals_the_stored_total_cycles():
    from fgmpsim.validation.scalesim_table import live_cycles

    table = scalesim_table(ROOT)
    few = table.groupby(["array_rows", "array_cols"]).head(2)
    assert (live_cycles(str(SCALESIM_VENV), ROOT, few) == few["scalesim_total_cycles"]).all()


def test_validate_outside_the_repository_names_the_fix(tmp_path):
    with pytest.raises(ConfigError) as error:
        validate(tmp_path / "v.md", root=tmp_path)
    assert "repository root" in error.value.fix


def test_scalesim_table_reads_any_stored_csv_and_computes_our_cycles_live(tmp_path):
    assert scalesim_table(tmp_path) is None
    data = tmp_path / "tests" / "data"
    data.mkdir(parents=True)
    (data / "scalesim_example.csv").write_text(
        "# made by hand for this test\nArray Rows, Array Cols, M, K, N, SCALEsim_total_cycles\n"
        "16, 16, 64, 256, 256, 16127\n")
    table = scalesim_table(tmp_path)
    name, *overrides = table["fgmpsim_arch"].iloc[0].split()
    ours = simulate(gemm_trace(64, 256, 256, fp4_fraction=0.0), load_arch(name, overrides))
    assert table["fgmpsim_cycles"].iloc[0] == ours.rows[0]["cycles"]
    assert table["ratio"].iloc[0] == pytest.approx(16127 / ours.rows[0]["cycles"])
    (data / "scalesim_bad.csv").write_text("m,k\n1,16\n")
    assert "missing columns" in scalesim_table(tmp_path).set_index("file").loc["scalesim_bad.csv", "note"]
