"""fgmpsim.analysis + fgmpsim compare: changes recomputed from direct simulate runs, plots, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fgmpsim
import fgmpsim.cli as cli
from fgmpsim.analysis import (compare_results, energy_breakdown_plot, format_change, format_quantity,
                              fp4_fraction_plot, manifest_perplexity, pareto_front, pareto_mask, pareto_plot,
                              precision_map_plot, roofline_plot)
from fgmpsim.analysis.units import format_row
from fgmpsim.errors import ConfigError, TraceError
from fgmpsim.jobs import Design, compare, parse_design

TRACES = Path(__file__).resolve().parent.parent / "traces"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small():
    """A 271-GEMM SmolLM2-shaped synthetic trace of 16 tokens (every op kind), simulated directly on both archs."""
    trace = fgmpsim.synth_trace("smollm2-135m", tokens=16, fp4_fraction=0.7, seed=1)
    fgmp, fp8 = fgmpsim.load_arch("fgmp"), fgmpsim.load_arch("fp8_baseline")
    return trace, fgmpsim.simulate(trace, fgmp), fgmpsim.simulate(trace, fp8), fgmp


@pytest.fixture(scope="module")
def job(small):
    return compare(small[0], "fgmp", "fp8_baseline")


def test_total_changes_equal_those_of_two_direct_simulate_runs(small, job):
    _, fgmp, fp8, _ = small
    d, b = fgmp.summary(), fp8.summary()
    tokens = 16   # prefill, batch 1: every linear op has M = 16
    by_hand = {
        "energy_pj": d["energy_pj"] / b["energy_pj"] - 1,
        "pj_per_mac": d["pj_per_mac"] / b["pj_per_mac"] - 1,
        "cycles": d["cycles"] / b["cycles"] - 1,
        "utilization": d["utilization"] / b["utilization"] - 1,
        "tokens_per_s": (tokens / d["seconds"]) / (tokens / b["seconds"]) - 1,
        "j_per_token": (d["energy_pj"] / tokens) / (b["energy_pj"] / tokens) - 1,
        "power_w": (d["energy_pj"] / d["seconds"]) / (b["energy_pj"] / b["seconds"]) - 1,
        "weight_bytes": d["weight_bytes"] / b["weight_bytes"] - 1,
        "area_mm2": d["area_mm2"] / b["area_mm2"] - 1,
    }
    c = job.comparison
    assert c.baseline == "fp8_baseline" and c.designs == ("fgmp",)
    for metric, expected in by_hand.items():
        assert c.change("fgmp", metric) == pytest.approx(expected, rel=1e-9, abs=1e-12), metric
        assert c.change("fp8_baseline", metric) == 0.0
    assert c.total().at["fgmp", "energy_pj"] == pytest.approx(d["energy_pj"], rel=1e-12)
    assert c.total().at["fgmp", "j_per_token"] == pytest.approx(d["energy_pj"] * 1e-12 / tokens, rel=1e-12)
    assert np.isnan(c.change("fgmp", "perplexity"))   # a synthetic trace measured none


def test_per_kind_changes_equal_those_of_the_direct_runs_frames(small, job):
    _, fgmp, fp8, _ = small
    sums = {name: r.to_frame().groupby("kind")[["energy_pj", "cycles", "macs", "energy_dram_pj"]].sum()
            for name, r in (("fgmp", fgmp), ("fp8", fp8))}
    frame = job.comparison.frame.set_index(["design", "scope"])
    for kind in ("linear", "attn_qk", "attn_pv", "lm_head"):
        d, b = sums["fgmp"].loc[kind], sums["fp8"].loc[kind]
        row = frame.loc[("fgmp", kind)]
        assert row["energy_pj_vs_baseline"] == pytest.approx(d["energy_pj"] / b["energy_pj"] - 1, rel=1e-9)
        assert row["cycles_vs_baseline"] == pytest.approx(d["cycles"] / b["cycles"] - 1, rel=1e-9, abs=1e-12)
        assert row["energy_dram_pj_vs_baseline"] == pytest.approx(d["energy_dram_pj"] / b["energy_dram_pj"] - 1,
                                                                  rel=1e-9)
        assert row["pj_per_mac"] == pytest.approx(d["energy_pj"] / d["macs"], rel=1e-12)
    # kinds partition the total
    kinds = job.comparison.frame.query("design == 'fgmp' and scope != 'total'")
    assert kinds["energy_pj"].sum() == pytest.approx(fgmp.summary()["energy_pj"], rel=1e-12)
    assert kinds["j_per_token"].sum() == pytest.approx(frame.loc[("fgmp", "total"), "j_per_token"], rel=1e-12)


def test_the_baseline_is_the_all_fp8_version_of_the_same_shapes():
    fgmp70, fp8_trace = fgmpsim.load_trace(TRACES / "smollm2-135m-fgmp70"), fgmpsim.load_trace(TRACES / "smollm2-135m-fp8")
    run = compare(fgmp70, "fgmp", "fp8_baseline", baseline_trace=fp8_trace,
                  designs=[Design("nvfp4", TRACES / "smollm2-135m-nvfp4", "nvfp4")])
    promoted = dict(run.results)["fp8_baseline"].summary()
    # the FP8 export has every block in FP8 already: the promoted FGMP trace costs exactly the same
    direct = fgmpsim.simulate(fgmp70, fgmpsim.load_arch("fp8_baseline")).summary()
    assert promoted["energy_pj"] == direct["energy_pj"] and promoted["cycles"] == direct["cycles"]
    total = run.comparison.total()
    assert total.at["fgmp", "perplexity"] == manifest_perplexity(fgmp70.meta) == pytest.approx(15.802, abs=1e-3)
    assert total.at["fp8_baseline", "perplexity"] == pytest.approx(15.27, abs=5e-3)
    assert total.at["nvfp4", "perplexity"] == pytest.approx(23.17, abs=5e-3)
    assert run.comparison.designs == ("fgmp", "nvfp4")


def test_designs_with_other_gemms_are_refused(small):
    other = fgmpsim.gemm_trace(64, 64, 64)
    with pytest.raises(TraceError, match="other GEMMs"):
        compare(small[0], designs=[Design("g", other, "fgmp")])


def test_compare_results_refuses_no_designs_and_a_name_clash(small):
    _, fgmp, fp8, _ = small
    with pytest.raises(ConfigError):
        compare_results(fp8, {})
    with pytest.raises(ConfigError, match="baseline"):
        compare_results(fp8, {"fp8_baseline": fgmp})


@pytest.mark.parametrize("text, design", [
    ("a=traces/x", Design("a", "traces/x", "")),
    ("a=traces/x@nvfp4", Design("a", "traces/x", "nvfp4")),
    ("a=dir/t@arch_configs/my.yaml", Design("a", "dir/t", "arch_configs/my.yaml")),
])
def test_parse_design(text, design):
    assert parse_design(text) == design


@pytest.mark.parametrize("text", ["nameonly", "=traces/x", "a=", "a=traces/x@"])
def test_parse_design_rejects_bad_syntax(text):
    with pytest.raises(ConfigError) as err:
        parse_design(text)
    assert err.value.field == "--design"


def test_pareto_mask_by_hand():
    frame = pd.DataFrame({"e": [1.0, 2.0, 3.0, 2.0, 1.0, np.nan], "c": [5.0, 2.0, 1.0, 3.0, 5.0, 0.0]})
    # (2, 3) is dominated by (2, 2); the duplicate (1, 5) stays; NaN is never on the front
    assert pareto_mask(frame, ["e", "c"]).tolist() == [True, True, True, False, True, False]
    assert pareto_mask(frame, ["e"], maximize=["e"]).tolist() == [False, False, True, False, False, False]
    assert pareto_front(frame, ["e", "c"])["e"].tolist() == [1.0, 1.0, 2.0, 3.0]
    with pytest.raises(ConfigError):
        pareto_mask(frame, ["nope"])


def test_units_scale_to_the_magnitude():
    assert format_quantity(30.54e9, "energy_pj") == "30.54 mJ"
    assert format_quantity(10.34e12, "energy_pj") == "10.34 J"
    assert format_quantity(1.5 * 2 ** 30, "bytes") == "1.500 GiB"
    assert format_quantity(0.777, "fraction") == "77.7%"
    assert format_row([38.41e9, 3.1e6], "energy_pj") == ("mJ", ["38.41", "0.003100"])
    assert format_change(-0.2049) == "-20.5%" and format_change(float("nan")) == "-" and format_change(0.0) == "0"


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5000


def test_every_plot_writes_a_png_and_svg_on_request(small, job, tmp_path):
    trace, fgmp, _, arch = small
    total = job.comparison.total().reset_index()
    _png(energy_breakdown_plot(total, tmp_path / "e.png"))
    _png(pareto_plot(total, "cycles", "energy_pj", tmp_path / "p.png", label="design"))
    _png(roofline_plot(fgmp, arch, tmp_path / "r.png"))
    _png(precision_map_plot(trace.ops[0].weight_map_array(), tmp_path / "m.png"))
    curve = pd.DataFrame({"fp4_fraction": [0.0, 0.5, 1.0], "energy_pj_vs_baseline": [0.0, -0.1, -0.3],
                          "weight_bytes_vs_baseline": [0.06, -0.2, -0.4]})
    _png(fp4_fraction_plot(curve, ["energy_pj_vs_baseline", "weight_bytes_vs_baseline"], tmp_path / "f.png",
                           marks=[("paper: energy -14%", 0.7, -0.14)]))
    absolute = pd.DataFrame({"fp4_fraction": [0.0, 1.0, 0.0, 1.0], "energy_pj": [14e12, 9e12, 7e12, 5e12],
                             "model": ["a", "a", "b", "b"]})
    _png(fp4_fraction_plot(absolute, ["energy_pj"], tmp_path / "f2.png", series="model"))
    svg = energy_breakdown_plot(total, tmp_path / "e.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    with pytest.raises(ConfigError) as err:
        energy_breakdown_plot(total, tmp_path / "e.jpg")
    assert err.value.field == "--plot"
    with pytest.raises(ConfigError):
        roofline_plot(fgmp, fgmpsim.load_arch("fp8_baseline"), tmp_path / "r2.png")


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("compare",))
    return cli.main


def test_cli_compare_prints_the_table_and_writes_plot_and_file(run, tmp_path, capsys):
    trace_dir = fgmpsim.gemm_trace(128, 256, 128, fp4_fraction=0.7, seed=0).save(tmp_path / "g")
    out, plot = tmp_path / "c.csv", tmp_path / "e.png"
    assert run(["compare", "--trace", str(trace_dir), "--design", f"nv={trace_dir}@nvfp4",
                "--plot", str(plot), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "energy (" in text and "area (mm^2)" in text and "change" in text and "per op kind" in text
    _png(plot)
    frame = pd.read_csv(out)
    assert set(frame["design"]) == {"fp8_baseline", "fgmp", "nv"}
    direct = {a: fgmpsim.simulate(fgmpsim.load_trace(trace_dir), fgmpsim.load_arch(a)).summary()["energy_pj"]
              for a in ("fgmp", "fp8_baseline")}
    row = frame.query("design == 'fgmp' and scope == 'total'").iloc[0]
    assert row["energy_pj_vs_baseline"] == pytest.approx(direct["fgmp"] / direct["fp8_baseline"] - 1, rel=1e-9)


@pytest.mark.parametrize("extra, field", [
    (["--design", "oops"], "(--design)"),
    (["--design", "x=/no/such/trace"], "(path)"),
    (["--out", "c.xlsx"], "(--out)"),
    (["--plot", "e.pdf"], "(--plot)"),
    (["--baseline", "no_such_arch"], "(arch)"),
])
def test_cli_bad_input_exits_2_with_one_line(run, tmp_path, capsys, extra, field):
    trace_dir = fgmpsim.gemm_trace(32, 64, 32).save(tmp_path / "g")
    assert run(["compare", "--trace", str(trace_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and field in err and err.count("\n") == 1


def test_cli_compare_of_designs_only_equals_the_trace_form(run, tmp_path, capsys):
    trace_dir = fgmpsim.gemm_trace(128, 256, 128, fp4_fraction=0.7, seed=0).save(tmp_path / "g")
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run(["compare", "--trace", str(trace_dir), "--name", "fg", "--design", f"nv={trace_dir}@nvfp4",
                "--out", str(first)]) == 0
    assert run(["compare", "--design", f"fg={trace_dir}@fgmp", "--design", f"nv={trace_dir}@nvfp4",
                "--out", str(second)]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_csv(first), pd.read_csv(second))
    assert run(["compare"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no design to compare") and "(--trace)" in err and err.count("\n") == 1
    # a design without @ARCH runs on --arch, whichever design comes first
    third = tmp_path / "c.csv"
    assert run(["compare", "--arch", "nvfp4", "--design", f"fg={trace_dir}@fgmp", "--design", f"nv={trace_dir}",
                "--out", str(third)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(second), pd.read_csv(third))
    assert run(["compare", "--name", "x", "--design", f"fg={trace_dir}@fgmp"]) == 2
    assert "(--name)" in capsys.readouterr().err


def test_cli_missing_trace_exits_2(run, capsys):
    assert run(["compare", "--trace", "/no/such/trace"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
