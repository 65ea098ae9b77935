"""LoRC, low-rank compensation (ZeroQuant-V2, Yao et al. 2023; used by ZeroQuant-FP): rank-r factors of the weight
quantization error, added back in the forward pass.

With ``E = W - W_q = U S V^T`` (SVD), ``A = U_r sqrt(S_r)`` ``[N, r]`` and ``B = sqrt(S_r) V_r^T`` ``[r, K]``; the
layer computes ``y = x W_q^T + (x B^T) A^T``. By Eckart-Young, unquantized factors leave
``||E - A B||_F^2 = sum_{i > r} s_i^2``. The factors are stored in 8 bits with one FP32 scale per row (ZeroQuant-V2
keeps them in 8 bits): FP8 E4M3 for the floating-point family, INT8 for the integer one.
"""

from __future__ import annotations

import numpy as np

from fgmpsim.formats import fake_quant
from fgmpsim.trace.formats import lorc_storage_bits

__all__ = ["lorc_factors", "lorc_storage_bits"]


def lorc_factors(error: np.ndarray, rank: int, factor_format: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(A [N, r], B [r, K])`` float32 of ``error[N, K]`` (SVD in float64); ``factor_format`` (a per-row scaled
    8-bit format such as ``fp8_e4m3_block`` or ``int8``) quantizes each factor row, None keeps them exact."""
    u, s, vt = np.linalg.svd(np.asarray(error, dtype=np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    a = (u[:, :rank] * root).astype(np.float32)
    b = (root[:, None] * vt[:rank]).astype(np.float32)
    if factor_format is None:
        return a, b
    return fake_quant(a, factor_format, rank), fake_quant(b, factor_format, b.shape[1])
