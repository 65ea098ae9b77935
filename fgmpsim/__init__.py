"""fgmpsim: fine-grained mixed-precision (FGMP) quantization and accelerator simulation for LLMs.

One entry function per job; the CLI, notebooks and tests all call these:

* :func:`fake_quant` (bit-exact number formats), :func:`quantize` (FGMP and baselines on a real model, perplexity),
* :func:`export` (quantized real model -> :class:`Trace`), :func:`synth_trace` / :func:`gemm_trace` (synthetic
  traces), :func:`load_trace`,
* :func:`load_arch` (architecture YAML -> :class:`Arch`), :func:`simulate` (trace x arch -> :class:`RunResult`),
* :func:`compare` (designs vs the all-FP8 baseline on the same GEMMs), :func:`demo` (the main job on shipped
  defaults); the analysis behind them (tables, Pareto fronts, plots) is :mod:`fgmpsim.analysis`.
* :func:`validate` (docs/validation.md: fgmpsim against ZigZag, SCALE-Sim, published silicon, the FGMP paper).
* :func:`sweep.run` / :func:`sweep.load` (design-space sweeps into a resumable Parquet store).

``quantize`` and ``export`` need the ``model`` extra (torch, transformers); everything else runs without torch.
Names are imported on first use (PEP 562), so ``import fgmpsim`` and every CLI call stay fast: numpy, pandas and
ml_dtypes load only when a function that needs them is called.
"""

from __future__ import annotations

from fgmpsim._lazy import lazy_attributes
from fgmpsim.errors import (ConfigError, FgmpsimError, FormatError, MappingError, ModelError, PolicyError,
                            SweepError, TraceError)

__version__ = "0.1.0"

_LAZY = {
    "Arch": "fgmpsim.arch", "load_arch": "fgmpsim.arch",
    "fake_quant": "fgmpsim.formats",
    "quantize": "fgmpsim.quant",
    "Mapping": "fgmpsim.sim", "RunResult": "fgmpsim.sim", "simulate": "fgmpsim.sim",
    "GemmOp": "fgmpsim.trace", "Trace": "fgmpsim.trace", "gemm_trace": "fgmpsim.trace",
    "load_trace": "fgmpsim.trace", "synth_trace": "fgmpsim.trace",
    "export": "fgmpsim.trace.export",
    "compare": "fgmpsim.jobs", "demo": "fgmpsim.jobs",
    "validate": "fgmpsim.validation",
}
"""Public name -> the module that defines it."""

_SUBPACKAGES = ("analysis", "arch", "energy", "formats", "jobs", "quant", "sim", "sweep", "trace", "validation")

__all__ = ["ConfigError", "FgmpsimError", "FormatError", "MappingError", "ModelError", "PolicyError", "SweepError",
           "TraceError", "__version__", *_LAZY]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBPACKAGES)
