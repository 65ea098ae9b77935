"""Policy names and run defaults without the policies: what the CLI lists and defaults to, importable without
numpy or ml_dtypes.
:data:`fgmpsim.quant.policies.POLICIES` is keyed by exactly :data:`POLICY_NAMES` (a test holds them equal)."""

POLICY_NAMES: tuple[str, ...] = ("fp8", "nvfp4", "fgmp", "fgmp_no_clip", "mse", "random", "zqfp_w4a8", "int_w4a8",
                                 "w8a8_fp8", "w8a8_int8")
"""Every policy's base name; the last four take options after a colon (``zqfp_w4a8:m2+gptq+g64``)."""

DEFAULT_POLICIES: tuple[str, ...] = ("fp8", "nvfp4", "fgmp", "fgmp_no_clip", "mse", "random", "zqfp_w4a8:m1+rtn+g64")
"""FGMP, its ablations and baselines, and ZeroQuant-FP's M1 round-to-nearest variant (group 64: SmolLM2's 576
channels are no multiple of the paper's 256); the full ZeroQuant-FP comparison is its own table."""

DEFAULT_EVAL_TOKENS = 4096
"""16 windows of 256 tokens: keeps the default seven-policy table within a few minutes on 2 CPU cores."""
