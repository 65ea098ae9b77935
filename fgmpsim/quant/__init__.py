"""FGMP quantization of real LLMs: Fisher information, block scores, global thresholds, sensitivity-weighted
clipping, the online activation (AQU) rule, baseline policies and perplexity. torch is imported lazily, and every
name on first use (the CLI reads :mod:`~fgmpsim.quant.defaults` without numpy or ml_dtypes)."""

from fgmpsim._lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(("ActivationRule", "activation_block_scores", "aqu_decide", "aqu_quantize"),
                    "fgmpsim.quant.aqu_policy"),
    **dict.fromkeys(("POLICIES", "Policy", "get_policy"), "fgmpsim.quant.policies"),
    **dict.fromkeys(("QuantizeResult", "quantize"), "fgmpsim.quant.run"),
}
"""Public name -> the module that defines it."""

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
