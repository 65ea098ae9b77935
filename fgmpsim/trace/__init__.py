"""Layer traces: the Trace record, its on-disk form, export from a quantized model and synthetic traces."""

from fgmpsim.trace.record import OP_KINDS, TRACE_FORMAT_VERSION, GemmOp, LazyMap, Trace

__all__ = ["OP_KINDS", "TRACE_FORMAT_VERSION", "GemmOp", "LazyMap", "Trace"]
