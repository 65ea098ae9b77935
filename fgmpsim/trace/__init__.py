"""Layer traces: the Trace record, its on-disk form, export from a quantized model and synthetic traces."""

from fgmpsim.trace.gemm import gemm_trace
from fgmpsim.trace.io import load_trace, save_trace
from fgmpsim.trace.models import KNOWN_MODELS, ModelShape, from_config_json, model_shape
from fgmpsim.trace.record import OP_KINDS, TRACE_FORMAT_VERSION, GemmOp, LazyMap, Trace
from fgmpsim.trace.synth import synth_trace
from fgmpsim.trace.synthetic_map import SyntheticMap

__all__ = ["KNOWN_MODELS", "OP_KINDS", "TRACE_FORMAT_VERSION", "GemmOp", "LazyMap", "ModelShape", "SyntheticMap",
           "Trace", "from_config_json", "gemm_trace", "load_trace", "model_shape", "save_trace", "synth_trace"]
