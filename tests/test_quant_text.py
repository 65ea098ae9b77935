"""Calibration/evaluation text: split, windows and errors (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import ModelError, PolicyError
from fgmpsim.quant.model import KNOWN_MODELS, load_model
from fgmpsim.quant.text import calibration_windows, evaluation_windows, load_text, split_tokens


def _char_tokenizer(text, add_special_tokens, verbose):
    return {"input_ids": [ord(c) for c in text]}


def test_default_text_splits_into_disjoint_80_20_token_streams():
    text, source = load_text(None)
    assert source == "pydoc_data.topics" and len(text) > 400_000
    split = split_tokens(_char_tokenizer, text, source)
    assert len(split.calibration) == int(0.8 * len(text))
    np.testing.assert_array_equal(np.concatenate([split.calibration, split.evaluation]),
                                  [ord(c) for c in text])


def test_windows_spread_over_calibration_and_tile_evaluation():
    split = split_tokens(_char_tokenizer, "".join(chr(65 + i % 26) for i in range(1000)), "t")
    calib = calibration_windows(split, 4, 100)  # 800 calibration tokens
    np.testing.assert_array_equal(calib[:, 0], split.calibration[[0, 233, 467, 700]])
    assert calib.shape == (4, 100)
    evaluation = evaluation_windows(split, 60, 150)
    np.testing.assert_array_equal(evaluation.ravel(), split.evaluation[:120])
    assert evaluation_windows(split, 60, None).shape == (3, 60)


def test_too_short_text_names_the_file_and_the_tokens_needed(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("tiny text", encoding="utf-8")
    text, source = load_text(path)
    split = split_tokens(_char_tokenizer, text, source)
    with pytest.raises(ModelError, match=r"short\.txt.*7 tokens, 256 needed") as err:
        calibration_windows(split, 4, 256)
    assert err.value.field == "text"
    with pytest.raises(ModelError, match="evaluation"):
        evaluation_windows(split, 4, 100)
    with pytest.raises(PolicyError, match="eval_tokens|evaluation budget"):
        evaluation_windows(split, 4, 2)


def test_missing_or_binary_text_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_text(tmp_path / "nope.txt")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00text")
    with pytest.raises(ModelError, match="UTF-8"):
        load_text(binary)


def test_unknown_model_lists_the_known_names(tmp_path):
    with pytest.raises(ModelError, match="smollm2-135m") as err:
        load_model(str(tmp_path / "missing-model"))
    assert err.value.field == "model"
    assert KNOWN_MODELS == ("smollm2-135m",)
