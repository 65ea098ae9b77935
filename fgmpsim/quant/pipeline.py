"""One calibrated model and the evaluation of a policy on it (shared by ``quantize`` and trace export).

Calibration happens once per model and text: Fisher information (for every quantized linear), activation score
samples (for the online thresholds) and the evaluation windows. Every policy and FP4 fraction then reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fgmpsim.errors import PolicyError
from fgmpsim.quant.calibration import ActivationSamples, sample_activation_scores
from fgmpsim.quant.defaults import DEFAULT_EVAL_TOKENS
from fgmpsim.quant.fakequant import SiteQuantizer, fake_quantized
from fgmpsim.quant.fisher import Fisher, estimate_fisher, quantizable_linears
from fgmpsim.quant.gptq import input_hessians
from fgmpsim.quant.model import load_model
from fgmpsim.quant.perplexity import perplexity
from fgmpsim.quant.policies import Policy, WeightPlan, WeightQuantizer, activation_rules
from fgmpsim.quant.text import calibration_windows, evaluation_windows, load_text, split_tokens

MAX_CALIB_SEQUENCES = 512
MAX_SEQ_LEN = 512
ACT_CALIB_SEQUENCES = 8
"""Calibration sequences whose activations set the online thresholds (a subset: the scores of every block are kept)."""


@dataclass(frozen=True, eq=False)
class Calibrated:
    """A model ready for policy evaluation: its quantized linears, Fisher, activation samples and token windows.

    ``calib_windows``/``eval_windows`` are ``[S, T]`` token ids; ``eval_stream`` the whole evaluation stream.
    """

    model: Any
    linears: dict[str, Any]
    fisher: Fisher
    samples: ActivationSamples
    calib_windows: np.ndarray
    eval_windows: np.ndarray
    eval_stream: np.ndarray
    weights: WeightQuantizer
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One policy at one FP4 fraction: its weights, perplexity and the activation blocks it quantized."""

    policy: Policy
    fp4_fraction: float
    weight_plan: WeightPlan
    perplexity: float
    sites: dict[str, SiteQuantizer]

    @property
    def act_fp4_fraction(self) -> float:
        """Share of activation blocks quantized to NVFP4 during evaluation, over all sites."""
        blocks = sum(s.blocks for s in self.sites.values())
        return sum(s.fp4_blocks for s in self.sites.values()) / blocks if blocks else float("nan")


def _check_int(value: Any, field_name: str, low: int, high: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise PolicyError(f"{field_name} must be an integer in [{low}, {high}], got {value!r}", field_name, fix)
    return int(value)


def calibrate_model(model: Any, calib: np.ndarray, eval_windows: np.ndarray, *, include_lm_head: bool = False,
                    progress: bool = True, settings: dict[str, Any] | None = None,
                    eval_stream: np.ndarray | None = None, policies: Sequence[Policy] = ()) -> Calibrated:
    """Fisher and activation samples of a torch causal LM on calibration windows ``calib`` (``[S, T]``).

    ``eval_stream`` defaults to the evaluation windows laid end to end. ``policies`` are checked against the
    model's linear shapes first (group size, LoRC rank), before any calibration work. GPTQ's input Hessians are
    computed on all of ``calib`` when a GPTQ policy is first evaluated.
    """
    linears = quantizable_linears(model, include_lm_head)
    shapes = {n: tuple(m.weight.shape) for n, m in linears.items()}
    for policy in policies:
        if policy.recipe is not None:
            policy.recipe.check(shapes, policy.name)
    fisher = estimate_fisher(model, calib, linears, progress=progress)
    samples = sample_activation_scores(model, calib[:ACT_CALIB_SEQUENCES], fisher, linears, progress=progress)
    sites = sorted(set(fisher.site.values()))
    weights = WeightQuantizer({n: m.weight.detach().numpy() for n, m in linears.items()}, fisher.weight,
                              site_of=fisher.site,
                              hessians=lambda: input_hessians(model, calib, linears, sites, progress=progress))
    return Calibrated(model=model, linears=linears, fisher=fisher, samples=samples, calib_windows=calib,
                      eval_windows=eval_windows,
                      eval_stream=eval_windows.ravel() if eval_stream is None else eval_stream,
                      weights=weights, settings=dict(settings or {}))


def calibrate(model: str = "smollm2-135m", text: str | Path | None = None, *, calib_sequences: int = 32,
              seq_len: int = 256, eval_tokens: int | None = DEFAULT_EVAL_TOKENS, include_lm_head: bool = False,
              progress: bool = True, policies: Sequence[Policy] = ()) -> Calibrated:
    """Load ``model`` and the text, split the tokens, and calibrate (see :func:`calibrate_model`)."""
    calib_sequences = _check_int(calib_sequences, "calib_sequences", 1, MAX_CALIB_SEQUENCES,
                                 f"use 1 to {MAX_CALIB_SEQUENCES} calibration sequences")
    seq_len = _check_int(seq_len, "seq_len", 2, MAX_SEQ_LEN, f"use a sequence length from 2 to {MAX_SEQ_LEN}")
    corpus, source = load_text(text)
    loaded = load_model(model)
    split = split_tokens(loaded.tokenizer, corpus, source)
    calib = calibration_windows(split, calib_sequences, seq_len)
    windows = evaluation_windows(split, seq_len, eval_tokens)
    settings = {"model": model, "provenance": loaded.provenance, "text": source,
                "text_tokens": int(len(split.calibration) + len(split.evaluation)),
                "calib_sequences": calib_sequences, "seq_len": seq_len,
                "act_calib_sequences": min(calib_sequences, ACT_CALIB_SEQUENCES),
                "eval_tokens": int(windows.size), "include_lm_head": include_lm_head}
    return calibrate_model(loaded.model, calib, windows, include_lm_head=include_lm_head, progress=progress,
                           settings=settings, eval_stream=split.evaluation, policies=policies)


def evaluate_policy(cal: Calibrated, policy: Policy, fp4_fraction: float, *, seed: int = 0,
                    progress: bool = True, record_maps: bool = False, windows: np.ndarray | None = None,
                    ) -> Evaluation:
    """Perplexity of ``cal.model`` under ``policy`` at ``fp4_fraction`` on ``windows`` (default: the eval windows)."""
    plan = cal.weights.plan(policy, fp4_fraction, seed)
    rules = activation_rules(policy, fp4_fraction, cal.fisher.act, cal.samples, seed)
    label = f"{policy.name} @ {fp4_fraction:g}" if policy.uses_fraction else policy.name
    with fake_quantized(cal.model, plan.weights, rules, cal.fisher.site, record_maps, plan.lorc) as sites:
        ppl = perplexity(cal.model, cal.eval_windows if windows is None else windows, batch_size=1,
                         progress=progress, description=label)
    return Evaluation(policy=policy, fp4_fraction=fp4_fraction, weight_plan=plan, perplexity=ppl, sites=sites)
