"""Options shared by the verbs that quantize a real model (``quantize``, ``export``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Model, text and calibration options, with the API's defaults."""
    from fgmpsim.quant.defaults import DEFAULT_EVAL_TOKENS

    parser.add_argument("--model", default="smollm2-135m",
                        help="known model name, local HF directory or .gguf file (default smollm2-135m)")
    parser.add_argument("--text", default=None, help="UTF-8 text file (default: Python's pydoc topics)")
    parser.add_argument("--calib-sequences", type=int, default=32, help="calibration sequences (default 32)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per calibration/evaluation sequence "
                                                                 "(default 256)")
    parser.add_argument("--eval-tokens", type=int, default=DEFAULT_EVAL_TOKENS,
                        help=f"evaluation tokens for perplexity (default {DEFAULT_EVAL_TOKENS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random policy (default 0)")
    parser.add_argument("--include-lm-head", action="store_true", help="also quantize lm_head")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``quantize``/``export`` that :func:`add_model_options` collects."""
    return {"model": args.model, "text": args.text, "calib_sequences": args.calib_sequences,
            "seq_len": args.seq_len, "eval_tokens": args.eval_tokens, "seed": args.seed,
            "include_lm_head": args.include_lm_head, "progress": not args.no_progress}
