"""A regular (non-editable) install: the wheel carries the shipped architectures and traces, so named archs and
the shipped traces resolve from any directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "fgmpsim", "arch_configs", "traces")


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The fgmpsim wheel built from a copy of the sources (the checkout stays clean), unpacked as site dir."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(
            ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (ROOT / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(work / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (work / "dist").glob("fgmpsim-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _python(site: Path, cwd: Path, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={"PYTHONPATH": str(site), "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_wheel_holds_every_shipped_arch_and_trace(wheel_site):
    shipped = wheel_site / "fgmpsim" / "_shipped"
    assert sorted(p.name for p in (shipped / "arch_configs").glob("*.yaml")) == \
        sorted(p.name for p in (ROOT / "arch_configs").glob("*.yaml"))
    maps = sorted((ROOT / "traces").rglob("maps.npz"))
    assert len(maps) >= 3
    for path in maps:
        relative = path.relative_to(ROOT)
        assert (shipped / relative).read_bytes() == path.read_bytes(), relative


def test_installed_wheel_resolves_named_archs_and_traces_from_any_directory(wheel_site, tmp_path):
    out = _python(wheel_site, tmp_path, "import fgmpsim\n"
                  "print(fgmpsim.__file__)\n"
                  "r = fgmpsim.simulate(fgmpsim.load_trace('smollm2-135m-fp8'), fgmpsim.load_arch('fp8_baseline'))\n"
                  "print(r.summary()['cycles'])")
    path, cycles = out.split()
    assert path.startswith(str(wheel_site))
    import fgmpsim

    here = fgmpsim.simulate(fgmpsim.load_trace(ROOT / "traces" / "smollm2-135m-fp8"), fgmpsim.load_arch("fp8_baseline"))
    assert int(cycles) == here.summary()["cycles"]


def test_cli_help_imports_no_numeric_stack():
    """``fgmpsim --help`` and a verb's ``--help`` stay fast: no pandas, ml_dtypes, torch or simpy is imported."""
    code = ("import sys, runpy; sys.argv = ['fgmpsim', '--help']\n"
            "try:\n    runpy.run_module('fgmpsim', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted({'pandas', 'ml_dtypes', 'torch', 'simpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("package", ["fgmpsim", "fgmpsim.analysis", "fgmpsim.quant", "fgmpsim.trace"])
def test_lazy_names_are_not_submodule_names(package):
    """A lazily resolved name that is also a submodule would be rebound to the module once it is imported."""
    import importlib
    import importlib.util

    names = importlib.import_module(package)._LAZY
    assert [n for n in names if importlib.util.find_spec(f"{package}.{n}") is not None] == []


@pytest.mark.parametrize("verb", [["quantize"], ["export"], ["trace"], ["trace", "synth"], ["trace", "gemm"],
                                  ["trace", "show"], ["trace", "fit"], ["simulate"], ["compare"], ["demo"],
                                  ["sweep"], ["validate"]])
def test_every_verb_help_shows_examples_and_no_markup(verb, capsys):
    from fgmpsim.cli import _VERB_MODULES, main

    assert verb[0] in _VERB_MODULES
    with pytest.raises(SystemExit) as done:
        main([*verb, "--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "\nexample" in text and "`" not in text, text
