"""``quantize()``: FGMP and baseline policies on a real model, as a perplexity table."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.io.atomic import atomic_write
from fgmpsim.quant.defaults import DEFAULT_EVAL_TOKENS, DEFAULT_POLICIES
from fgmpsim.quant.perplexity import perplexity
from fgmpsim.quant.pipeline import Calibrated, calibrate, evaluate_policy
from fgmpsim.quant.policies import Policy, WeightPlan, get_policy
from fgmpsim.quant.scores import FP4_FORMAT, FP8_FORMAT, check_fraction

COLUMNS = ("policy", "fp4_fraction_target", "weight_fp4_fraction", "act_fp4_fraction", "perplexity",
           "delta_vs_fp8", "delta_vs_fp8_pct")


@dataclass(frozen=True, eq=False)
class QuantizeResult:
    """The perplexity table (one row per policy and target fraction, plus ``reference``), settings and notes."""

    table: pd.DataFrame
    settings: dict[str, Any]
    notes: tuple[str, ...]

    def to_markdown(self, command: str | None = None) -> str:
        """The table as a Markdown document: command, settings, table, notes."""
        lines = ["# Perplexity of FGMP and baseline policies", ""]
        if command:
            lines += ["```", command, "```", ""]
        lines += [f"- {key}: {value}" for key, value in self.settings.items() if key != "provenance"] + [""]
        lines += markdown_table(self.table) + [""]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, command: str | None = None, stem: str = "perplexity") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.csv`` into ``out_dir`` (created; each file atomically); returns both
        paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md, csv = out / f"{stem}.md", out / f"{stem}.csv"
        atomic_write(md, self.to_markdown(command).encode())
        atomic_write(csv, self.table.to_csv(index=False).encode())
        return md, csv


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """A pipe table of ``frame`` (floats to 4 significant digits, NaN as empty cells)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [header, rule, *rows]


RECIPE_NOTE = ("ZeroQuant-FP family (name:constraint+solver+g<group>+lorc<rank>): weights in groups of <group> "
               "input channels (E2M1 or INT4; 8-bit policies per output channel), activations per token with a "
               "dynamic FP32 scale (E4M3 amax/448 or INT8 amax/127); none = FP32 group scale amax/6, m1 = "
               "power-of-two group scale, m2 = FP32 channel scale x power-of-two group scale; gptq = GPTQ on "
               "Hessians of the unquantized model's calibration inputs (all calibration sequences), rtn = round to "
               "nearest; LoRC = rank-r SVD factors of the weight error in 8 bits with per-row FP32 scales, added "
               "in the forward pass; weight_fp4_fraction is the share of 4-bit weight blocks, act_fp4_fraction 0 "
               "means all activations 8-bit")


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    fp8 = frame.loc[frame.policy == "fp8", "perplexity"]
    if len(fp8):
        frame["delta_vs_fp8"] = frame.perplexity - fp8.iloc[0]
        frame["delta_vs_fp8_pct"] = 100.0 * frame.delta_vs_fp8 / fp8.iloc[0]
    return frame


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere): two CPUs of the same kernel
    level (e.g. AVX512 on Intel and on AMD) still run different float32 kernel paths."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def environment() -> dict[str, Any]:
    """What fake-quantized perplexities depend on beyond the command: float32 kernels (torch version, CPU model and
    kernel level, threads). Any last-bit change of a float32 result can flip an FP8/FP4 rounding, which flips later
    ones: the table is bit-identical only where these match."""
    import torch

    return {"torch": torch.__version__, "cpu_model": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads()}


def _recipe_note(policy: Policy, plan: WeightPlan) -> str:
    """One line on a recipe policy's storage: bits per weight (elements, scales, LoRC), clamped groups."""
    st = plan.storage
    per = {key: st[key] / st["weights"] for key in ("element_bits", "scale_bits", "lorc_bits")}
    text = (f"{policy.name}: {sum(per.values()):.4f} bits/weight ({per['element_bits']:g} element + "
            f"{per['scale_bits']:.4f} scale")
    if st["lorc_parameters"]:
        text += (f" + {per['lorc_bits']:.4f} LoRC: {st['lorc_parameters']:,} extra parameters, "
                 f"{100 * st['lorc_parameters'] / st['weights']:.2f}% of the quantized weights, 8-bit")
    text += ")"
    if policy.recipe.quantizer.constraint != "none":
        text += (f"; {st['clamped_groups']:,} of {st['groups']:,} groups had their exponent clamped into "
                 "[-8, 6]")
    return text


