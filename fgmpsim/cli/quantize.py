"""``fgmpsim quantize``: FGMP and baseline policies on a real model; perplexity table (thin shell over
``fgmpsim.quant.quantize``)."""

from __future__ import annotations

import argparse
import shlex

from fgmpsim.cli.model_options import add_model_options, model_kwargs

EXAMPLES = """examples:
  fgmpsim quantize --out out/quantize                          (the bundled SmolLM2, the default policies)
  fgmpsim quantize --policies fp8 fgmp nvfp4 --fp4-fraction 0.5 0.7 0.9
  fgmpsim quantize --policies zqfp_w4a8:m2+gptq+lorc8+g64 int_w4a8:gptq+g64 w8a8_fp8 --text my_corpus.txt
                                    (g64: SmolLM2's 576 channels are not a multiple of the default group of 256)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from fgmpsim.quant.defaults import DEFAULT_POLICIES, POLICY_NAMES

    parser = subparsers.add_parser("quantize", help="FGMP and baseline policies on a real model; perplexity table",
                                   description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--policies", nargs="+", default=list(DEFAULT_POLICIES), metavar="POLICY",
                        help=f"policies to evaluate (default: {' '.join(DEFAULT_POLICIES)}); known: "
                             f"{' '.join(POLICY_NAMES)}; zqfp_w4a8, int_w4a8, w8a8_fp8 and w8a8_int8 take options "
                             "after a colon joined by '+': none/m1/m2 (scale constraint, zqfp_w4a8), rtn/gptq, "
                             "lorc<rank>, g<group size>, e.g. zqfp_w4a8:m2+gptq+lorc8+g64")
    parser.add_argument("--fp4-fraction", nargs="+", type=float, default=[0.7], metavar="F",
                        help="target shares of blocks in NVFP4 for mixing policies (default 0.7)")
    parser.add_argument("--out", default=None, help="directory for <stem>.md and <stem>.csv")
    parser.add_argument("--stem", default="perplexity", help="file name of the tables in --out (default perplexity)")
    parser.set_defaults(func=_run)


def command_line(args: argparse.Namespace) -> str:
    """The ``fgmpsim quantize`` command that reproduces ``args``' table (every setting spelled out; ``--out`` and
    ``--stem`` and ``--no-progress`` do not change results and are left out)."""
    parts = ["fgmpsim", "quantize", "--model", args.model, "--policies", *args.policies,
             "--fp4-fraction", *(f"{f:g}" for f in args.fp4_fraction), "--calib-sequences", str(args.calib_sequences),
             "--seq-len", str(args.seq_len), "--eval-tokens", str(args.eval_tokens), "--seed", str(args.seed)]
    if args.text:
        parts += ["--text", args.text]
    if args.include_lm_head:
        parts.append("--include-lm-head")
    return shlex.join(parts)


def _run(args: argparse.Namespace) -> int:
    from fgmpsim.errors import ModelError
    from fgmpsim.io.atomic import check_output_dir
    from fgmpsim.quant.run import markdown_table, quantize

    if args.out is not None:  # before minutes of quantization
        check_output_dir(args.out, "--out", ModelError)
    result = quantize(policies=args.policies, fp4_fractions=args.fp4_fraction, **model_kwargs(args))
    print("\n".join(markdown_table(result.table)))
    if args.out is not None:
        for path in result.write(args.out, command_line(args), stem=args.stem):
            print(f"wrote {path}")
    return 0
