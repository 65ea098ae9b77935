"""Regression tests for every case of the reliability issue: confinement, limits checked before the work, strict
manifests, typed errors for malformed files, atomic outputs with provenance."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import fgmpsim.cli as cli
from fgmpsim.arch import ARCH_CONFIG_DIR, arch_from_dict, load_arch
from fgmpsim.errors import ConfigError, TraceError
from fgmpsim.sim import Mapping, simulate
from fgmpsim.sim.result import read_provenance
from fgmpsim.trace import GemmOp, Trace, gemm_trace, load_trace
from fgmpsim.trace.io import MANIFEST, MAPS

FGMP = ARCH_CONFIG_DIR / "fgmp.yaml"


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(cli, "_VERB_MODULES", ("simulate", "trace"))
    return cli.main


@pytest.fixture
def trace_dir(tmp_path):
    rng = np.random.default_rng(0)
    op = GemmOp("q", 0, "linear", 32, 64, 32, 1, rng.random((32, 4)) < 0.3, rng.random((32, 4)) < 0.3)
    return Trace("rel", (op,)).save(tmp_path / "trace")


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / MANIFEST
    manifest = yaml.safe_load(path.read_text())
    edit(manifest)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def _replace_maps(directory: Path, data: bytes) -> None:
    (directory / MAPS).write_bytes(data)
    _edit_manifest(directory, lambda m: m.update(maps_sha256=hashlib.sha256(data).hexdigest()))


# --- 1. confinement ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.yaml", "../../etc/hostname"])
def test_extends_outside_the_file_directory_is_refused_without_reading_it(tmp_path, target):
    (tmp_path / "outside.yaml").write_text("secret_line_one: 1\nsecret_line_two: 2\n")
    inner = tmp_path / "configs"
    inner.mkdir()
    (inner / "a.yaml").write_text(f"extends: {target}\nname: a\n")
    with pytest.raises(ConfigError, match="outside the allowed directories") as err:
        load_arch(inner / "a.yaml")
    assert err.value.field == "extends" and "secret_line" not in str(err.value) and "root:" not in str(err.value)


def test_extends_through_a_symlink_out_of_the_directory_is_refused(tmp_path):
    (tmp_path / "real.yaml").write_text(FGMP.read_text().replace("extends: base.yaml",
                                                                 f"extends: {ARCH_CONFIG_DIR / 'base.yaml'}"))
    inner = tmp_path / "configs"
    inner.mkdir()
    (inner / "link.yaml").symlink_to(tmp_path / "real.yaml")
    (inner / "a.yaml").write_text("extends: link.yaml\nname: a\n")
    with pytest.raises(ConfigError, match="outside the allowed directories"):
        load_arch(inner / "a.yaml")
    assert load_arch(inner / "a.yaml", config_path=(tmp_path,)).name == "a"  # an explicit root widens it


def test_extends_a_shipped_config_by_name_and_a_subdirectory_work(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.yaml").write_text("extends: fgmp.yaml\npe_array: {pes: 8}\n")
    (tmp_path / "a.yaml").write_text("extends: sub/mid.yaml\nname: a\n")
    arch = load_arch(tmp_path / "a.yaml")  # a.yaml -> sub/mid.yaml -> shipped fgmp.yaml -> shipped base.yaml
    assert arch.name == "a" and arch.pe_array.pes == 8


def test_an_alias_expanded_value_is_quoted_as_a_short_excerpt(tmp_path):
    big = "x" * 10_000
    path = tmp_path / "a.yaml"
    path.write_text(f"extends: {FGMP}\nname: &n {big}\nclock_hz: *n\npe_array: {{pes: *n, lanes_per_pe: *n}}\n")
    with pytest.raises(ConfigError) as err:  # four bad fields, each quoted in at most 60 characters
        load_arch(path)
    assert err.value.field == "name" and "3 more" in str(err.value) and len(str(err.value)) < 800


def test_a_parse_error_never_prints_the_file(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("password: hunter2\n  bad: [indent\n")
    with pytest.raises(ConfigError) as err:
        load_arch(path)
    assert "hunter2" not in str(err.value)


# --- 2. limits before the work ----------------------------------------------------------------------------------

def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_measured_not_expanded(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"extends: {FGMP}\n" + _laughs(9))
    assert path.stat().st_size < 1500
    with pytest.raises(ConfigError, match=r"expands to [\d,]+ nodes through aliases"):
        load_arch(path)


@pytest.mark.parametrize("text, match", [
    ("a: " + "[" * 1000 + "]" * 1000, "nests deeper than 64"),
    ("a: " + "{b: " * 1000 + "1" + "}" * 1000, "nests deeper than 64"),
    ("a: &x [*x]", "recursive alias"),
])
def test_deep_or_recursive_yaml_is_one_typed_error(tmp_path, text, match):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_arch(path)


def test_a_too_large_yaml_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(17 * 2**20)
    with pytest.raises(ConfigError, match="bytes, more than"):
        load_arch(path)


def _forged_npz(header_shape: tuple[int, ...], payload: bytes = b"", inflate_bytes: int = 0) -> bytes:
    """An npz whose member map0.npy has a (possibly forged) uint8 header, a payload and optionally
    ``inflate_bytes`` of zeros after it (a small member that inflates to a huge one)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": header_shape})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("map0.npy", "w") as member:
        member.write(header.getvalue() + payload)
        chunk = bytes(2**24)
        for _ in range(inflate_bytes // len(chunk)):
            member.write(chunk)
    return buffer.getvalue()


def _first_map(directory: Path) -> tuple[str, list[int]]:
    spec = yaml.safe_load((directory / MANIFEST).read_text())["ops"][0]["weight_map"]
    return spec["npz"], spec["shape"]


def test_a_forged_npy_header_shape_is_refused_before_allocation(trace_dir):
    _replace_maps(trace_dir, _forged_npz((10**6, 10**6)))
    with pytest.raises(TraceError, match=r"\(1000000, 1000000\), expected uint8 \(32, 1\)") as err:
        load_trace(trace_dir)
    assert err.value.field == "weight_map.shape"


def test_a_member_that_inflates_far_beyond_its_shape_is_refused(trace_dir):
    key, shape = _first_map(trace_dir)
    assert key == "map0"
    want = shape[0] * ((shape[1] + 7) // 8)
    data = _forged_npz((shape[0], (shape[1] + 7) // 8), bytes(want), inflate_bytes=2**28)  # 256 MiB of zeros
    assert len(data) < 2**20
    _replace_maps(trace_dir, data)
    with pytest.raises(TraceError, match="holds more bytes than its header's shape"):
        load_trace(trace_dir)


def test_an_npz_member_that_is_not_npy_data_is_a_trace_error(trace_dir):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("map0.npy", b"this is not an npy file at all")
    _replace_maps(trace_dir, buffer.getvalue())
    with pytest.raises(TraceError, match="is not npy data"):
        load_trace(trace_dir)


@pytest.mark.parametrize("name", [MAPS, MANIFEST])
def test_a_fifo_in_place_of_a_trace_file_is_refused_without_blocking(trace_dir, name):
    (trace_dir / name).unlink()
    os.mkfifo(trace_dir / name)
    with pytest.raises(TraceError, match="not a regular file"):
        load_trace(trace_dir)


@pytest.mark.parametrize("argv, field", [
    (["--m", "100000000", "--k", "4096", "--n", "4096"], "(m)"),
    (["--m", str(10**12), "--k", "16", "--n", "16"], "(m)"),
    (["--m", "16", "--k", "16", "--n", "16", "--repeat", str(2**40)], "(repeat)"),
])
def test_trace_gemm_refuses_ops_too_large_to_simulate_with_the_estimate_and_the_override(run, tmp_path, capsys,
                                                                                     argv, field):
    assert run(["trace", "gemm", *argv, "--out", str(tmp_path / "t")]) == 2
    line = _one_line(capsys)
    assert field in line and "GiB per copy" in line and "--max-op-map-blocks" in line
    assert not (tmp_path / "t").exists()


def test_a_manifest_op_too_large_is_refused_before_its_maps_are_read(trace_dir):
    _edit_manifest(trace_dir, lambda m: m["ops"][0].update(m=10**9, k=2**20))
    with pytest.raises(TraceError, match="map blocks"):
        load_trace(trace_dir)


def test_too_many_tiles_are_refused_before_simulating_with_the_estimate():
    trace = gemm_trace(16, 16, 16, repeat=2**21)
    with pytest.raises(ConfigError, match=r"maps to [\d,]+ tiles .* h to simulate") as err:
        simulate(trace, load_arch("fgmp"), max_tiles=2**20)
    assert "max_tiles" in err.value.fix


def test_max_tiles_is_the_most_tiles_allowed():
    trace = gemm_trace(16, 16, 16, repeat=8)  # one tile per repeat on fgmp: 8 tiles
    assert simulate(trace, load_arch("fgmp"), max_tiles=8).to_frame()["tiles"].sum() == 8
    with pytest.raises(ConfigError, match="maps to 8 tiles"):
        simulate(trace, load_arch("fgmp"), max_tiles=7)


def test_an_op_of_too_many_tiles_is_refused_with_the_mapping_fix():
    """4097 x 16 x 4096 on 1 x 1 x 1 tiles: 4097 x 4096 = 16,781,312 tiles, over the 2**24 = 16,777,216 one op
    may have."""
    with pytest.raises(ConfigError) as err:
        simulate(gemm_trace(4097, 16, 4096), load_arch("fgmp"), mapping=Mapping("weight_stationary", 1, 1, 1))
    assert "maps to 16,781,312 tiles" in err.value.what and "16,777,216 one op may have" in err.value.what
    assert (err.value.field, err.value.fix) == (
        "mapping", "use larger tiles (--set mapping.tile_m=..., tile_k_blocks=...) or a smaller op")


def test_the_reference_engine_counts_cycles_not_block_pairs():
    arch = load_arch("fgmp", ["pe_array.cycles_per_block_pair.fp8xfp8=1048576"])
    trace = gemm_trace(16, 16, 16, fp4_fraction=0.0)  # 16 block pairs, all FP8 x FP8
    with pytest.raises(TraceError, match="lane and transfer cycles") as err:
        simulate(trace, arch, engine="reference")
    assert err.value.field == "engine"


# --- silently wrong numbers: refused at load --------------------------------------------------------------------

@pytest.mark.parametrize("override, field", [
    ("pe_array.cycles_per_block_pair.fp8xfp8=18014398509481984", "pe_array.cycles_per_block_pair.fp8xfp8"),  # 2**54
    ("pe_array.cycles_per_block_pair.fp8xfp4=9007199254740993", "pe_array.cycles_per_block_pair.fp8xfp4"),  # 2**53+1
    ("pe_array.cycles_per_block_pair.fp4xfp4=9223372036854775807", "pe_array.cycles_per_block_pair.fp4xfp4"),
    ("clock_hz=5e-324", "clock_hz"),
    ("clock_hz=1e13", "clock_hz"),
    ("memory.glb.size_bytes=2251799813685249", "memory.glb.size_bytes"),  # 2**51 + 1
    ("memory.dram.read_bits_per_cycle=0", "memory.dram.read_bits_per_cycle"),
    ("energy.actions.mac_fp8xfp8.pj=.nan", "energy.actions.mac_fp8xfp8.pj"),
    ("energy.actions.mac_fp8xfp8.pj=1e300", "energy.actions.mac_fp8xfp8.pj"),
    ("storage.psum_bits=1000", "storage.psum_bits"),
    ("pe_array.pes=16.5", "pe_array.pes"),
    ("aqu.enabled=1", "aqu.enabled"),
])
def test_out_of_range_arch_values_are_refused_at_load(override, field):
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", [override])
    assert err.value.field == field


def test_the_largest_allowed_cycles_per_block_pair_still_counts_exactly():
    trace = gemm_trace(16, 32, 16, fp4_fraction=0.0)
    arch = load_arch("fgmp", ["pe_array.cycles_per_block_pair.fp8xfp8=1048576"])
    s = simulate(trace, arch).summary()
    # 16 rows x 2 blocks per lane (16 lanes in one PE hold the 16 output channels): 32 pairs x 2**20 cycles each
    assert s["compute_cycles"] == 32 * 2**20 and s["utilization"] <= 1.0 and np.isfinite(s["seconds"])


# --- untyped errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, match", [
    (b"name: \xff\xfe\n", "not UTF-8"),
    (b"name: a\x00b\n", "NUL byte"),
    (b"clock_hz: " + b"9" * 5000 + b"\n", "integer of 5000 digits"),
    (b"name: a\nname: b\n", "appears twice"),
])
def test_malformed_yaml_bytes_are_config_errors(tmp_path, data, match):
    path = tmp_path / "a.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=match):
        load_arch(path)


def test_a_huge_integer_override_is_a_config_error():
    with pytest.raises(ConfigError, match="digits"):
        load_arch("fgmp", ["clock_hz=" + "9" * 5000])


def test_unknown_manifest_keys_are_errors_with_a_suggestion(trace_dir):
    _edit_manifest(trace_dir, lambda m: m["ops"][0].update(repeats=2))
    with pytest.raises(TraceError, match="unknown key 'repeats'") as err:
        load_trace(trace_dir)
    assert "did you mean 'repeat'" in err.value.fix
    _edit_manifest(trace_dir, lambda m: (m["ops"][0].pop("repeats"), m.update(block_sizes=16)))
    with pytest.raises(TraceError, match="did you mean 'block_size'"):
        load_trace(trace_dir)


def test_trace_show_on_a_non_numeric_fraction_is_one_error_line(run, trace_dir, capsys):
    _edit_manifest(trace_dir, lambda m: m["meta"].update(fp4_fraction_achieved={"weight": "seventy"}))
    assert run(["trace", "show", str(trace_dir)]) == 2
    assert "(meta.fp4_fraction_achieved.weight)" in _one_line(capsys)


# --- 4. outputs ---------------------------------------------------------------------------------------------------

@pytest.fixture
def no_simulation(monkeypatch):
    """Fails the test if the simulator runs: a bad --out must be refused first."""
    import fgmpsim.sim

    def refuse(*args, **kwargs):
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(fgmpsim.sim, "simulate", refuse)


@pytest.mark.parametrize("out, match", [
    ("", "output path is empty"),
    ("{tmp}", "is a directory"),
    ("{tmp}/file.txt/res.json", "which is a file"),
    ("/proc/self/res.json", "system tree"),
    ("/dev/null.json", "system tree"),
    ("{tmp}/res.xlsx", "cannot write"),
])
def test_a_bad_out_is_refused_before_simulating(run, trace_dir, tmp_path, capsys, no_simulation, out, match):
    (tmp_path / "file.txt").write_text("x")
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--out", out.format(tmp=tmp_path)]) == 2
    line = _one_line(capsys)
    assert match in line and "(--out)" in line


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_out_files_carry_provenance(run, trace_dir, tmp_path, suffix):
    out = tmp_path / f"res{suffix}"
    assert run(["simulate", "--trace", str(trace_dir), "--arch", "fgmp", "--set", "pe_array.pes=8",
                "--out", str(out)]) == 0
    prov = read_provenance(out)
    assert prov["trace"] == "rel" and prov["engine"] == "tile" and prov["code_version"].startswith("0.1.0+src.")
    assert prov["attention"] == "causal" and prov["causal_band_rows"] == 128
    assert prov["trace_manifest_sha256"] == hashlib.sha256((trace_dir / MANIFEST).read_bytes()).hexdigest()
    resolved = arch_from_dict(yaml.safe_load(prov["arch_yaml"]))
    assert resolved.pe_array.pes == 8 and resolved == arch_from_dict(yaml.safe_load(prov["arch_yaml"]))
    if suffix != ".json":
        frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
        assert list(frame["op"]) == ["q"]


def test_a_truncated_csv_no_longer_matches_its_provenance(trace_dir, tmp_path):
    out = tmp_path / "res.csv"
    simulate(load_trace(trace_dir), load_arch("fgmp")).save(out)
    out.write_bytes(out.read_bytes()[:40])
    with pytest.raises(ConfigError, match="does not match its provenance sidecar") as err:
        read_provenance(out)
    assert (err.value.field, err.value.fix) == ("path", "the CSV was edited, truncated or replaced: rerun fgmpsim "
                                                        "simulate --out")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_a_result_without_provenance_names_the_path_and_the_fix(tmp_path, suffix):
    out = tmp_path / f"plain{suffix}"
    frame = pd.DataFrame({"op": ["q"], "cycles": [1]})
    if suffix == ".parquet":
        frame.to_parquet(out)
    elif suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        out.write_text('{"ops": []}')
    with pytest.raises(ConfigError) as err:
        read_provenance(out)
    assert (err.value.what, err.value.field, err.value.fix) == (
        f"{out} carries no fgmpsim provenance", "path", "write it with fgmpsim simulate --out")


def test_a_failed_write_keeps_the_previous_result(trace_dir, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    out = tmp_path / "res.parquet"
    result = simulate(load_trace(trace_dir), load_arch("fgmp"))
    result.save(out)
    before = out.read_bytes()

    def full_disk(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full_disk)
    with pytest.raises(OSError):
        result.save(out)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["res.parquet", "trace"]


def test_a_killed_writer_never_leaves_a_truncated_result(tmp_path):
    """SIGKILL a process that rewrites one result in a loop, 12 times at different moments: the file on disk is
    always a complete result (the issue saw a 0-byte or truncated file 24 times out of 24)."""
    from fgmpsim.testing.faults import kill_during_save

    assert kill_during_save(tmp_path, kills=12, seed=0) == 0


def test_failed_writes_keep_the_previous_result_and_leave_no_temporary_file(tmp_path):
    from fgmpsim.testing.faults import failed_writes

    assert failed_writes(tmp_path, count=3) == 0


# --- found by the fuzz suite --------------------------------------------------------------------------------------

def test_an_override_key_with_a_line_break_is_one_error_line():
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", ["pe_array.pes\nx=3"])
    assert "\n" not in str(err.value) and err.value.field == "--set"


def test_errors_escape_control_characters_so_they_stay_one_line():
    assert str(ConfigError("a\nb", "f\rg", "\x1b[31mfix")) == "a\\x0ab (f\\x0dg): \\x1b[31mfix"


def test_a_lazy_map_generator_that_is_not_a_name_is_a_trace_error(tmp_path):
    from fgmpsim.testing.cases import save_fixture

    directory = save_fixture(tmp_path)
    _edit_manifest(directory, lambda m: m["ops"][1]["weight_map"]["lazy"].update(generator={"a": 1}))
    with pytest.raises(TraceError, match="unknown lazy-map generator") as err:
        load_trace(directory)
    assert err.value.field == "weight_map.lazy.generator"