def _notes(cal: Calibrated) -> tuple[str, ...]:
    s = cal.settings
    head = ("lm_head quantized with the decoder linears" if s["include_lm_head"]
            else "lm_head and token embeddings are not quantized (float32 here, BF16 on an accelerator)")
    return (
        s["provenance"],
        f"quantized: every decoder nn.Linear (weights and input activations); {head}; attention matmuls "
        "(QK^T, PV), softmax and norms run unquantized in this perplexity evaluation",
        f"formats: low {FP4_FORMAT} (E2M1, E4M3 scale per 16-block, FP32 tensor scale), high {FP8_FORMAT} "
        "(E4M3, FP32 per-tensor scale); activation tensor scales per sequence, blocks along K",
        f"Fisher: {s['calib_sequences']} x {s['seq_len']} calibration tokens from the first 80% of the text tokens; "
        f"activation thresholds from {s['act_calib_sequences']} of those sequences (unquantized model)",
        f"perplexity: {s['eval_tokens'] // s['seq_len']} non-overlapping {s['seq_len']}-token windows from the last "
        "20% of the text tokens, exp(mean NLL) of every in-window next-token prediction",
        "fp4_fraction_target is empty for policies that do not mix precisions; weight/act fractions are achieved "
        "shares of 16-element blocks in low precision",
    )


def quantize(model: str = "smollm2-135m", policies: Sequence[str] = DEFAULT_POLICIES,
             fp4_fractions: Sequence[float] = (0.7,), text: str | Path | None = None, calib_sequences: int = 32,
             seq_len: int = 256, eval_tokens: int | None = DEFAULT_EVAL_TOKENS, seed: int = 0,
             include_lm_head: bool = False, progress: bool = True) -> QuantizeResult:
    """Evaluate ``policies`` at each target ``fp4_fractions`` on ``model``; Fisher is computed once for all.

    Policies that do not mix precisions (``fp8``, ``nvfp4``, the ZeroQuant-FP family) are evaluated once. The table also has a
    ``reference`` row (the unquantized model). ``eval_tokens=None`` evaluates the whole evaluation stream.
    """
    chosen = [get_policy(name) for name in policies]
    fractions = [check_fraction(f) for f in fp4_fractions]
    cal = calibrate(model, text, calib_sequences=calib_sequences, seq_len=seq_len, eval_tokens=eval_tokens,
                    include_lm_head=include_lm_head, progress=progress, policies=chosen)
    nan = float("nan")
    recipe_notes: list[str] = []
    rows = [dict(policy="reference", fp4_fraction_target=nan, weight_fp4_fraction=nan, act_fp4_fraction=nan,
                 perplexity=perplexity(cal.model, cal.eval_windows, batch_size=1, progress=progress,
                                       description="reference"))]
    for policy in chosen:
        for fraction in fractions if policy.uses_fraction else [nan]:
            ev = evaluate_policy(cal, policy, 0.0 if math.isnan(fraction) else fraction, seed=seed,
                                 progress=progress)
            rows.append(dict(policy=policy.name, fp4_fraction_target=fraction,
                             weight_fp4_fraction=ev.weight_plan.fp4_fraction, act_fp4_fraction=ev.act_fp4_fraction,
                             perplexity=ev.perplexity))
            if policy.recipe is not None:
                recipe_notes.append(_recipe_note(policy, ev.weight_plan))
    settings = {**cal.settings, "seed": seed, "fp4_fractions": list(fractions),
                "policies": [p.name for p in chosen], **environment()}
    notes = _notes(cal) + ((RECIPE_NOTE, *recipe_notes) if recipe_notes else ())
    return QuantizeResult(table=_table(rows), settings=settings, notes=notes)
