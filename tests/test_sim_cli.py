"""``fgmpsim simulate``: tables and files on success, one ``error:`` line and exit status 2 on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fgmpsim.cli as cli
from fgmpsim.trace import GemmOp, Trace


@pytest.fixture
def run(monkeypatch):
    """``fgmpsim`` with only the simulate verb registered (the other verbs are tested by their owners)."""
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate",))
    return cli.main


@pytest.fixture
def trace_dir(tmp_path):
    rng = np.random.default_rng(0)
    ops = (GemmOp("q", 0, "linear", 32, 128, 64, 1, rng.random((64, 8)) < 0.3, rng.random((32, 8)) < 0.3,
                  consumer="o"),
           GemmOp("o", 0, "linear", 32, 64, 32, 1, rng.random((32, 4)) < 0.3, rng.random((32, 4)) < 0.3))
    return Trace("cli", ops).save(tmp_path / "trace")


@pytest.mark.parametrize("engine", ["tile", "reference", "analytic"])
def test_simulate_prints_the_table_and_totals_and_writes_json(run, trace_dir, tmp_path, capsys, engine):
    out = tmp_path / "res.json"
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--engine", engine, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cycles" in text and "pJ/MAC" in text and "utilization" in text and "(nJ)" in text
    document = json.loads(out.read_text())
    assert document["engine"] == engine and [op["op"] for op in document["ops"]] == ["q", "o"]


def test_overrides_change_the_arch(run, trace_dir, tmp_path, capsys):
    out = tmp_path / "res.csv"
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--set", "clock_hz=2e9",
                "--out", str(out)]) == 0
    assert "2 GHz" in capsys.readouterr().out and out.exists()


@pytest.mark.parametrize("args, field", [
    (["--out", "res.xlsx"], "(--out)"),
    (["--set", "memory.input_buffer.size_bytes=8"], "(memory.input_buffer.size_bytes)"),
    (["--set", "pe_array.vector_width=8"], "(pe_array.vector_width)"),
])
def test_bad_input_exits_2_with_one_error_line(run, trace_dir, capsys, args, field):
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0]


def test_missing_trace_exits_2(run, tmp_path, capsys):
    assert run(["simulate", "--trace", str(tmp_path / "nope"), "--arch", "fgmp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_several_archs_print_side_by_side_with_the_change_vs_the_first(run, trace_dir, capsys):
    from fgmpsim import load_arch, load_trace, simulate

    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--arch", "fp8_baseline"]) == 0
    text = capsys.readouterr().out
    trace = load_trace(trace_dir)
    fgmp, fp8 = (simulate(trace, load_arch(name)).summary() for name in ("fgmp", "fp8_baseline"))
    cycles_row = next(line for line in text.splitlines() if line.startswith(" cycles "))
    assert f"{fgmp['cycles']:,}" in cycles_row and f"{fp8['cycles']:,}" in cycles_row
    assert f"{100 * (fp8['cycles'] / fgmp['cycles'] - 1):+.1f}%" in cycles_row
    energy_row = next(line for line in text.splitlines() if line.startswith(" energy ("))
    assert f"{100 * (fp8['energy_pj'] / fgmp['energy_pj'] - 1):+.1f}%" in energy_row


def test_top_ops_by_energy_by_default_and_every_op_on_request(run, trace_dir, capsys):
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert "the 1 ops with the most energy" in text
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--per-op"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()
            if line.startswith(" q ") or line.startswith(" o ")]
    assert rows == ["q", "o"]


def test_a_narrow_terminal_leaves_out_shape_columns_never_the_op_names(trace_dir):
    from rich.console import Console

    from fgmpsim.arch import load_arch
    from fgmpsim.cli.display import op_table
    from fgmpsim.sim import simulate
    from fgmpsim.trace import load_trace

    result = simulate(load_trace(trace_dir), load_arch("fgmp"))
    full = op_table(result, None)
    assert [column.header for column in full.columns] == ["op", "kind", "M", "K", "N", "rep", "cycles", "stalls",
                                                          "MACs", "energy", "share", "pJ/MAC"]
    narrow = op_table(result, None, width=60)
    heads = [column.header for column in narrow.columns]
    assert heads[:2] == ["op", "kind"] and {"cycles", "energy", "pJ/MAC"} <= set(heads)
    assert not {"M", "K", "rep"} & set(heads) and "left out at 60 columns" in narrow.title
    console = Console(width=60, record=True, force_terminal=False)
    console.print(narrow)
    assert [line.split()[0] for line in console.export_text().splitlines() if line.split()[:1] in (["q"], ["o"])] \
        == ["q", "o"]


@pytest.mark.parametrize("args, field", [
    (["--arch", "fgmp"], "(--arch)"),
    (["--arch", "fp8_baseline", "--out", "x.json"], "(--out)"),
    (["--top", "-1"], "(--top)"),
])
def test_repeated_arch_or_out_with_several_archs_is_refused(run, trace_dir, capsys, args, field):
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]
