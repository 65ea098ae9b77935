"""GPTQ (Frantar et al., 2023): second-order, column-by-column weight quantization from calibration activations.

For a linear ``y = x W^T`` with calibration inputs ``X[n, K]``, the layer-wise objective is
``||X W^T - X Q^T||_F^2 = tr((W - Q) H (W - Q)^T)`` with ``H = X^T X``. GPTQ quantizes one input channel (column of
``W``) at a time and moves each column's rounding error onto the columns not yet quantized, weighted by the inverse
Hessian: with ``U`` the upper Cholesky factor of ``(H + damp I)^-1``, column ``i``'s error ``(w_i - q_i) / U[i, i]``
updates the rest by ``- err * U[i, i:]``. Updates inside a lazy batch of ``block_columns`` columns are applied at
once to the columns after it (one matrix product per batch instead of one rank-1 update per column).
``damp = DAMP_RATIO * mean(diag H)``; inputs that are always zero (``H[k, k] = 0``) get weight 0.

Group scales are chosen when a group's first column comes up, from the weights as updated so far (the lazy batch is
a multiple of the group, so a group never straddles two batches); M2's channel scale is fixed from the original
weights. With ``H = I`` nothing is moved and the result equals round to nearest bit for bit.

The Hessians are those of the unquantized model on the calibration windows, all layers in one pass (GPTQ's own
scheme re-collects each layer's inputs after the layers before it are quantized; this one does not). torch on CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgmpsim.quant.groupwise import GroupQuantizer

DAMP_RATIO = 0.01
BLOCK_COLUMNS = 128


def input_hessians(model: Any, windows: np.ndarray, linears: dict[str, Any], sites: list[str], *,
                   progress: bool = True) -> dict[str, np.ndarray]:
    """``H = X^T X`` (float64 ``[K, K]``) of the inputs of each site linear over ``windows`` (``[S, T]``).

    Each sequence's ``x^T x`` is a float32 product, summed in float64 in window order (the same every run). When
    every site lies inside the decoder stack (``model.model``, as in Llama-style models), only the stack runs:
    the LM head's logits (576 x 49,152 per token on SmolLM2, a fifth of the forward's FLOPs) feed no site.
    """
    import torch
    from rich.progress import track

    sums = {site: torch.zeros((linears[site].in_features,) * 2, dtype=torch.float64) for site in sites}

    def hook_for(site: str):
        def hook(module: Any, args: tuple, output: Any) -> None:
            for seq in args[0].detach().float():
                sums[site] += (seq.T @ seq).double()
        return hook

    stack = getattr(model, "model", None)
    run = stack if stack is not None and all(site.startswith("model.") for site in sites) else model
    handles = [linears[site].register_forward_hook(hook_for(site)) for site in sites]
    try:
        with torch.no_grad():
            for seq in track(windows, description="GPTQ Hessians", disable=not progress):
                run(input_ids=torch.from_numpy(seq[None]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {site: h.numpy() for site, h in sums.items()}


def gptq(w: np.ndarray, hessian: np.ndarray, quantizer: GroupQuantizer, *, damp_ratio: float = DAMP_RATIO,
         block_columns: int = BLOCK_COLUMNS) -> np.ndarray:
    """GPTQ-quantized (dequantized, float32) ``w[N, K]`` for inputs with Hessian ``hessian[K, K]``."""
    import torch

    weights = torch.from_numpy(np.array(w, dtype=np.float32))
    h = torch.from_numpy(np.array(hessian, dtype=np.float64))
    n, k = weights.shape
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    weights[:, dead] = 0.0
    h += damp_ratio * torch.diagonal(h).mean() * torch.eye(k, dtype=torch.float64)
    # cholesky_solve against I: the same inverse as cholesky_inverse, several times faster on CPU
    inverse = torch.cholesky_solve(torch.eye(k, dtype=torch.float64), torch.linalg.cholesky(h))
    u = torch.linalg.cholesky(inverse, upper=True).float()
    channel = quantizer.channel_scale(w)
    g = quantizer.group(k)
    step = g * max(1, block_columns // g)
    # Input channels as rows, so a column of W is contiguous. The per-column work is small element-wise numpy
    # (torch's thread pool costs ~15x on ops this small on a shared machine); the batch updates are torch GEMMs.
    rows = weights.T.contiguous()
    rows_np, u_np = rows.numpy(), u.numpy()
    out = np.zeros_like(rows_np)
    scale = None
    for i1 in range(0, k, step):
        i2 = min(i1 + step, k)
        batch = rows_np[i1:i2].copy()
        errors = np.zeros_like(batch)
        u_batch = u_np[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if i % g == 0:
                scale = quantizer.group_scales(batch[i:i + g].T[:, None, :], channel)
            q = quantizer.quantize(batch[i][:, None], scale)[:, 0]
            out[i1 + i] = q
            err = (batch[i] - q) / u_batch[i, i]
            batch[i:] -= np.outer(u_batch[i, i:], err)
            errors[i] = err
        rows[i2:].addmm_(u[i1:i2, i2:].T, torch.from_numpy(errors), alpha=-1.0)
    return np.ascontiguousarray(out.T)


def reconstruction_error(w: np.ndarray, q: np.ndarray, hessian: np.ndarray) -> float:
    """``tr((W - Q) H (W - Q)^T)`` in float64: the layer's squared output error on the calibration inputs."""
    d = (np.asarray(w, np.float64) - q)
    return float(np.einsum("nk,kl,nl->", d, hessian, d))
