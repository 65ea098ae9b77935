"""The FGMP accelerator simulator: mapping, exact tile costs, the lockstep tile pipeline, engines and results.

Entry point: :func:`simulate` (``engine="tile" | "event" | "reference" | "analytic"``) -> :class:`RunResult`. The
microarchitecture is specified in the module docstrings: :mod:`~fgmpsim.sim.operands` (datapath precisions, output
format), :mod:`~fgmpsim.sim.mapping` (tiling, buffers, the mapper), :mod:`~fgmpsim.sim.tile_cost` (lane work),
:mod:`~fgmpsim.sim.traffic` (data movement per tile), :mod:`~fgmpsim.sim.schedule` (timing),
:mod:`~fgmpsim.sim.engine` (SimPy, op level), :mod:`~fgmpsim.sim.events` (SimPy, tile-step level),
:mod:`~fgmpsim.sim.reference` (per-cycle engine),
:mod:`~fgmpsim.sim.analytic` (lower bound); :mod:`~fgmpsim.sim.grid` and :mod:`~fgmpsim.sim.map_counts` hold the
vectorization.
"""

from fgmpsim.sim.analytic import Bound, op_bound
from fgmpsim.sim.mapping import Mapping, Tiling, choose_tiling, plan_op
from fgmpsim.sim.result import RunResult
from fgmpsim.sim.simulate import ENGINES, simulate

__all__ = ["ENGINES", "Bound", "Mapping", "RunResult", "Tiling", "choose_tiling", "op_bound", "plan_op",
           "simulate"]
