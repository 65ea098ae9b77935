"""``fgmpsim demo``: FGMP vs the all-FP8 baseline on the shipped SmolLM2 trace and a Llama-2-7B prefill trace."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main job on shipped defaults: fgmp vs fp8_baseline",
                                   description=__doc__.splitlines()[0],
                                   epilog="example: fgmpsim demo --out fgmpsim-demo")
    parser.add_argument("--out", default="fgmpsim-demo", help="output directory (default ./fgmpsim-demo)")
    parser.add_argument("--tokens", type=int, default=2048,
                        help="Llama-2-7B prefill tokens (default 2048; fewer is quicker)")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.markdown import Markdown

    from fgmpsim.jobs.demo import demo, headline_markdown

    console = Console()
    err = Console(stderr=True)
    result = demo(args.out, tokens=args.tokens, log=(err.print if sys.stderr.isatty() else None))
    console.print(Markdown(headline_markdown(result.headline)))
    console.print(f"wrote {len(result.files)} files to {result.out}: "
                  + ", ".join(path.name for path in result.files))
    console.print(f"wall time {result.seconds:.1f} s")
    return 0
