"""``fgmpsim trace synth | gemm | show | fit``: make, inspect and fit traces (thin shell over ``fgmpsim.trace``)."""

from __future__ import annotations

import argparse
import sys

from fgmpsim.trace.record import Trace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trace", help="make, inspect and fit layer traces",
                                   description=__doc__.splitlines()[0], epilog=_examples(*EXAMPLES),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="trace_verb", metavar="ACTION", parser_class=type(parser))
    parser.set_defaults(func=lambda args: parser.error("no action given (synth, gemm, show or fit)"))

    synth = _action(verbs, "synth", "full-size synthetic trace from a known model or a config.json")
    which = synth.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="known model name, e.g. llama-2-7b")
    which.add_argument("--config", help="path of a Hugging Face config.json (Llama-style)")
    synth.add_argument("--phase", default="prefill", help="prefill (default) or decode")
    synth.add_argument("--tokens", type=int, default=None, help="prefill tokens per sequence (default 2048)")
    synth.add_argument("--batch", type=int, default=1, help="sequences (default 1)")
    synth.add_argument("--kv-len", type=int, default=None, help="keys per sequence (decode: required)")
    synth.add_argument("--fp4-fraction", type=float, default=0.7, help="target NVFP4 fraction (default 0.7)")
    synth.add_argument("--act-fp4-fraction", type=float, default=None,
                       help="target NVFP4 fraction of activations (default: --fp4-fraction)")
    synth.add_argument("--policy", default=None,
                       help="store the linears in a ZeroQuant-FP family policy's uniform formats instead of "
                            "FP8/NVFP4 maps, e.g. zqfp_w4a8:m2+gptq+g64 (--fp4-fraction is then unused)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--params", default=None, help="fitted map model YAML (default: the shipped fit)")
    synth.add_argument("--out", required=True, help="trace directory to write")
    _add_size_limit(synth)
    synth.set_defaults(func=_synth)

    gemm = _action(verbs, "gemm", "a one-GEMM trace with uniform or random maps")
    for dim in ("m", "k", "n"):
        gemm.add_argument(f"--{dim}", type=int, required=True, help=f"GEMM {dim.upper()} (elements)")
    gemm.add_argument("--fp4-fraction", type=float, default=1.0, help="NVFP4 fraction of each map (default 1)")
    gemm.add_argument("--seed", type=int, default=0)
    gemm.add_argument("--repeat", type=int, default=1)
    gemm.add_argument("--block-size", type=int, default=16)
    gemm.add_argument("--out", required=True, help="trace directory to write")
    _add_size_limit(gemm)
    gemm.set_defaults(func=_gemm)

    show = _action(verbs, "show", "summary table of a trace directory")
    show.add_argument("dir", help="trace directory")
    show.add_argument("--arch", default="fgmp", help="arch name or YAML whose block storage prices weight bits")
    show.set_defaults(func=_show)

    fit = _action(verbs, "fit", "fit the synthetic-map model to a real trace")
    fit.add_argument("dir", help="trace directory of a real export")
    fit.add_argument("--out", required=True, help="YAML file for the fitted parameters")
    fit.add_argument("--plot", default=None, help="also write a real-vs-synthetic comparison figure (PNG)")
    fit.add_argument("--markdown", action="store_true",
                     help="also print the fitted parameters per role beside the real and synthetic map statistics "
                          "(the table of docs/synthetic_traces.md)")
    fit.set_defaults(func=_fit)


