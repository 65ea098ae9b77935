"""``fgmpsim export``: quantize a real model with one policy and write its forward pass as a trace directory (thin
shell over ``fgmpsim.trace.export.export``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from fgmpsim.quant.pipeline import DEFAULT_EVAL_TOKENS

    parser = subparsers.add_parser("export", help="quantized real model -> trace directory",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m",
                        help="known model name, local HF directory or .gguf file (default smollm2-135m)")
    parser.add_argument("--policy", default="fgmp", help="quantization policy (default fgmp)")
    parser.add_argument("--fp4-fraction", type=float, default=0.7, help="target NVFP4 share of blocks (default 0.7)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens of the traced pass, a multiple of 16 "
                                                               "(default 256)")
    parser.add_argument("--text", default=None, help="UTF-8 text file (default: Python's pydoc topics)")
    parser.add_argument("--calib-sequences", type=int, default=32, help="calibration sequences (default 32)")
    parser.add_argument("--seq-len", type=int, default=256, help="calibration/evaluation sequence length")
    parser.add_argument("--eval-tokens", type=int, default=DEFAULT_EVAL_TOKENS,
                        help=f"tokens for the perplexity in the manifest (default {DEFAULT_EVAL_TOKENS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random policy (default 0)")
    parser.add_argument("--include-lm-head", action="store_true", help="also quantize lm_head")
    parser.add_argument("--out", required=True, help="trace directory to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from fgmpsim.trace.export import export

    trace = export(model=args.model, policy=args.policy, fp4_fraction=args.fp4_fraction, tokens=args.tokens,
                   text=args.text, calib_sequences=args.calib_sequences, seq_len=args.seq_len,
                   eval_tokens=args.eval_tokens, seed=args.seed, include_lm_head=args.include_lm_head,
                   progress=not args.no_progress)
    path = trace.save(args.out)
    achieved = trace.meta["fp4_fraction_achieved"]
    print(f"wrote {path}: {len(trace.ops)} ops, {trace.macs:,} MACs, FP4 fraction weight {achieved['weight']:.4f} "
          f"act {achieved['act']:.4f}, perplexity {trace.meta['perplexity']['value']:.4g}")
    return 0
