"""``fgmpsim export``: quantize a real model and write its forward pass as a trace directory, per policy and FP4
fraction (calibrated once; thin shell over ``fgmpsim.trace.export.export_many``)."""

from __future__ import annotations

import argparse

from fgmpsim.cli.model_options import add_model_options, model_kwargs

EXAMPLES = """examples:
  fgmpsim export --out out/smollm2-fgmp70                      (FGMP at 70% NVFP4, 256 traced tokens)
  fgmpsim export --policy fgmp fp8 nvfp4 --fp4-fraction 0.5 0.7 --out out/traces
  fgmpsim simulate --trace out/smollm2-fgmp70 --arch fgmp      (then simulate the trace)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="quantized real model -> trace directory",
                                   description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--policy", nargs="+", default=["fgmp"], help="quantization policies (default fgmp)")
    parser.add_argument("--fp4-fraction", nargs="+", type=float, default=[0.7],
                        help="target NVFP4 shares of blocks (default 0.7)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens of the traced pass, a multiple of 16 "
                                                               "(default 256)")
    parser.add_argument("--out", required=True,
                        help="trace directory to write; with several policies or fractions, the folder that gets "
                             "one trace directory per point, named <model>-<policy><percent FP4>")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fgmpsim.errors import TraceError
    from fgmpsim.io.atomic import check_output_dir
    from fgmpsim.trace.export import export_many

    check_output_dir(args.out, "--out", TraceError)  # before minutes of quantization
    traces = export_many(policies=args.policy, fp4_fractions=args.fp4_fraction, tokens=args.tokens,
                         **model_kwargs(args))
    for trace in traces:
        path = trace.save(args.out if len(traces) == 1 else Path(args.out) / trace.name)
        achieved = trace.meta["fp4_fraction_achieved"]
        print(f"wrote {path}: {len(trace.ops)} ops, {trace.macs:,} MACs, FP4 fraction weight "
              f"{achieved['weight']:.4f} act {achieved['act']:.4f}, perplexity {trace.meta['perplexity']['value']:.4g}")
    return 0
