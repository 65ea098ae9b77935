"""The ``fgmpsim`` command: one verb per user task, each a thin shell over the public Python API.

Each verb lives in its own module with a ``register(subparsers)`` function that adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit status).
Bad input anywhere prints one line ``error: <what> (<field>): <how to fix>`` on stderr and exits with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fgmpsim.errors import FgmpsimError

_VERB_MODULES = ("quantize", "export", "trace", "simulate", "compare", "demo", "sweep", "validate")


EXAMPLES = """first steps:
  fgmpsim demo                                                     FGMP vs all-FP8 on shipped traces, with plots
  fgmpsim trace show traces/smollm2-135m-fgmp70                    what a trace holds
  fgmpsim simulate --trace traces/smollm2-135m-fgmp70 --arch fgmp --arch fp8_baseline
  fgmpsim VERB --help                                              each verb's options and examples
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in fgmpsim's one-line form (still exit status 2) and shows docstring
    descriptions as plain text (no reStructuredText backticks)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if kwargs.get("description"):
            kwargs["description"] = kwargs["description"].replace("``", "")
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} ({self.prog}): see '{self.prog} --help'\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from fgmpsim import __version__

    parser = _Parser(prog="fgmpsim", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fgmpsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name in _VERB_MODULES:
        importlib.import_module(f"fgmpsim.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fgmpsim`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.error("no verb given")
    try:
        return int(args.func(args) or 0)
    except FgmpsimError as err:
        if args.debug:
            raise
        sys.stderr.write(f"error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
