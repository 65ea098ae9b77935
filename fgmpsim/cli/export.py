"""``fgmpsim export``: quantize a real model with one policy and write its forward pass as a trace directory (thin
shell over ``fgmpsim.trace.export.export``)."""

from __future__ import annotations

import argparse

from fgmpsim.cli.model_options import add_model_options, model_kwargs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="quantized real model -> trace directory",
                                   description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--policy", default="fgmp", help="quantization policy (default fgmp)")
    parser.add_argument("--fp4-fraction", type=float, default=0.7, help="target NVFP4 share of blocks (default 0.7)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens of the traced pass, a multiple of 16 "
                                                               "(default 256)")
    parser.add_argument("--out", required=True, help="trace directory to write")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from fgmpsim.errors import TraceError
    from fgmpsim.io.atomic import check_output_dir
    from fgmpsim.trace.export import export

    check_output_dir(args.out, "--out", TraceError)  # before minutes of quantization
    trace = export(policy=args.policy, fp4_fraction=args.fp4_fraction, tokens=args.tokens, **model_kwargs(args))
    path = trace.save(args.out)
    achieved = trace.meta["fp4_fraction_achieved"]
    print(f"wrote {path}: {len(trace.ops)} ops, {trace.macs:,} MACs, FP4 fraction weight {achieved['weight']:.4f} "
          f"act {achieved['act']:.4f}, perplexity {trace.meta['perplexity']['value']:.4g}")
    return 0
