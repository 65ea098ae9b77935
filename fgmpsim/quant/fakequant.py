"""Fake-quantized forward pass: decoder linears swapped for wrappers with quantized weights and online activations.

Each wrapped linear multiplies by its precomputed dequantized weight (NVFP4/FP8 blocks by the policy's map) and
quantizes its input first, per sequence (the tensor scales cover one sequence's ``[T, K]`` activations, blocks run
along K) with the activation rule of its *site*. Linears that read the same tensor (q/k/v, gate/up) share one
:class:`SiteQuantizer`, which quantizes that tensor once, as the AQU of its producer would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from fgmpsim.quant.aqu_policy import ActivationRule


class SiteQuantizer:
    """Online quantization of one activation tensor, with block counts (and optionally the maps) it produced."""

    def __init__(self, rule: ActivationRule, record_maps: bool = False) -> None:
        self.rule = rule
        self.fp4_blocks = 0
        self.blocks = 0
        self.maps: list[np.ndarray] | None = [] if record_maps else None
        self._last: tuple[Any, Any] | None = None

    @property
    def fp4_fraction(self) -> float:
        """Share of the blocks quantized so far that went to NVFP4 (nan before any)."""
        return self.fp4_blocks / self.blocks if self.blocks else float("nan")

    def __call__(self, x: Any) -> Any:
        import torch

        if self._last is not None and self._last[0] is x:
            return self._last[1]
        rows = x.detach().float().reshape(-1, x.shape[-2], x.shape[-1]).numpy()
        out = np.empty_like(rows)
        for i, seq in enumerate(rows):
            out[i], fp8_map = self.rule.quantize(seq)
            self.blocks += fp8_map.size
            self.fp4_blocks += fp8_map.size - int(np.count_nonzero(fp8_map))
            if self.maps is not None:
                self.maps.append(fp8_map)
        result = torch.from_numpy(out).reshape(x.shape).to(x.dtype)
        self._last = (x, result)
        return result


def _fake_linear_class():
    import torch

    def buffer(array: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    class FakeQuantLinear(torch.nn.Module):
        """``y = Q_act(x) @ W_q^T + b`` with a fixed dequantized weight ``W_q`` and a shared site quantizer; with
        LoRC factors ``(A, B)`` also ``+ (Q_act(x) @ B^T) @ A^T``, the low-rank path run beside the main GEMM."""

        def __init__(self, weight: np.ndarray, bias: Any, site: SiteQuantizer | None,
                     lorc: tuple[np.ndarray, np.ndarray] | None = None) -> None:
            super().__init__()
            self.register_buffer("weight", buffer(weight))
            self.bias = bias
            self.site = site
            self.lorc = None if lorc is None else (buffer(lorc[0]), buffer(lorc[1]))

        def forward(self, x: Any) -> Any:
            xq = self.site(x) if self.site else x
            y = torch.nn.functional.linear(xq, self.weight, self.bias)
            if self.lorc is not None:
                y = y + torch.nn.functional.linear(torch.nn.functional.linear(xq, self.lorc[1]), self.lorc[0])
            return y

    return FakeQuantLinear


@contextlib.contextmanager
def fake_quantized(model: Any, weights: dict[str, np.ndarray], rules: dict[str, ActivationRule | None],
                   site_of: dict[str, str], record_maps: bool = False,
                   lorc: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                   ) -> Iterator[dict[str, SiteQuantizer]]:
    """Within the block, ``model``'s linears named in ``weights`` are fake-quantized; restored on exit.

    ``rules[site]`` is the activation rule of each site (None leaves that input unquantized); ``site_of`` maps each
    linear to its site; ``lorc`` gives LoRC factors by linear. Yields the site quantizers by site name (counts,
    recorded maps).
    """
    lorc = lorc or {}
    fake_linear = _fake_linear_class()
    sites = {site: SiteQuantizer(rule, record_maps) for site, rule in rules.items() if rule is not None}
    originals: list[tuple[Any, str, Any]] = []
    try:
        for name, weight in weights.items():
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            original = getattr(parent, child)
            originals.append((parent, child, original))
            setattr(parent, child, fake_linear(weight, original.bias, sites.get(site_of[name]), lorc.get(name)))
        yield sites
    finally:
        for parent, child, original in reversed(originals):
            setattr(parent, child, original)
