"""Group-wise weight quantizers of the ZeroQuant-FP family (numpy only).

A weight ``W[N, K]`` is split into groups of ``group_size`` consecutive input channels per output row; each group has
one scale. Elements are E2M1 (FP4), INT4, E4M3 (FP8) or INT8; ``group_size=None`` is one group per row (per output
channel, the W8A8 references). FP4 scales follow one of ZeroQuant-FP's scale constraints (Wu, Yao, He 2023,
"ZeroQuant-FP", Sec. 4), which decide whether the FP4 -> FP8 cast in front of an FP8 x FP8 datapath is exact:

* ``none``: a real FP32 scale ``amax/6`` per group. Not castable: ``e2m1 * s`` is in general no E4M3 value.
* ``m1``: the group scale rounded up to a power of two, ``2^e`` with ``e = ceil(log2(amax/6))``. The cast multiplies
  by ``2^e``, a shift of the exponent.
* ``m2``: one real FP32 scale per output channel ``S_c`` and group scales ``S_c * 2^e``. Only ``e2m1 * 2^e`` enters
  the FP8 datapath; ``S_c`` multiplies the accumulated output of row ``n`` (it factors out of the K reduction). ``S_c``
  is the channel's largest group scale divided by ``2^GROUP_EXP_MAX``, so that group gets ``e = GROUP_EXP_MAX`` and
  keeps its exact ``amax/6`` scale; the others round up to a power-of-two multiple of ``S_c``.

``e2m1 * 2^e`` is exactly an E4M3 value only for ``e`` in ``[GROUP_EXP_MIN, GROUP_EXP_MAX] = [-8, 6]``: E2M1's
smallest non-zero value 0.5 times ``2^-8`` is E4M3's smallest subnormal ``2^-9``, and ``6 * 2^6 = 384 <= 448 < 6 *
2^7``. The exponent is clamped to that range. What the clamp costs: a group whose ideal exponent is below -8 (M1:
``amax < 6 * 2^-9 = 0.0117``; M2: ``amax`` more than ``2^14`` below the channel's largest group) is quantized on the
coarser ``2^-8`` grid, so its values below ``2^-10`` (M1) flush to zero; an exponent above 6 (M1 only: ``amax >
384``) saturates at ``6 * 2^6``. :meth:`GroupQuantizer.clamped_groups` counts such groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fgmpsim.formats import E2M1, E4M3, INT4, INT8, fake_quant
from fgmpsim.formats.scales import pow2_ceil_exponent

GROUP_EXP_MIN = -8
GROUP_EXP_MAX = 6
CONSTRAINTS = ("none", "m1", "m2")
ELEMENTS = ("fp4", "int4", "fp8", "int8")
_FORMATS = {("fp4", "none"): "fp4_fp32", ("fp4", "m1"): "fp4_pow2", ("fp4", "m2"): "fp4_fp32",
            ("int4", "none"): "int4", ("fp8", "none"): "fp8_e4m3_block", ("int8", "none"): "int8"}
"""The ``fgmpsim.formats`` format each (element, constraint) quantizes with, given the scales chosen here."""
_ELEMENT_TYPES = {"fp4": E2M1, "int4": INT4, "fp8": E4M3, "int8": INT8}


@dataclass(frozen=True)
class GroupQuantizer:
    """Elements ``element`` with one scale per ``group_size`` input channels (None: per output channel), scales
    under ``constraint`` (FP4 only; others use ``"none"``: FP32 ``amax / max_element``)."""

    element: str
    group_size: int | None
    constraint: str = "none"

    @property
    def fmt(self) -> str:
        """The registry format of the elements and scales (``fp4_pow2`` for M1, ``fp4_fp32`` for none/M2, ...)."""
        return _FORMATS[(self.element, self.constraint)]

    @property
    def bits(self) -> int:
        """Bits per element."""
        return 4 if self.element in ("fp4", "int4") else 8

    def group(self, k: int) -> int:
        """Group length for ``k`` input channels."""
        return self.group_size or k

    def channel_scale(self, w: np.ndarray) -> np.ndarray | None:
        """M2's FP32 per-output-channel scale ``[N]`` of ``w[N, K]`` (None for the other constraints)."""
        if self.constraint != "m2":
            return None
        amax = np.max(np.abs(w), axis=1)
        scale = (amax / np.float32(E2M1.max_value)) * np.float32(2.0 ** -GROUP_EXP_MAX)
        # fl(amax / 6) may round down; one ulp up keeps 6 * S_c * 2^6 >= amax, so the largest group needs e = 6
        low = np.float64(E2M1.max_value) * scale * 2.0 ** GROUP_EXP_MAX < amax
        return np.where(low, np.nextafter(scale, np.float32(np.inf)), scale)

    @staticmethod
    def ideal_exponents(amax: np.ndarray, channel: np.ndarray | None) -> np.ndarray:
        """Unclamped M1/M2 exponents: the smallest ``e`` with ``6 * 2^e (* S_c) >= amax`` per group ``[N, G]``."""
        unit = E2M1.max_value if channel is None else E2M1.max_value * channel.astype(np.float64)[:, None]
        return pow2_ceil_exponent(amax, unit)

    def group_exponents(self, amax: np.ndarray, channel: np.ndarray | None) -> np.ndarray:
        """Power-of-two exponents (int32, clamped to [-8, 6]) of groups with amax ``[N, G]`` under M1/M2; all-zero
        groups get -8."""
        e = self.ideal_exponents(amax, channel)
        return np.clip(np.where(amax > 0, e, GROUP_EXP_MIN), GROUP_EXP_MIN, GROUP_EXP_MAX)

    def group_scales(self, blocks: np.ndarray, channel: np.ndarray | None) -> np.ndarray:
        """Scales (float32 ``[N, G]``) of weight groups ``blocks[N, G, g]``; ``channel`` from :meth:`channel_scale`."""
        if self.constraint == "none":
            return np.max(np.abs(blocks), axis=-1) / np.float32(_ELEMENT_TYPES[self.element].max_value)
        amax = np.max(np.abs(blocks), axis=-1)
        pow2 = np.ldexp(np.float32(1.0), self.group_exponents(amax, channel)).astype(np.float32)
        return pow2 if channel is None else channel[:, None] * pow2

    def quantize(self, w: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Dequantized ``w[N, C]`` with one given scale per row and group (``scales[N, G]``, ``G`` divides ``C``)."""
        return fake_quant(w, self.fmt, w.shape[1] // scales.shape[1], block_scale=scales)

    def rtn(self, w: np.ndarray) -> np.ndarray:
        """Round to nearest: every group at once with scales from ``w`` itself (float32 ``[N, K]``)."""
        g = self.group(w.shape[1])
        blocks = w.reshape(w.shape[0], -1, g)
        return self.quantize(w, self.group_scales(blocks, self.channel_scale(w)))

    def clamped_groups(self, w: np.ndarray) -> int:
        """Groups of ``w`` whose M1/M2 exponent was clamped into [-8, 6] (0 for unconstrained scales)."""
        if self.constraint == "none":
            return 0
        g = self.group(w.shape[1])
        amax = np.max(np.abs(w.reshape(w.shape[0], -1, g)), axis=-1)
        e = self.ideal_exponents(amax, self.channel_scale(w))
        return int(np.count_nonzero((amax > 0) & ((e < GROUP_EXP_MIN) | (e > GROUP_EXP_MAX))))

    def scale_bits(self, n: int, k: int) -> int:
        """Storage bits of the scales of an ``[n, k]`` weight: 8 per power-of-two exponent (E8M0, M1/M2 groups),
        32 per FP32 scale (unconstrained groups, M2's channel scales)."""
        groups = n * (k // self.group(k))
        if self.constraint == "m1":
            return groups * 8
        if self.constraint == "m2":
            return groups * 8 + n * 32
        return groups * 32

