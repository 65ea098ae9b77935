"""Unit costs kept across simulations, so a design point that changes only how a run is priced re-prices it.

A unit's tile costs (:func:`~fgmpsim.sim.hw.traffic.op_tiles`, :func:`~fgmpsim.sim.schedule.time_op`, the bound,
its edges) and its operand columns are derived from its maps, formats, shape, tiling, GLB residency and the arch's
:data:`COST_FIELDS`, never from its :data:`PRICING_FIELDS`. A sweep over the clock, an energy-table entry, static
power or area (the tornado's axes) thus costs each unit once per process and then only prices the counts and
cycles again. Only units whose maps are immutable (:func:`~fgmpsim.trace.record.is_immutable`: lazy maps,
read-only arrays) are kept across simulations, the cache holding the maps so their identities stay unique; other
units are kept for one simulation. The tile and analytic engines use it; the event engine processes every unit's
events and the reference engine derives every unit itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fgmpsim.arch.record import Arch
from fgmpsim.sim.engines.tile import op_spans
from fgmpsim.trace.record import GemmOp, is_immutable

COST_FIELDS = ("pe_array", "aqu", "memory", "storage", "mapping")
"""Arch fields a unit's tiles, cycles and counts are derived from: the scope of a cached cost."""
PRICING_FIELDS = ("name", "source", "clock_hz", "energy", "area", "static")
"""Arch fields that price counts and cycles (pJ, mm2, mW, seconds) or name the arch, and change neither."""
MAX_UNITS = 8192
"""Units kept across simulations (first in, first out: a hit is not moved, which would hash its key again;
consecutive points of a sweep batch hit the units of their first): a few KB each (a unit's ~70 action counts and
its timing), so at most a few tens of MB, plus the maps each entry holds (those of a trace no longer used stay
alive until its entries leave, as in the map-count cache); a Llama-2-7B prefill point (causal bands included) has
1,249 units."""


def cost_scope(arch: Arch) -> tuple:
    """The :data:`COST_FIELDS` of ``arch``: two archs with equal scopes give every unit the same cost (a sweep sends
    such points to one worker, :mod:`fgmpsim.sweep.executors`)."""
    return tuple(getattr(arch, name) for name in COST_FIELDS)


class _Scope:
    """:func:`cost_scope` of one arch and the engine, hashed once (every unit of a run is keyed by it)."""

    __slots__ = ("values", "_hash")

    def __init__(self, arch: Arch, engine: str) -> None:
        self.values = (*cost_scope(arch), engine)
        self._hash = hash(self.values)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Scope) and (self is other or (self._hash == other._hash
                                                                  and self.values == other.values))


_SHARED: OrderedDict[tuple, tuple[Any, Any, Any]] = OrderedDict()
"""key -> (weight map, activation map, cost): the maps held so that their ``id`` in the key stays theirs."""


class UnitCosts:
    """The cost cache as one simulation on ``arch`` with ``engine`` sees it (the event engine keeps nothing: it
    processes every unit's events)."""

    def __init__(self, arch: Arch, engine: str) -> None:
        self.scope = _Scope(arch, engine)
        self.keeps = engine != "event"
        self._local: dict[tuple, Any] = {}

    def get(self, op: GemmOp, source: tuple, out: Any, tiling: Any, residency: Any, make: Callable[[], Any]) -> Any:
        """The cost of unit ``op`` (``source``: its maps and, for a causal band, the cuts of its op's maps that it
        is; ``out``: its output format), computed by ``make()`` on a miss (on the event engine, always)."""
        if not self.keeps:
            return make()
        weight_map, act_map, *cuts = source
        key = (self.scope, id(weight_map), id(act_map), *cuts, op.kind, op.m, op.k, op.n, op.repeat,
               op.static_weight, op.weight_format, op.act_format, out, tiling, residency)
        if not (is_immutable(weight_map) and is_immutable(act_map)):  # the trace holds them for this run
            if key not in self._local:
                self._local[key] = make()
            return self._local[key]
        hit = _SHARED.get(key)
        if hit is not None:
            return hit[2]
        cost = make()
        _SHARED[key] = (weight_map, act_map, cost)
        while len(_SHARED) > MAX_UNITS:
            _SHARED.popitem(last=False)
        return cost


def clear() -> None:
    """Forget every cost kept across simulations, and the SimPy op spans of earlier runs
    (:func:`fgmpsim.sim.engines.tile.op_spans`): the next simulation costs and sequences every op again."""
    _SHARED.clear()
    op_spans.cache_clear()
