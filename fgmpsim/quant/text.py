"""Calibration and evaluation text, split into disjoint token streams.

The default corpus is the Python documentation topics shipped with CPython (``pydoc_data.topics``, ~0.47 MB of
English prose and code, ~113k SmolLM2 tokens), so nothing is downloaded. The whole text is tokenized once; the
first ``CALIBRATION_SHARE`` (80 %) of the *tokens* is the calibration stream and the rest the evaluation stream,
so the two never share a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fgmpsim.errors import ModelError, PolicyError

CALIBRATION_SHARE = 0.8
DEFAULT_TEXT = "pydoc_data.topics"


@dataclass(frozen=True, eq=False)
class TokenSplit:
    """Disjoint token streams (int64 token ids) of one text; ``source`` names the text in messages."""

    source: str
    calibration: np.ndarray
    evaluation: np.ndarray


def load_text(path: str | Path | None = None) -> tuple[str, str]:
    """(text, source name): the file at ``path`` (UTF-8), or the default corpus when ``path`` is None."""
    if path is None:
        from pydoc_data.topics import topics

        return "\n\n".join(topics.values()), DEFAULT_TEXT
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"text file {str(file)!r} does not exist", "text", "pass an existing UTF-8 text file")
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except UnicodeDecodeError as err:
        raise ModelError(f"text file {str(file)!r} is not UTF-8 ({err.reason} at byte {err.start})", "text",
                         "convert the file to UTF-8") from None


def split_tokens(tokenizer: Any, text: str, source: str) -> TokenSplit:
    """Tokenize ``text`` (no special tokens) and cut it at ``CALIBRATION_SHARE`` of its tokens."""
    ids = np.asarray(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"], dtype=np.int64)
    cut = int(len(ids) * CALIBRATION_SHARE)
    return TokenSplit(source=source, calibration=ids[:cut], evaluation=ids[cut:])


def _too_short(source: str, stream: str, have: int, need: int, fix: str) -> ModelError:
    return ModelError(f"text {source!r} is too short: its {stream} stream has {have} tokens, {need} needed",
                      "text", fix)


def calibration_windows(split: TokenSplit, sequences: int, seq_len: int) -> np.ndarray:
    """``[sequences, seq_len]`` windows spread evenly over the calibration stream.

    Windows start at evenly spaced offsets so that they sample the whole stream; they overlap only when the stream
    holds fewer than ``sequences * seq_len`` tokens.
    """
    stream = split.calibration
    if len(stream) < seq_len:
        raise _too_short(split.source, "calibration", len(stream), seq_len,
                         "use a longer text (--text) or a shorter --seq-len")
    starts = np.linspace(0, len(stream) - seq_len, sequences).round().astype(np.int64)
    return stream[starts[:, None] + np.arange(seq_len)]


def evaluation_windows(split: TokenSplit, seq_len: int, tokens: int | None) -> np.ndarray:
    """``[windows, seq_len]`` non-overlapping windows from the start of the evaluation stream.

    ``tokens`` is the evaluation budget (rounded down to whole windows); None takes every whole window.
    """
    stream = split.evaluation
    if tokens is not None and tokens < seq_len:
        raise PolicyError(f"evaluation budget {tokens} tokens is shorter than one {seq_len}-token window",
                          "eval_tokens", f"use at least {seq_len} evaluation tokens")
    budget = len(stream) if tokens is None else tokens
    if budget > len(stream) or budget < seq_len:
        raise _too_short(split.source, "evaluation", len(stream), max(budget, seq_len),
                         "use a longer text (--text), fewer evaluation tokens or a shorter --seq-len")
    windows = budget // seq_len
    return stream[: windows * seq_len].reshape(windows, seq_len)
