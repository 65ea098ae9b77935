"""fgmpsim validate: regenerate docs/validation.md (cycles vs SCALE-Sim, energy vs ZigZag and published silicon,
the FGMP paper's headline side by side, engine agreement, the stored mutation score) from stored references, or live
with the peers."""

from __future__ import annotations

import argparse

EXAMPLES = """examples (from the repository root):
  fgmpsim validate                                   stored peer numbers and headline; about 10-60 s
  fgmpsim validate --full                            recompute and store the Llama-2-7B headline and tornado
  fgmpsim validate --zigzag-python /tmp/peers/zigzag-venv/bin/python          ZigZag live (minutes)
  fgmpsim validate --zigzag-python /tmp/peers/zigzag-venv/bin/python --store  ... and rewrite tests/data/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="regenerate docs/validation.md against outside references",
                                   description=__doc__.split(": ", 1)[1], epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/validation.md", help="report path (default docs/validation.md; "
                                                                     "figures go to figures/ next to it)")
    parser.add_argument("--full", action="store_true",
                        help="recompute the stored expensive parts (Llama-2-7B headline and tornado) and store them")
    parser.add_argument("--scalesim-python", metavar="PY",
                        help="interpreter with scalesim installed: re-run SCALE-Sim live on the stored shapes "
                             "(benchmarks/scalesim_ws.py) and hold it against the stored Total Cycles")
    parser.add_argument("--zigzag-python", metavar="PY", help="interpreter with zigzag-dse installed (live run)")
    parser.add_argument("--store", action="store_true",
                        help="with --zigzag-python: rewrite tests/data/zigzag_energy.csv with the live numbers")
    parser.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    import sys

    from fgmpsim.validation import validate

    def say(text: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"{text} ...\n")

    report = validate(args.out, full=args.full, scalesim_python=args.scalesim_python,
                      zigzag_python=args.zigzag_python, store=args.store, progress=say)
    n = report.numbers
    print(f"wrote {report.path} and {len(report.figures)} figures")
    if n.get("scalesim_rows"):
        print(f"SCALE-Sim: {n['scalesim_exact_rows']} of {n['scalesim_rows']} stored Total Cycles equal exactly "
              f"(systolic_ws); FGMP lanes save {n['fgmp_saved_vs_systolic_fp8_min']:.0%}-"
              f"{n['fgmp_saved_vs_systolic_fp8_max']:.0%} of the FP8 systolic array's energy per MAC")
    print(f"ZigZag, same loop nest: total energy ratio {n['zigzag_pinned_total_ratio_min']:.3f}-"
          f"{n['zigzag_pinned_total_ratio_max']:.3f}; free LOMA mapping {n['zigzag_free_total_ratio_min']:.2f}-"
          f"{n['zigzag_free_total_ratio_max']:.2f}; unexplained differences > 10%: {n['zigzag_unexplained']}")
    print(f"on-chip energy: fgmp {n['fgmp_on_chip_pj_per_mac']:.3f} pJ/MAC, fp8_baseline "
          f"{n['fp8_on_chip_pj_per_mac']:.3f} pJ/MAC ({n['fgmp_vs_keller_067v']:.1f}x the 5 nm VSQ chip at 0.67 V)")
    print(f"Llama-2-7B, 70% FP4: weight memory -{100 * n['weight_memory_saved_default']:.1f}% (arithmetic), "
          f"-{100 * n['weight_memory_saved_trace']:.1f}% (trace); energy -{100 * n['energy_saved']:.1f}% vs FP8 "
          f"(paper -14%; tornado {100 * n['tornado_saving_min']:.1f}-{100 * n['tornado_saving_max']:.1f}%)")
    if n.get("mutation_score") is not None:
        print(f"mutation score (stored): {100 * n['mutation_score']:.1f}% of {n['mutation_mutants_run']} mutants run "
              f"(of {n['mutation_mutants_total']}); {n['mutation_survivors']} undetected, "
              f"{n['mutation_survivors_explained']} explained")
    return 0
