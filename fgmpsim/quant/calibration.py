"""Activation block scores on calibration data, from which the online (AQU) thresholds are set offline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fgmpsim.quant.aqu_policy import activation_block_scores
from fgmpsim.quant.fisher import Fisher
from fgmpsim.quant.scores import BLOCK_SIZE, fp4_fp8_candidates, quantile_threshold

WEIGHTINGS = ("fisher", "unweighted")


@dataclass(frozen=True, eq=False)
class ActivationSamples:
    """Block scores of every activation block of every site seen on calibration data, per weighting.

    ``scores["fisher"]`` uses each site's channel Fisher (FGMP), ``scores["unweighted"]`` plain squared FP4-FP8
    differences (the MSE baseline); both float32, flat, all sites together (one global threshold).
    """

    scores: dict[str, np.ndarray]
    sequences: int

    def threshold(self, weighting: str, fp4_fraction: float) -> float:
        """Score above which an activation block goes to FP8 so that ``fp4_fraction`` of the samples stay FP4."""
        return quantile_threshold(self.scores[weighting], fp4_fraction)


def sample_activation_scores(model: Any, windows: np.ndarray, fisher: Fisher, linears: dict[str, Any], *,
                             block_size: int = BLOCK_SIZE, progress: bool = True) -> ActivationSamples:
    """Run the unquantized model on ``windows`` (``[S, T]``) and score each site's input blocks, per sequence."""
    import torch
    from rich.progress import track

    collected: dict[str, list[np.ndarray]] = {w: [] for w in WEIGHTINGS}

    def hook_for(site: str):
        def hook(module: Any, args: tuple, output: Any) -> None:
            for seq in args[0].detach().float().numpy():
                candidates = fp4_fp8_candidates(seq, block_size)
                for weighting, channel_fisher in (("fisher", fisher.act[site]), ("unweighted", 1.0)):
                    scores = activation_block_scores(seq, channel_fisher, block_size, candidates)
                    collected[weighting].append(scores.astype(np.float32).ravel())
        return hook

    handles = [linears[site].register_forward_hook(hook_for(site)) for site in fisher.act]
    try:
        with torch.no_grad():
            for seq in track(windows, description="activation thresholds", disable=not progress):
                model(input_ids=torch.from_numpy(seq[None]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return ActivationSamples(scores={w: np.concatenate(parts) for w, parts in collected.items()},
                             sequences=len(windows))
