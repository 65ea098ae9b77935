"""Model shapes: known configs and Hugging Face config.json parsing."""

from __future__ import annotations

import json

import pytest

from fgmpsim.errors import ModelError
from fgmpsim.trace import KNOWN_MODELS, from_config_json, model_shape

SMOLLM2_CONFIG = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                  "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True,
                  "_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def _write(tmp_path, config):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_known_models_include_the_llama_family_and_smollm2():
    assert {"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "smollm2-135m"} <= set(KNOWN_MODELS)
    assert model_shape("llama-2-13b").hidden == 5120 and model_shape("llama-2-13b").intermediate == 13824


def test_config_json_matches_the_known_smollm2_shape(tmp_path):
    parsed = from_config_json(_write(tmp_path, SMOLLM2_CONFIG))
    known = model_shape("smollm2-135m")
    assert parsed.as_dict() | {"name": known.name} == known.as_dict()
    assert parsed.head_dim == 64  # derived as hidden / heads


def test_config_json_defaults_kv_heads_to_heads(tmp_path):
    config = {k: v for k, v in SMOLLM2_CONFIG.items() if k != "num_key_value_heads"}
    assert from_config_json(_write(tmp_path, config)).kv_heads == 9


@pytest.mark.parametrize("missing", ["hidden_size", "intermediate_size", "num_hidden_layers",
                                     "num_attention_heads", "vocab_size"])
def test_config_json_missing_field_is_named(tmp_path, missing):
    config = {k: v for k, v in SMOLLM2_CONFIG.items() if k != missing}
    with pytest.raises(ModelError) as err:
        from_config_json(_write(tmp_path, config))
    assert err.value.field == missing


def test_config_json_bad_values_and_files(tmp_path):
    with pytest.raises(ModelError) as err:
        from_config_json(_write(tmp_path, SMOLLM2_CONFIG | {"num_key_value_heads": 4}))
    assert err.value.field == "kv_heads"
    with pytest.raises(ModelError) as err:
        from_config_json(_write(tmp_path, SMOLLM2_CONFIG | {"intermediate_size": "big"}))
    assert err.value.field == "intermediate"
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable JSON"):
        from_config_json(tmp_path / "broken.json")
    with pytest.raises(ModelError, match="does not exist"):
        from_config_json(tmp_path / "absent.json")
