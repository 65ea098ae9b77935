"""fgmpsim demo: both workloads through fgmp and fp8_baseline, headline numbers from the runs, files written."""

from __future__ import annotations

import pandas as pd
import pytest

import fgmpsim
import fgmpsim.cli as cli
from fgmpsim.jobs import demo

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return demo(tmp_path_factory.mktemp("demo"), tokens=32)


def test_demo_writes_its_tables_and_plots(result):
    names = {path.name for path in result.files}
    assert names == {"headline.csv", "headline.md", "comparison.csv", "energy_smollm2-135m.png",
                     "energy_llama-2-7b-prefill-32.png", "roofline_smollm2-135m.png",
                     "roofline_llama-2-7b-prefill-32.png", "precision_map.png"}
    for path in result.files:
        assert path.parent == result.out and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG
    assert "| smollm2-135m | energy |" in (result.out / "headline.md").read_text()
    assert result.seconds > 0


def test_headline_is_the_direct_simulation_of_both_workloads(result):
    head = pd.read_csv(result.out / "headline.csv").set_index(["workload", "metric"])
    trace = fgmpsim.synth_trace("llama-2-7b", tokens=32, phase="prefill", fp4_fraction=0.7, seed=0)
    runs = {a: fgmpsim.simulate(trace, fgmpsim.load_arch(a)).summary() for a in ("fgmp", "fp8_baseline")}
    row = head.loc[("llama-2-7b-prefill-32", "energy_pj")]
    assert row["fgmp"] == pytest.approx(runs["fgmp"]["energy_pj"], rel=1e-12)
    assert row["vs_fp8"] == pytest.approx(runs["fgmp"]["energy_pj"] / runs["fp8_baseline"]["energy_pj"] - 1,
                                          rel=1e-9)
    weights = head.loc[("llama-2-7b-prefill-32", "weight_bytes")]
    assert weights["fp8_baseline"] == runs["fp8_baseline"]["weight_bytes"]
    area = head.loc[("smollm2-135m", "area_mm2")]
    assert area["vs_fp8"] == pytest.approx(area["fgmp"] / area["fp8_baseline"] - 1, rel=1e-12)
    # the real trace's manifests measured perplexities (FGMP 70% and the FP8 export); the synthetic one did not
    assert head.loc[("smollm2-135m", "perplexity"), "fgmp"] == pytest.approx(15.80, abs=5e-3)
    assert ("llama-2-7b-prefill-32", "perplexity") not in head.index


def test_cli_demo_prints_the_headline_and_wall_time(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("demo",))
    assert cli.main(["demo", "--out", str(tmp_path / "d"), "--tokens", "16"]) == 0
    text = capsys.readouterr().out
    assert "smollm2-135m" in text and "llama-2-7b-prefill-16" in text and "wall time" in text
    assert (tmp_path / "d" / "headline.md").is_file()


def test_cli_demo_bad_tokens_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("demo",))
    assert cli.main(["demo", "--tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
