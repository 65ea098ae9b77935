"""The FGMP accelerator simulator: mapping, exact tile costs, the lockstep tile pipeline, engines and results.

Entry point: :func:`simulate` (``engine="tile" | "event" | "reference" | "analytic"``) -> :class:`RunResult`.
Layers, top to bottom: :mod:`~fgmpsim.sim.simulate` -> :mod:`~fgmpsim.sim.engines` -> :mod:`~fgmpsim.sim.schedule`
(timing) -> :mod:`~fgmpsim.sim.hw` (operands, lane work, traffic) -> :mod:`~fgmpsim.sim.vector` (numpy grid and map
counts), with :mod:`~fgmpsim.sim.mapping` (tiling, buffers, the mapper) beside. The microarchitecture is specified
in those modules' docstrings.
"""

from fgmpsim.sim.engines.analytic import Bound, op_bound
from fgmpsim.sim.mapping import Mapping, Tiling, choose_tiling, plan_op
from fgmpsim.sim.result import RunResult
from fgmpsim.sim.simulate import ENGINES, simulate

__all__ = ["ENGINES", "Bound", "Mapping", "RunResult", "Tiling", "choose_tiling", "op_bound", "plan_op",
           "simulate"]
