"""fgmpsim: fine-grained mixed-precision (FGMP) quantization and accelerator simulation for LLMs."""

from fgmpsim.errors import (ConfigError, FgmpsimError, FormatError, MappingError, ModelError, PolicyError,
                            SweepError, TraceError)
from fgmpsim.trace.record import GemmOp, Trace
from fgmpsim.arch.record import Arch

__version__ = "0.1.0"

__all__ = ["Arch", "ConfigError", "FgmpsimError", "FormatError", "GemmOp", "MappingError", "ModelError",
           "PolicyError", "SweepError", "Trace", "TraceError", "__version__"]