EXAMPLES = {
    "synth": ("fgmpsim trace synth --model llama-2-7b --tokens 2048 --fp4-fraction 0.7 --out out/l7b",
              "fgmpsim trace synth --model llama-2-70b --phase decode --batch 16 --kv-len 4096 --out out/l70b-decode",
              "fgmpsim trace synth --config path/to/config.json --tokens 512 --policy zqfp_w4a8:m2 --out out/mine"),
    "gemm": ("fgmpsim trace gemm --m 2048 --k 4096 --n 4096 --fp4-fraction 0.7 --out out/gemm-4k",
             "fgmpsim trace gemm --m 1 --k 200 --n 64 --fp4-fraction 0 --out out/gemm-fp8   (K need not be a "
             "multiple of 16)"),
    "show": ("fgmpsim trace show traces/smollm2-135m-fgmp70",
             "fgmpsim trace show out/l7b --arch fp8_baseline"),
    "fit": ("fgmpsim trace fit traces/smollm2-135m-fgmp70 --out /tmp/synth_params.yaml --plot /tmp/fit.png",),
}
"""Command lines shown under each action's ``--help``."""


def _examples(*verbs: str) -> str:
    return "examples:\n" + "".join(f"  {line}\n" for verb in verbs for line in EXAMPLES[verb])


