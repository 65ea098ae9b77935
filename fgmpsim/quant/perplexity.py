"""Perplexity of a causal LM over fixed token windows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def perplexity(model: Any, windows: np.ndarray, *, batch_size: int = 4, progress: bool = True,
               description: str = "perplexity") -> float:
    """``exp(mean NLL)`` over every next-token prediction inside the ``[W, T]`` windows (``W * (T-1)`` of them).

    Windows are independent (no context carried over), so the first token of each window is only context.
    """
    import torch
    from rich.progress import track

    total_nll, count = 0.0, 0
    with torch.no_grad():
        for start in track(range(0, len(windows), batch_size), description=description, disable=not progress):
            ids = torch.from_numpy(windows[start:start + batch_size])
            logits = model(input_ids=ids, use_cache=False).logits
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="sum")
            total_nll += float(nll.double())
            count += ids[:, 1:].numel()
    return math.exp(total_nll / count)
