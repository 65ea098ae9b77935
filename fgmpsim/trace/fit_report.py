"""Real vs synthetic: a synthetic twin of a real trace, a per-role comparison table and a figure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fgmpsim.errors import TraceError
from fgmpsim.io.atomic import atomic_path
from fgmpsim.trace.models import ModelShape
from fgmpsim.trace.record import GemmOp, Trace, materialize_map
from fgmpsim.trace.stats import (class_fp4_fractions, distinct_maps, map_table, row_col_fractions,
                                 structure_table)
from fgmpsim.trace.synth import synth_trace
from fgmpsim.trace.synth_model import ROLE_CLASS, SynthParams

PLOT_ROLES = ("down_proj", "attn_in")
"""Roles whose row/column FP8-fraction distributions the figure shows (a weight and an activation)."""


def shape_of(trace: Trace) -> tuple[ModelShape, int]:
    """The model shape and prefill tokens of a Llama-style trace (batch 1), read from its op shapes."""
    def first(suffix: str) -> GemmOp:
        for op in trace.ops:
            if op.name.endswith(suffix) or op.kind == suffix:
                return op
        raise TraceError(f"trace {trace.name!r} has no {suffix} op", "ops", "use a Llama-style export")

    q, k, qk, gate, head = (first(s) for s in ("q_proj", "k_proj", "attn_qk", "gate_proj", "lm_head"))
    layers = sum(op.name.endswith("q_proj") for op in trace.ops)
    name = trace.meta.get("model") if isinstance(trace.meta.get("model"), str) else trace.name
    shape = ModelShape(name=str(name), hidden=q.k, intermediate=gate.n, layers=layers, heads=qk.repeat,
                       kv_heads=k.n // qk.k, head_dim=qk.k, vocab=head.n)
    return shape, q.m


def synthetic_twin(real: Trace, params: SynthParams, seed: int = 0) -> Trace:
    """A synthetic trace with the real trace's model shape, tokens and per-class FP4 fractions (over the roles the
    policy decides), drawn from ``params``."""
    shape, tokens = shape_of(real)
    free = {role for role in ROLE_CLASS if params.role(role).fixed_fp8_fraction is None}
    fractions = class_fp4_fractions(real, free)
    return synth_trace(shape, tokens=tokens, fp4_fraction=fractions["weight"], act_fp4_fraction=fractions["act"],
                       seed=seed, params=params, block_size=real.block_size)


def compare_maps(real: Trace, synth: Trace) -> pd.DataFrame:
    """Per role: FP8 fraction and mean spreads of per-row / per-column FP8 fractions, real vs synthetic."""
    parts = []
    for label, trace in (("real", real), ("synth", synth)):
        table = map_table(trace)
        table = table[table["role"].notna()]
        sums = table.groupby("role")[["fp8_blocks", "blocks"]].sum()
        spread = structure_table(trace).groupby("role")[["row_std", "col_std"]].mean()
        parts.append(pd.DataFrame({f"fp8_{label}": sums["fp8_blocks"] / sums["blocks"],
                                   f"row_std_{label}": spread["row_std"], f"col_std_{label}": spread["col_std"]}))
    frame = parts[0].join(parts[1], how="inner")
    order = [role for role in ROLE_CLASS if role in frame.index]
    columns = [f"{stat}_{label}" for stat in ("fp8", "row_std", "col_std") for label in ("real", "synth")]
    return frame.loc[order, columns]


FIT_TABLE_HEADS = ("role", "real FP8", "`fp8_scale`", "`first_layer` / `last_layer`", "`layer_profile`",
                   "`layer_sigma`", "`row_sigma`", "`col_sigma`", "row / col spread, real", "same, synthetic")
"""Column heads of :func:`fit_markdown` (the table of ``docs/synthetic_traces.md``)."""


def fit_markdown(params: SynthParams, table: pd.DataFrame) -> str:
    """A Markdown table of the fitted parameters per role beside the :func:`compare_maps` table (FP8 fraction of
    the real trace; mean row / column spread of FP8 fractions, real and synthetic). A role with a fixed FP8 fraction
    has no fitted parameters, and its spread cells are left empty (the fraction is constant, so they are zero)."""
    lines = ["| " + " | ".join(FIT_TABLE_HEADS) + " |", "|" + " --- |" * len(FIT_TABLE_HEADS)]
    for role, row in table.iterrows():
        p = params.role(str(role))
        if p.fixed_fp8_fraction is not None:
            cells = [f"fixed {p.fixed_fp8_fraction:g}", *[""] * 7]
        else:
            cells = [f"{p.fp8_scale:.3f}", f"{p.first_layer:+.2f} / {p.last_layer:+.2f}",
                     ", ".join(f"{v:+.2f}" for v in p.layer_profile), f"{p.layer_sigma:.2f}", f"{p.row_sigma:.2f}",
                     f"{p.col_sigma:.2f}", f"{row.row_std_real:.3f} / {row.col_std_real:.3f}",
                     f"{row.row_std_synth:.3f} / {row.col_std_synth:.3f}"]
        lines.append("| " + " | ".join([f"`{role}`", f"{row.fp8_real:.3f}", *cells]) + " |")
    return "\n".join(lines)


def plot_comparison(real: Trace, synth: Trace, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Write a 2 x 2 figure (per-role FP8 fraction; row/column spreads; column and row FP8-fraction CDFs of
    :data:`PLOT_ROLES`) to ``path`` and return the :func:`compare_maps` table it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = compare_maps(real, synth)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    x = np.arange(len(table))
    bars = axes[0, 0]
    bars.bar(x - 0.2, table["fp8_real"], 0.4, label=f"real ({real.name})")
    bars.bar(x + 0.2, table["fp8_synth"], 0.4, label="synthetic twin")
    bars.set_xticks(x, table.index, rotation=60, ha="right")
    bars.set_ylabel("FP8 fraction of blocks")
    bars.set_title("FP8 fraction per map role")
    bars.legend()
    spread = axes[0, 1]
    for kind, marker in (("row", "o"), ("col", "s")):
        spread.scatter(table[f"{kind}_std_real"], table[f"{kind}_std_synth"], marker=marker,
                       label=f"{'row' if kind == 'row' else 'column'} spread")
    top = float(np.nanmax(table.filter(like="_std_").to_numpy())) * 1.05
    spread.plot([0, top], [0, top], color="grey", lw=0.8)
    spread.set_xlabel("real: std of per-row / per-column FP8 fraction")
    spread.set_ylabel("synthetic: same statistic")
    spread.set_title("map structure per role (mean over layers)")
    spread.legend()
    for axis, index, what in ((axes[1, 0], 1, "column (block index along K)"), (axes[1, 1], 0, "row")):
        for role in PLOT_ROLES:
            for label, trace, style in (("real", real, "-"), ("synth", synth, "--")):
                values = np.sort(np.concatenate([row_col_fractions(materialize_map(pmap))[index]
                                                 for r, _, pmap in distinct_maps(trace) if r == role]))
                axis.plot(values, np.linspace(0, 1, values.size), style, label=f"{role} {label}")
        axis.set_xlabel(f"FP8 fraction of a {what}")
        axis.set_ylabel("cumulative share")
        axis.set_title(f"per-{what.split()[0]} FP8 fraction, all layers")
        axis.legend()
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format=target.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return table
