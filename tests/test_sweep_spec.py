"""Bad sweep input ends in one line naming the field and exit status 2, before any point runs or any file is
written; good specs expand to the expected points."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import fgmpsim
from fgmpsim.arch import arch_to_dict
from fgmpsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = str(ROOT / "traces" / "smollm2-135m-fgmp70")
GOOD = {"traces": [{"gemm": {"m": 64, "k": 256, "n": 64}}], "archs": ["fgmp"]}


def _sweep(tmp_path: Path, spec: dict, *extra: str) -> tuple[int, Path]:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    return main(["sweep", str(path), "--out", str(out), *extra]), out


@pytest.mark.parametrize("change, field, words", [
    ({"grid": {"pe_array.lanes_pe": [8]}}, "grid.pe_array.lanes_pe", "did you mean 'lanes_per_pe'?"),
    ({"gird": {"pe_array.lanes_per_pe": [8]}}, "(gird)", "did you mean 'grid'?"),
    ({"points": [{"memory.glb.sise_bytes": 8}]}, "points.0.memory.glb.sise_bytes", "did you mean 'size_bytes'?"),
    ({"traces": [{"gemm": {"m": 64, "k": 256, "nn": 64}}]}, "traces.0.gemm.nn", "did you mean 'n'?"),
    ({"grid": {"pe_array.lanes_per_pe": []}}, "grid.pe_array.lanes_per_pe", "empty list"),
    ({"grid": {}}, "(grid)", "names no parameter"),
    ({"grid": {"pe_array.lanes_per_pe": [8, "eight"]}}, "grid.pe_array.lanes_per_pe", "must be an integer"),
    ({"grid": {"pe_array.lanes_per_pe": 8}}, "grid.pe_array.lanes_per_pe", "must be a list"),
    ({"traces": [{"synth": {"model": "smollm2-135m", "tokens": [64, -1]}}]}, "traces.0.synth.tokens",
     "positive integer"),
    ({"traces": ["no/such/trace"]}, "traces.0", "does not exist"),
    ({"archs": ["fgmpp"]}, "archs.0", "no arch file or shipped arch named 'fgmpp'"),
    ({"engine": "fast"}, "(engine)", "must be one of"),
    ({"baseline_iso_area": "lanes_per_pe"}, "(baseline_iso_area)", "no baseline is given"),
    ({"baseline": "fp8_baseline", "baseline_iso_area": "pes"}, "(baseline_iso_area)", "lanes_per_pe"),
    ({"baseline": "fgmp", "archs": ["fp8_baseline"], "baseline_iso_area": "glb"}, "(baseline_iso_area)",
     "is below"),
    ({"baseline": "fp9"}, "(baseline)", "no arch file"),
])
def test_bad_spec_names_the_field_and_exits_2(tmp_path, capsys, change, field, words):
    code, out = _sweep(tmp_path, {**GOOD, **change})
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert (field if field.startswith("(") else f"({field})") in err, err  # exactly this field
    assert not out.exists()


def test_unreachable_dask_scheduler_exits_2_before_any_point(tmp_path, capsys):
    code, out = _sweep(tmp_path, GOOD, "--dask", "tcp://127.0.0.1:9")
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "(--dask)" in err
    assert not out.exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_port_that_accepts_but_is_no_dask_scheduler_exits_2(tmp_path, capsys, monkeypatch, dry_run):
    """A listener that accepts and never answers (a dashboard or another service on the port): the client's
    handshake would wait forever; the sweep gives up after twice the connect timeout. A dry run checks the port."""
    import socket
    import threading

    from fgmpsim.sweep import executors

    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 0.5)
    server = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    port = server.getsockname()[1]
    try:
        code, out = _sweep(tmp_path, GOOD, "--dask", f"tcp://127.0.0.1:{port}", *(["--dry-run"] if dry_run else []))
    finally:
        server.close()
    err = capsys.readouterr().err
    if dry_run:  # the port accepts: the dry run goes on and writes nothing
        assert code == 0 and not out.exists(), err
    else:
        assert code == 2 and "no Dask scheduler answered within 1 s" in err and "(--dask)" in err, err
        assert not out.exists()


def test_dry_run_refuses_an_unreachable_dask_scheduler(tmp_path, capsys):
    code, out = _sweep(tmp_path, GOOD, "--dask", "tcp://127.0.0.1:9", "--dry-run")
    assert code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists()


def test_directory_of_another_sweep_is_refused(tmp_path, capsys):
    code, out = _sweep(tmp_path, GOOD)
    assert code == 0
    files = sorted(p.name for p in out.rglob("*"))
    code, _ = _sweep(tmp_path, {**GOOD, "grid": {"pe_array.lanes_per_pe": [8]}})
    assert code == 2 and "holds the store of another sweep" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == files
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(fgmpsim.SweepError, match="holds no sweep store"):
        fgmpsim.sweep.run(GOOD, tmp_path / "other")


def test_points_expand_as_traces_x_archs_x_grid_plus_points_plus_baselines():
    spec = fgmpsim.sweep.load_spec({
        "traces": [{"gemm": {"m": 64, "k": 256, "n": [64, 128]}}], "archs": ["fgmp", "fgmp_fp8_half_rate"],
        "grid": {"pe_array.lanes_per_pe": [8, 16], "clock_hz": [1.0e9, 2.0e9]},
        "points": [{"pe_array.lanes_per_pe": 16, "clock_hz": 1.0e9}, {"aqu.latency_cycles": 9}],
        "baseline": "fp8_baseline"})
    points = fgmpsim.sweep.expand(spec)
    main = [p for p in points if p.role == "point"]
    base = [p for p in points if p.role == "baseline"]
    # the first explicit point repeats a grid combination, so it runs once: 4 + 1 override sets per (trace, arch);
    # aqu.latency_cycles exists in the baseline's resolved arch too (its AQU is disabled), so it applies there
    assert len(main) == 2 * 2 * (4 + 1) and len(base) == 2 * (4 + 1)
    assert [p.trace.label for p in points[:len(points) // 2]] == ["gemm-m64-k256-n64-r1-fp4_1-s0"] * 15
    assert {p.baseline_key for p in main} == {p.key for p in base}
    assert all(p.arch.name == "fp8_baseline" and p.baseline_key is None for p in base)
    half = next(p for p in main if p.arch_ref == "fgmp_fp8_half_rate" and dict(p.overrides) == {"clock_hz": 2.0e9,
                                                                                                "pe_array.lanes_per_pe": 8})
    assert half.arch.clock_hz == 2.0e9 and half.arch.pe_array.lanes_per_pe == 8
    assert half.arch.pe_array.cycles_per_block_pair.fp8xfp8 == 2


def test_baseline_gets_only_the_overrides_whose_path_it_has(tmp_path):
    baseline = arch_to_dict(fgmpsim.load_arch("fp8_baseline"))
    del baseline["energy"]["actions"]["aqu_block"]  # an FP8-only design without an AQU need not price it
    (tmp_path / "no_aqu.yaml").write_text(yaml.safe_dump(baseline))
    spec = fgmpsim.sweep.load_spec({"traces": [{"gemm": {"m": 64, "k": 256, "n": 64}}], "archs": ["fgmp"],
                                    "grid": {"energy.actions.aqu_block.pj": [0.5, 1.0], "clock_hz": [2.0e9]},
                                    "baseline": str(tmp_path / "no_aqu.yaml")})
    points = fgmpsim.sweep.expand(spec)
    assert [p.role for p in points] == ["point", "baseline", "point"]  # both points share one baseline
    assert points[1].overrides == (("clock_hz", 2.0e9),) and points[1].arch.clock_hz == 2.0e9
    assert [dict(p.arch.energy.entries)["aqu_block"].pj for p in (points[0], points[2])] == [0.5, 1.0]


@pytest.mark.parametrize("knob", ["lanes_per_pe", "glb"])
def test_iso_area_baseline_is_grown_to_each_design_points_area(tmp_path, knob):
    """Every baseline point has at most its design point's area, and one more lane (or KiB of GLB) would exceed
    it; the grown value is the baseline row's parameter column."""
    from fgmpsim.arch import load_arch
    from fgmpsim.energy import area_mm2

    spec = {**GOOD, "grid": {"pe_array.lanes_per_pe": [4, 8]}, "baseline": "fp8_baseline",
            "baseline_iso_area": knob}
    code, out = _sweep(tmp_path, spec)
    assert code == 0
    table = fgmpsim.sweep.load(out)
    designs, baselines = table[table.role == "point"], table[table.role == "baseline"].set_index("key")
    assert len(designs) == 2 and len(baselines) == 2
    for _, design in designs.iterrows():
        base = baselines.loc[design.baseline_key]
        assert base.area_mm2 <= design.area_mm2 and design.area_mm2_vs_baseline >= 0
        lanes = int(base["pe_array.lanes_per_pe"])
        sets = [f"pe_array.lanes_per_pe={lanes}"]
        if knob == "glb":
            assert lanes == design["pe_array.lanes_per_pe"]
            glb = int(base["memory.glb.size_bytes"])
            assert area_mm2(load_arch("fp8_baseline", [*sets, f"memory.glb.size_bytes={glb + 1024}"])) \
                > design.area_mm2
        else:
            assert lanes > design["pe_array.lanes_per_pe"]
            assert area_mm2(load_arch("fp8_baseline", [f"pe_array.lanes_per_pe={lanes + 1}"])) > design.area_mm2
