"""Diagonal empirical Fisher information of a causal LM's linear layers.

For calibration sequences ``s = 1..S`` with LM loss ``L_s`` (mean next-token NLL of sequence ``s``):

* weights: ``F_W[n, k] = 1/S * sum_s (dL_s/dW[n, k])^2`` for every quantized linear ``W[N, K]``;
* input activations: ``F_X[k] = 1/(S*T) * sum_{s,t} (dL_s/dx[s, t, k])^2``, per input channel, for every
  *activation site*. Linears that read the same tensor (q/k/v read the normed residual stream, gate/up the second one)
  form one site and share its Fisher, because the hardware quantizes that tensor once, in the AQU of its producer;
  the gradient of a shared tensor is the sum of the gradients through each reader;
* outputs: ``F_Y[n]`` the same per-channel mean for each linear's output (the attention operands Q, K, V are the
  outputs of q/k/v_proj; RoPE later rotates channel pairs of Q and K, and the pre-RoPE Fisher stands in for them).

Per-sequence weight gradients come from the saved layer input and output gradient (``g_s = sum_t dy^T x``), so the
model's own parameter gradients are never formed; accumulation is float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fgmpsim.errors import PolicyError


@dataclass(frozen=True, eq=False)
class Fisher:
    """Fisher diagonals (units of loss^2 per value^2) and the site of every linear's input.

    ``weight[name]`` is ``[N, K]`` (summed in float64, stored as float32 to halve a full model's memory);
    ``act[site]`` is ``[K]``; ``site[name]`` names the site (the first linear that reads that tensor) of linear
    ``name``; ``output[name]`` is ``[N]`` (float64).
    """

    weight: dict[str, np.ndarray]
    act: dict[str, np.ndarray]
    site: dict[str, str]
    output: dict[str, np.ndarray]
    sequences: int
    seq_len: int


def quantizable_linears(model: Any, include_lm_head: bool = False) -> dict[str, Any]:
    """The model's ``nn.Linear`` modules by qualified name, in execution order; the LM head only on request."""
    import torch

    head = model.get_output_embeddings()
    linears = {name: mod for name, mod in model.named_modules()
               if isinstance(mod, torch.nn.Linear) and mod is not head}
    if include_lm_head:
        head_name = next(name for name, mod in model.named_modules() if mod is head)
        linears[head_name] = head
    return linears


class _Accumulator:
    """Forward hooks that register gradient hooks and sum squared per-sequence gradients in float64."""

    def __init__(self, linears: dict[str, Any]) -> None:
        self.linears = linears
        self.weight = {n: np.zeros(tuple(m.weight.shape), np.float64) for n, m in linears.items()}
        self.output = {n: np.zeros(m.weight.shape[0], np.float64) for n, m in linears.items()}
        self.act: dict[str, np.ndarray] = {}
        self.site: dict[str, str] = {}
        self._seen: dict[int, tuple[Any, str]] = {}

    def hook(self, name: str):
        def forward_hook(module: Any, args: tuple, output: Any) -> None:
            x = args[0]
            seen = self._seen.get(id(x))
            if seen is None:
                self._seen[id(x)] = (x, name)
                site = self.site.setdefault(name, name)
                self.act.setdefault(site, np.zeros(x.shape[-1], np.float64))
                x.register_hook(lambda g: self._add_act(site, g))
            else:
                self.site.setdefault(name, seen[1])
            saved = x.detach()
            output.register_hook(lambda g: self._add_weight(name, saved, g))
        return forward_hook

    def _add_act(self, site: str, grad: Any) -> None:
        self.act[site] += (grad.double() ** 2).sum(dim=(0, 1)).numpy()

    def _add_weight(self, name: str, x: Any, grad: Any) -> None:
        import torch

        self.output[name] += (grad.double() ** 2).sum(dim=(0, 1)).numpy()
        for b in range(grad.shape[0]):  # one sequence at a time: the LM head's gradient is 113 MB per sequence
            g = torch.mm(grad[b].transpose(0, 1), x[b])
            self.weight[name] += (g.double() ** 2).numpy()

    def end_batch(self) -> None:
        self._seen.clear()


def estimate_fisher(model: Any, windows: np.ndarray, linears: dict[str, Any], *, batch_size: int = 4,
                    progress: bool = True) -> Fisher:
    """Empirical Fisher of ``linears`` over calibration ``windows`` (``[S, T]`` token ids)."""
    import torch
    from rich.progress import track

    sequences, seq_len = windows.shape
    if sequences < 1 or seq_len < 2:
        raise PolicyError(f"calibration needs at least one sequence of 2+ tokens, got {sequences} x {seq_len}",
                          "calib_sequences", "use at least 1 calibration sequence and --seq-len >= 2")
    acc = _Accumulator(linears)
    handles = [mod.register_forward_hook(acc.hook(name)) for name, mod in linears.items()]
    embed = model.get_input_embeddings()
    starts = range(0, sequences, batch_size)
    try:
        for start in track(starts, description="Fisher (calibration)", disable=not progress):
            ids = torch.from_numpy(windows[start:start + batch_size])
            with torch.enable_grad():
                emb = embed(ids).detach().requires_grad_(True)
                logits = model(inputs_embeds=emb, use_cache=False).logits
                nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:],
                                                        reduction="none")
                nll.mean(dim=1).sum().backward()
            acc.end_batch()
    finally:
        for h in handles:
            h.remove()
    return Fisher(weight={n: (w / sequences).astype(np.float32) for n, w in acc.weight.items()},
                  act={s: a / (sequences * seq_len) for s, a in acc.act.items()},
                  site=dict(acc.site),
                  output={n: o / (sequences * seq_len) for n, o in acc.output.items()},
                  sequences=sequences, seq_len=seq_len)
