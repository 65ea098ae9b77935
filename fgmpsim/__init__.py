"""fgmpsim: fine-grained mixed-precision (FGMP) quantization and accelerator simulation for LLMs.

One entry function per job; the CLI, notebooks and tests all call these:

* :func:`fake_quant` (bit-exact number formats), :func:`quantize` (FGMP and baselines on a real model, perplexity),
* :func:`export` (quantized real model -> :class:`Trace`), :func:`synth_trace` / :func:`gemm_trace` (synthetic
  traces), :func:`load_trace`,
* :func:`load_arch` (architecture YAML -> :class:`Arch`), :func:`simulate` (trace x arch -> :class:`RunResult`),
* :func:`sweep.run` / :func:`sweep.load` (design-space sweeps into a resumable Parquet store).

``quantize`` and ``export`` need the ``model`` extra (torch, transformers); everything else runs without torch.
"""

from fgmpsim.arch import Arch, load_arch
from fgmpsim.errors import (ConfigError, FgmpsimError, FormatError, MappingError, ModelError, PolicyError,
                            SweepError, TraceError)
from fgmpsim.formats import fake_quant
from fgmpsim.quant import quantize
from fgmpsim.sim import Mapping, RunResult, simulate
from fgmpsim.trace import GemmOp, Trace, gemm_trace, load_trace, synth_trace
from fgmpsim.trace.export import export
from fgmpsim import sweep  # fgmpsim.sweep.run / fgmpsim.sweep.load: a package, not a function

__version__ = "0.1.0"

__all__ = ["Arch", "ConfigError", "FgmpsimError", "FormatError", "GemmOp", "Mapping", "MappingError", "ModelError",
           "PolicyError", "RunResult", "SweepError", "Trace", "TraceError", "__version__", "export", "fake_quant",
           "gemm_trace", "load_arch", "load_trace", "quantize", "simulate", "sweep", "synth_trace"]
