"""The FGMP accelerator simulator: mapping, exact tile costs, the lockstep tile pipeline, engines and results.

Entry point: :func:`simulate` (``engine="tile" | "event" | "reference" | "analytic"``) -> :class:`RunResult`.
Layers, top to bottom: :mod:`~fgmpsim.sim.simulate` -> :mod:`~fgmpsim.sim.engines` -> :mod:`~fgmpsim.sim.schedule`
(timing) -> :mod:`~fgmpsim.sim.hw` (operands, lane work, traffic) -> :mod:`~fgmpsim.sim.vector` (numpy grid and map
counts), with :mod:`~fgmpsim.sim.mapping` (tiling, buffers, the mapper) beside. The microarchitecture is specified
in those modules' docstrings.
"""

from fgmpsim._lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(("Bound", "op_bound"), "fgmpsim.sim.engines.analytic"),
    **dict.fromkeys(("Mapping", "Tiling", "choose_tiling", "plan_op"), "fgmpsim.sim.mapping"),
    "RunResult": "fgmpsim.sim.result",
    **dict.fromkeys(("ENGINES", "simulate"), "fgmpsim.sim.simulate"),
}
"""Public name -> the module that defines it (imported on first use)."""

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
