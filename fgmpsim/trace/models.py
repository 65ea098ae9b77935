"""Shapes of decoder-only transformer LLMs (Llama family) needed to list their GEMMs.

Published configurations (HF ``config.json`` of each model): Llama-2 (Touvron et al. 2023, Table 1 / the
``meta-llama/Llama-2-*-hf`` configs), Llama-3-8B (``meta-llama/Meta-Llama-3-8B``), SmolLM2-135M
(``HuggingFaceTB/SmolLM2-135M-Instruct``). Any other Llama-style model: :func:`from_config_json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fgmpsim.errors import ModelError, excerpt
from fgmpsim.io.safe_yaml import read_bounded

MAX_MODEL_DIM = 2**24
"""Largest hidden, intermediate, head, head_dim and vocabulary size accepted (Llama-2-70B: 28,672)."""
MAX_LAYERS = 10_000
MAX_CONFIG_BYTES = 2**20


@dataclass(frozen=True)
class ModelShape:
    """Sizes in elements. ``kv_heads < heads`` means grouped-query attention; q_proj has ``heads * head_dim``
    outputs, k_proj/v_proj ``kv_heads * head_dim``."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for field in ("hidden", "intermediate", "layers", "heads", "kv_heads", "head_dim", "vocab"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ModelError(f"model {excerpt(self.name)}: {field} must be a positive integer, got "
                                 f"{excerpt(value)}", field, "fix the model config")
            limit = MAX_LAYERS if field == "layers" else MAX_MODEL_DIM
            if value > limit:
                raise ModelError(f"model {excerpt(self.name)}: {field}={value:,} is beyond any model (at most "
                                 f"{limit:,})", field, "fix the model config")
        if self.heads % self.kv_heads:
            raise ModelError(f"model {self.name!r}: {self.heads} heads are not a multiple of {self.kv_heads} KV "
                             "heads", "kv_heads", "fix num_key_value_heads in the config")

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for a trace's meta)."""
        return asdict(self)


KNOWN_MODELS: dict[str, ModelShape] = {shape.name: shape for shape in (
    ModelShape("llama-2-7b", hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, head_dim=128,
               vocab=32000),
    ModelShape("llama-2-13b", hidden=5120, intermediate=13824, layers=40, heads=40, kv_heads=40, head_dim=128,
               vocab=32000),
    ModelShape("llama-2-70b", hidden=8192, intermediate=28672, layers=80, heads=64, kv_heads=8, head_dim=128,
               vocab=32000),
    ModelShape("llama-3-8b", hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, head_dim=128,
               vocab=128256),
    ModelShape("smollm2-135m", hidden=576, intermediate=1536, layers=30, heads=9, kv_heads=3, head_dim=64,
               vocab=49152, tie_embeddings=True),
)}


def model_shape(name: str) -> ModelShape:
    """The shape of a known model; :class:`ModelError` listing the known names otherwise."""
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}", "model",
                         f"use one of {', '.join(KNOWN_MODELS)} or give a config.json") from None


_REQUIRED = {"hidden": "hidden_size", "intermediate": "intermediate_size", "layers": "num_hidden_layers",
             "heads": "num_attention_heads", "vocab": "vocab_size"}


def from_config_json(path: str | os.PathLike[str]) -> ModelShape:
    """A :class:`ModelShape` from a Hugging Face ``config.json`` file (see :func:`from_config`)."""
    file = Path(path)
    if not file.exists():
        raise ModelError(f"{file} does not exist", "config", "give the path of a model's config.json")
    try:
        config = json.loads(read_bounded(file, "config", ModelError, MAX_CONFIG_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        problem = f"{err.msg} at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise ModelError(f"{file} is not a readable JSON file ({problem})", "config",
                         "give the path of a model's config.json") from None
    if not isinstance(config, dict):
        raise ModelError(f"{file} is not a JSON object", "config", "give the path of a model's config.json")
    return from_config(config, str(file), str(config.get("_name_or_path") or file.parent.name or "custom"))


def from_config(config: Mapping[str, Any], source: str, name: str) -> ModelShape:
    """A :class:`ModelShape` named ``name`` from Hugging Face config keys (Llama-style) read from ``source``.

    ``num_key_value_heads`` defaults to ``num_attention_heads`` (no GQA), ``head_dim`` to
    ``hidden_size / num_attention_heads``, ``tie_word_embeddings`` to false, as in ``transformers``.
    """
    fields: dict[str, Any] = {}
    for field, key in _REQUIRED.items():
        if key not in config:
            raise ModelError(f"{source} lacks {key!r}", key, f"add {key} to the config (needed for the {field} size)")
        fields[field] = config[key]
    fields["kv_heads"] = config.get("num_key_value_heads") or fields["heads"]
    if config.get("head_dim"):
        fields["head_dim"] = config["head_dim"]
    elif isinstance(fields["hidden"], int) and isinstance(fields["heads"], int) and fields["heads"] > 0:
        if fields["hidden"] % fields["heads"]:
            raise ModelError(f"{source}: hidden_size {fields['hidden']} is not divisible by num_attention_heads "
                             f"{fields['heads']}", "head_dim", "add head_dim to the config")
        fields["head_dim"] = fields["hidden"] // fields["heads"]
    else:
        fields["head_dim"] = None  # rejected by ModelShape with the field named
    return ModelShape(name=name, tie_embeddings=bool(config.get("tie_word_embeddings", False)), **fields)


def resolve_model(model: str | ModelShape) -> ModelShape:
    """A known model name, a ``config.json`` path (ends in ``.json``) or a :class:`ModelShape` as a shape."""
    if isinstance(model, ModelShape):
        return model
    if str(model).endswith(".json"):
        return from_config_json(model)
    return model_shape(model)
