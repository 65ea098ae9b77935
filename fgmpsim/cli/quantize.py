"""``fgmpsim quantize``: FGMP and baseline policies on a real model; perplexity table (thin shell over
``fgmpsim.quant.quantize``)."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers: argparse._SubParsersAction) -> None:
    from fgmpsim.quant.pipeline import DEFAULT_EVAL_TOKENS
    from fgmpsim.quant.policies import POLICIES

    parser = subparsers.add_parser("quantize", help="FGMP and baseline policies on a real model; perplexity table",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m",
                        help="known model name, local HF directory or .gguf file (default smollm2-135m)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), metavar="POLICY",
                        help=f"policies to evaluate (default all: {' '.join(POLICIES)})")
    parser.add_argument("--fp4-fraction", nargs="+", type=float, default=[0.7], metavar="F",
                        help="target shares of blocks in NVFP4 for mixing policies (default 0.7)")
    parser.add_argument("--text", default=None, help="UTF-8 text file (default: Python's pydoc topics)")
    parser.add_argument("--calib-sequences", type=int, default=32, help="calibration sequences (default 32)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (default 256)")
    parser.add_argument("--eval-tokens", type=int, default=DEFAULT_EVAL_TOKENS,
                        help=f"evaluation tokens (default {DEFAULT_EVAL_TOKENS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline (default 0)")
    parser.add_argument("--include-lm-head", action="store_true", help="also quantize lm_head")
    parser.add_argument("--out", default=None, help="directory for perplexity.md and perplexity.csv")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def command_line(args: argparse.Namespace) -> str:
    """The ``fgmpsim quantize`` command that reproduces ``args``' table (every setting spelled out; ``--out`` and
    ``--no-progress`` do not change results and are left out)."""
    parts = ["fgmpsim", "quantize", "--model", args.model, "--policies", *args.policies,
             "--fp4-fraction", *(f"{f:g}" for f in args.fp4_fraction), "--calib-sequences", str(args.calib_sequences),
             "--seq-len", str(args.seq_len), "--eval-tokens", str(args.eval_tokens), "--seed", str(args.seed)]
    if args.text:
        parts += ["--text", args.text]
    if args.include_lm_head:
        parts.append("--include-lm-head")
    return shlex.join(parts)


def _run(args: argparse.Namespace) -> int:
    from fgmpsim.quant.run import markdown_table, quantize

    result = quantize(model=args.model, policies=args.policies, fp4_fractions=args.fp4_fraction, text=args.text,
                      calib_sequences=args.calib_sequences, seq_len=args.seq_len, eval_tokens=args.eval_tokens,
                      seed=args.seed, include_lm_head=args.include_lm_head, progress=not args.no_progress)
    print("\n".join(markdown_table(result.table)))
    if args.out:
        for path in result.write(args.out, command_line(args)):
            print(f"wrote {path}")
    return 0
