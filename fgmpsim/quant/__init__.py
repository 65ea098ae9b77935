"""FGMP quantization of real LLMs: Fisher information, block scores, global thresholds, sensitivity-weighted
clipping, the online activation (AQU) rule, baseline policies and perplexity. torch is imported lazily."""

from fgmpsim.quant.aqu_policy import ActivationRule, activation_block_scores, aqu_decide, aqu_quantize
from fgmpsim.quant.policies import POLICIES, Policy, get_policy
from fgmpsim.quant.run import QuantizeResult, quantize

__all__ = ["POLICIES", "ActivationRule", "Policy", "QuantizeResult", "activation_block_scores", "aqu_decide",
           "aqu_quantize", "get_policy", "quantize"]
