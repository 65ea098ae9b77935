"""The precision pairs of the mixed-precision datapath: a leaf module (no imports), so the arch records and the
energy model's action vocabulary can both name them without importing each other."""

PRECISION_PAIRS: tuple[str, ...] = ("fp4xfp4", "fp4xfp8", "fp8xfp4", "fp8xfp8")
"""Weight x activation precision pairs, in the order (w_fp8, a_fp8) = (0,0), (0,1), (1,0), (1,1)."""
