"""Packing 4-bit codes two per byte.

Layout: codes in C order; element ``2i`` in the low nibble of byte ``i``, element ``2i + 1`` in the high nibble
(the order NVIDIA and OCP MX use for FP4 in memory). An odd count leaves a zero high nibble in the last byte.
"""

from __future__ import annotations

import numpy as np


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Flat ``uint8`` array of 4-bit codes (values 0..15) -> ``ceil(n / 2)`` bytes."""
    flat = codes.reshape(-1)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    pairs = flat.reshape(-1, 2)
    return pairs[:, 0] | (pairs[:, 1] << np.uint8(4))


def unpack_nibbles(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of ``pack_nibbles``: the first ``count`` 4-bit codes as a flat ``uint8`` array."""
    pairs = np.stack([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=-1)
    return pairs.reshape(-1)[:count]
