"""The datapath precisions and the weight x activation precision pairs (lane modes): a leaf module (no imports), so
the arch records and the energy model's action vocabulary can both name them without importing each other.

Two datapath families exist: floating point (``fp4`` E2M1 and/or ``fp8`` E4M3 lanes, the FGMP and baseline
designs) and integer (``int8`` lanes, for the INT traces of the ZeroQuant-FP comparison). The engines see a lane
mode as a (weight wide, activation wide) slot of a 2 x 2 table, ``wide`` meaning an 8-bit operand; each family
names its slots (:func:`slot_pairs`)."""

FP_PAIRS: tuple[str, ...] = ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")
"""Weight x activation pairs of a floating-point datapath, in the slot order (w_wide, a_wide) = (0,0), (0,1), (1,0),
(1,1)."""
INT_PAIR = "int8xint8"
"""The one mode of an INT8 datapath (INT4 weights reach it sign-extended: route ``widen``)."""
PRECISION_PAIRS: tuple[str, ...] = (*FP_PAIRS, INT_PAIR)
"""Every lane mode the simulator counts MACs in (``macs_<pair>``)."""
DATAPATH_PRECISIONS: tuple[str, ...] = ("fp4", "fp8", "int8")
"""Lane precisions an arch may list in ``pe_array.datapath_precisions`` (one family per array)."""
WIDE_PRECISIONS: tuple[str, ...] = ("fp8", "int8")
"""The 8-bit precisions: a ``True`` bit of a precision map on their datapath."""


def is_integer(datapath_precisions: tuple[str, ...]) -> bool:
    """Whether a datapath is an integer one (``int8`` lanes)."""
    return "int8" in datapath_precisions


def slot_pairs(datapath_precisions: tuple[str, ...]) -> tuple[str, str, str, str]:
    """The pair name of each (w_wide, a_wide) slot, indexed ``2 * w_wide + a_wide``: :data:`FP_PAIRS` on a
    floating-point datapath; on an INT8 datapath every slot is ``int8xint8`` (its operands are all 8-bit there,
    so only slot (1, 1) is ever occupied)."""
    return (INT_PAIR,) * 4 if is_integer(datapath_precisions) else FP_PAIRS  # type: ignore[return-value]


def mac_counts(block_pairs, vector_width: int, datapath_precisions: tuple[str, ...]) -> dict[str, int]:
    """``macs_<pair>`` for every pair of :data:`PRECISION_PAIRS` from the block pairs per slot
    (``block_pairs[w_wide][a_wide]``), ``vector_width`` scalar MACs each, named by :func:`slot_pairs`."""
    names = slot_pairs(datapath_precisions)
    counts = {f"macs_{pair}": 0 for pair in PRECISION_PAIRS}
    for w in (0, 1):
        for a in (0, 1):
            counts[f"macs_{names[2 * w + a]}"] += int(vector_width * block_pairs[w][a])
    return counts
