"""Layer traces: the Trace record, its on-disk form, export from a quantized model and synthetic traces.
Names are imported on first use (the record alone needs no ml_dtypes)."""

from fgmpsim._lazy import lazy_attributes

_LAZY = {
    "gemm_trace": "fgmpsim.trace.gemm",
    **dict.fromkeys(("load_trace", "save_trace"), "fgmpsim.trace.io"),
    **dict.fromkeys(("KNOWN_MODELS", "ModelShape", "from_config_json", "model_shape"), "fgmpsim.trace.models"),
    **dict.fromkeys(("OP_KINDS", "TRACE_FORMAT_VERSION", "GemmOp", "LazyMap", "Trace"), "fgmpsim.trace.record"),
    "synth_trace": "fgmpsim.trace.synth",
    "SyntheticMap": "fgmpsim.trace.synthetic_map",
}
"""Public name -> the module that defines it."""

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
