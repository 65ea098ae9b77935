"""GLB-resident outputs (``memory.glb.keep_outputs``): an op's output kept in the GLB for the op that consumes it,
instead of a round trip through DRAM.

With the option on, the output of op ``P`` stays in the GLB for its consumer ``C`` when all of these hold:

1. ``C`` is the op right after ``P`` in the trace (nothing runs in between that would need the space) and reads the
   output as one operand (``consumer_operand``: ``act`` = its X, ``weight`` = its W);
2. neither runs as causal bands (:mod:`fgmpsim.sim.hw.causal`: all of an ``attn_qk``'s bands run before the first
   ``attn_pv`` band, so the whole score matrix would have to stay; at prefill sizes it never fits);
3. it *fits*: ``output bits + slots * step bits <= glb.size_bytes * 8`` for ``P`` and for ``C``, where ``output
   bits`` are the output's data + metadata bits as ``P`` writes them (:class:`~fgmpsim.sim.hw.operands.OutputFormat`),
   ``step bits`` the worst-case GLB bits one tile step of the op's tiling holds
   (:func:`fgmpsim.sim.mapping.glb_step_bits`, the mapper's GLB budget row) and ``slots`` 2 when the GLB is
   double buffered (two steps in flight), else 1. The consumer's own X or W tile is still counted in its step bits:
   the test is conservative by that tile.

Then ``P`` does not write its output back (no GLB -> DRAM write-back: no ``writeback`` transfer, no DRAM write,
no GLB read for it) and ``C`` does not fetch that operand from DRAM (no DRAM -> GLB fill of it: no ``dram_x`` /
``dram_w`` transfer, DRAM read or GLB write); the drain into the GLB and the GLB -> PE fills stay as they were.
The mapper is not re-run: tilings are chosen as if the GLB held no resident output, which is why condition 3 is
checked against them.

A ``systolic_ws`` array (costed by folds, :mod:`fgmpsim.sim.hw.systolic`) keeps nothing: the option applies to the
block dataflows.

Default off (``false``): the shipped numbers stay those of the published comparison, where every op reads and
writes DRAM; turn it on to see how much of an op-by-op design's DRAM traffic is this round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.sim.hw.operands import OutputFormat
from fgmpsim.sim.mapping import Tiling, glb_step_bits
from fgmpsim.trace.record import GemmOp


@dataclass(frozen=True)
class Residency:
    """What of one op stays in the GLB: ``keeps_output`` (no write-back) and ``fed`` (``"act"`` / ``"weight"``:
    that operand is already in the GLB, no DRAM fill of it; ``None``: both come from DRAM)."""

    keeps_output: bool = False
    fed: str | None = None


NONE = Residency()


def _fits(arch: Arch, out: OutputFormat, tiling: Tiling) -> bool:
    glb = arch.memory.glb
    slots = 2 if glb.double_buffered else 1
    return out.data_bits + out.metadata_bits + slots * glb_step_bits(arch, tiling) <= glb.size_bytes * 8


def plan_residency(ops: Sequence[GemmOp], tilings: Sequence[Tiling], outputs: Sequence[OutputFormat], arch: Arch,
                   banded: Sequence[bool]) -> list[Residency]:
    """The :class:`Residency` of every op (module docstring); ``banded``: the op runs as causal bands."""
    plan = [NONE] * len(ops)
    if not arch.memory.glb.keep_outputs:
        return plan
    keeps = [False] * len(ops)
    for i in range(len(ops) - 1):
        producer, consumer = ops[i], ops[i + 1]
        keeps[i] = (producer.consumer == consumer.name and not banded[i] and not banded[i + 1]
                    and _fits(arch, outputs[i], tilings[i]) and _fits(arch, outputs[i], tilings[i + 1]))
    for i, op in enumerate(ops):
        fed = ops[i - 1].consumer_operand if i and keeps[i - 1] else None
        plan[i] = Residency(keeps[i], fed)
    return plan