def _action(verbs: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """The parser of action ``name``, its :data:`EXAMPLES` under its ``--help``."""
    return verbs.add_parser(name, help=help, epilog=_examples(name),
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_size_limit(parser: argparse.ArgumentParser) -> None:
    from fgmpsim.trace.budget import MAX_OP_MAP_BLOCKS

    parser.add_argument("--max-op-map-blocks", type=int, default=MAX_OP_MAP_BLOCKS, metavar="BLOCKS",
                        help=f"refuse ops whose maps exceed this many blocks (default {MAX_OP_MAP_BLOCKS:,}, about "
                             "1 GiB per copy while simulating)")


def _check_out_dir(out: str) -> None:
    """Refuse a bad --out before any work (a trace can take minutes to build)."""
    from fgmpsim.errors import TraceError
    from fgmpsim.io.atomic import check_output_dir

    check_output_dir(out, "--out", TraceError)


def _written(trace: Trace, out: str) -> int:
    from rich.console import Console

    from fgmpsim.trace.io import save_trace

    path = save_trace(trace, out)
    Console(soft_wrap=True).print(f"wrote {path}: {len(trace.ops)} ops, {trace.macs / 1e9:,.3f} GMAC, achieved "
                                  f"FP4 fraction {_fractions(trace.meta['fp4_fraction_achieved'])}")
    return 0


def _fractions(by_class: dict[str, float | None]) -> str:
    return ", ".join(f"{cls} {'-' if value is None else format(value, '.4f')}" for cls, value in by_class.items())


def _policy_formats(name: str) -> tuple:
    """The uniform (weight, activation) formats of a ZeroQuant-FP family policy; :class:`PolicyError` otherwise."""
    from fgmpsim.errors import PolicyError
    from fgmpsim.quant.policies import get_policy

    formats = get_policy(name).trace_formats()
    if not formats[0].uniform:
        raise PolicyError(f"policy {name!r} chooses FP8/NVFP4 blocks, it has no uniform formats", "--policy",
                          "give a ZeroQuant-FP family policy (zqfp_w4a8:..., int_w4a8, w8a8_fp8, w8a8_int8) or use "
                          "--fp4-fraction for FP8/NVFP4 maps")
    return formats


def _synth(args: argparse.Namespace) -> int:
    from fgmpsim.trace.synth import synth_trace
    from fgmpsim.trace.synth_model import load_synth_params

    _check_out_dir(args.out)
    params = load_synth_params(args.params) if args.params else None
    formats = _policy_formats(args.policy) if args.policy else None
    trace = synth_trace(args.model or args.config, tokens=args.tokens, batch=args.batch, phase=args.phase,
                        kv_len=args.kv_len, fp4_fraction=args.fp4_fraction, act_fp4_fraction=args.act_fp4_fraction,
                        seed=args.seed, params=params, max_op_map_blocks=args.max_op_map_blocks, formats=formats)
    return _written(trace, args.out)


def _gemm(args: argparse.Namespace) -> int:
    from fgmpsim.trace.gemm import gemm_trace

    _check_out_dir(args.out)
    trace = gemm_trace(args.m, args.k, args.n, fp4_fraction=args.fp4_fraction, seed=args.seed, repeat=args.repeat,
                       block_size=args.block_size, max_op_map_blocks=args.max_op_map_blocks)
    return _written(trace, args.out)


def _show(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from fgmpsim.arch import find_arch, load_arch
    from fgmpsim.trace.io import load_trace
    from fgmpsim.trace.summary import summary_totals, trace_summary

    trace = load_trace(args.dir)
    arch = load_arch(find_arch(args.arch))
    frame = trace_summary(trace, arch.storage)
    table = Table(title=f"trace {trace.name} ({args.dir}), block {trace.block_size}, weight bits priced with "
                        f"{arch.name} storage")
    for column in ("op", "kind", "M", "K", "N", "repeat", "MMAC", "weight format", "weight FP4", "act format",
                   "act FP4", "weight KiB"):
        table.add_column(column, justify="left" if column in ("op", "kind", "weight format", "act format") else "right")
    for row in frame.itertuples(index=False):
        kib = "-" if pd.isna(row.weight_bits) else f"{row.weight_bits / 8192:,.1f}"
        table.add_row(row.op, row.kind, str(row.M), str(row.K), str(row.N), str(row.repeat), f"{row.macs / 1e6:,.1f}",
                      row.weight_format, f"{row.weight_fp4_fraction:.4f}", row.act_format,
                      f"{row.act_fp4_fraction:.4f}", kib)
    totals = summary_totals(frame)
    console = Console(soft_wrap=True)
    if not console.is_terminal:  # piped or redirected: print the whole table, not 80 columns of it
        console.width = 160
    console.print(table, soft_wrap=False)
    console.print(f"total: {totals['ops']} ops, {totals['macs'] / 1e9:,.3f} GMAC; stored weights "
                  f"{totals['weight_bytes'] / 2**20:,.2f} MiB ({totals['weight_bits_per_element']:.4f} bits/element)")
    console.print(f"FP4 fraction of blocks as simulated: weights without lm_head "
                  f"{totals['quantized_weight_fp4_fraction']:.4f}, all static weights "
                  f"{totals['static_weight_fp4_fraction']:.4f} (with lm_head, kept in FP8), input activations of "
                  f"every op {totals['act_fp4_fraction']:.4f}, attention's second operands (K, V) "
                  f"{totals['dynamic_operand_fp4_fraction']:.4f}")
    achieved = trace.meta.get("fp4_fraction_achieved")
    if isinstance(achieved, dict):
        scope = trace.meta.get("fp4_fraction_scope", "as the trace's maker counts it")
        console.print(f"FP4 fraction the policy achieved (manifest): {_fractions(achieved)} "
                      f"({scope})")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from fgmpsim.errors import TraceError
    from fgmpsim.io.atomic import atomic_write, check_output_file
    from fgmpsim.trace.fit import fit_synth_params
    from fgmpsim.trace.io import load_trace

    out = check_output_file(args.out, "--out", TraceError, (".yaml", ".yml"))
    if args.plot is not None:
        check_output_file(args.plot, "--plot", TraceError, (".png", ".svg", ".pdf"))
    real = load_trace(args.dir)
    params = fit_synth_params(real)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, params.to_yaml().encode())
    status = Console(soft_wrap=True, stderr=args.markdown)  # with --markdown, stdout holds the table alone
    status.print(f"wrote {args.out}: map model for {len(params.roles)} roles fitted to {real.name}")
    if args.plot is None and not args.markdown:
        return 0
    from fgmpsim.trace.fit_report import compare_maps, fit_markdown, plot_comparison, synthetic_twin

    twin = synthetic_twin(real, params)
    if args.plot is None:
        table = compare_maps(real, twin)
    else:
        table = plot_comparison(real, twin, args.plot)
        status.print(f"wrote {args.plot}")
    if args.markdown:
        sys.stdout.write(fit_markdown(params, table) + "\n")
    return 0

