"""Price action counts with an energy table: counts x pJ per unit, summed per component.

One implementation serves a single op (:func:`price`, a mapping of counts) and a whole result table
(:func:`price_frame`, one column per action): both call :func:`_component_energy`, which works on scalars and on
numpy/pandas columns alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np

from fgmpsim.arch.record import EnergyTable
from fgmpsim.energy.actions import ACTION_COMPONENT, ACTION_ENTRY, ACTIONS, COMPONENTS
from fgmpsim.errors import ConfigError, FgmpsimError, closest_hint


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy per component in pJ. ``pe_buffers`` sums the weight, input and accumulation buffers; ``collectors``
    the lanes' weight and partial-sum register files; ``metadata`` is the energy of moving per-block precision flags
    at every level, priced at that level's per-bit cost; ``fgmp_mode_logic`` the mixed lane's decode and mode muxes;
    ``alignment`` the alignment networks of packed levels; ``cast`` the FP4 -> FP8 cast units; ``scale_accumulate``
    the per-block-pair accumulate (with an INT8 datapath's per-group FP32 rescale); ``leakage`` and
    ``clock`` the static energy of the op's cycles (:mod:`fgmpsim.energy.static`)."""

    dram: float
    glb: float
    pe_buffers: float
    collectors: float
    mac_fp4xfp4: float
    mac_fp4xfp8: float
    mac_fp8xfp4: float
    mac_fp8xfp8: float
    mac_int8xint8: float
    fgmp_mode_logic: float
    scale_accumulate: float
    aqu: float
    metadata: float
    alignment: float
    cast: float
    leakage: float
    clock: float

    @property
    def total_pj(self) -> float:
        """Sum of all components, pJ."""
        return float(sum(getattr(self, name) for name in _FIELDS))

    def as_dict(self) -> dict[str, float]:
        """``{"energy_<component>_pj": pJ, ..., "energy_total_pj": pJ}`` (the column names of :func:`price_frame`)."""
        out = {column: getattr(self, name) for name, column in zip(_FIELDS, _COLUMNS)}
        out["energy_total_pj"] = self.total_pj
        return out


# the fields are read by name: dataclasses.asdict deep-copies every value, a tenth of a small op's costing
_FIELDS = tuple(f.name for f in fields(EnergyBreakdown))
_COLUMNS = tuple(f"energy_{name}_pj" for name in _FIELDS)


@lru_cache(maxsize=64)
def _pricing(table: EnergyTable) -> tuple[tuple[tuple[str, str, float], ...], tuple[tuple[str, str], ...]]:
    """The table read once for every op priced with it: ``(action, component, pJ)`` of each priced action in
    :data:`ACTIONS` order, and ``(action, entry)`` of each action the table has no entry for."""
    pj = table.priced()
    return (tuple((a, ACTION_COMPONENT[a], pj[ACTION_ENTRY[a]]) for a in ACTIONS if ACTION_ENTRY[a] in pj),
            tuple((a, ACTION_ENTRY[a]) for a in ACTIONS if ACTION_ENTRY[a] not in pj))


def _component_energy(count: Callable[[str], Any], table: EnergyTable) -> dict[str, Any]:
    """pJ per component, where ``count(action)`` is a scalar or an array of counts (0 when not counted)."""
    priced, unpriced = _pricing(table)
    for action, entry in unpriced:
        if np.any(np.asarray(count(action)) != 0):
            raise ConfigError(f"the energy table has no entry {entry!r} but {action} were counted",
                              f"energy.actions.{entry}", "add the entry (pJ and source) to the arch YAML")
    energy: dict[str, Any] = {component: 0.0 for component in COMPONENTS}
    for action, component, pj in priced:
        energy[component] = energy[component] + count(action) * pj
    return energy


def _check_counts(counts: Mapping[str, Any]) -> None:
    for action, n in counts.items():
        if action not in ACTION_ENTRY:
            raise FgmpsimError(f"unknown action {action!r}", "counts", closest_hint(action, ACTIONS))
        if (n < 0) if type(n) is int else (not np.isfinite(n) or n < 0):  # a Python int is finite
            raise FgmpsimError(f"action count must be finite and >= 0, got {n!r}", action,
                               "check the simulator's counts")


def price(counts: Mapping[str, int | float], table: EnergyTable) -> EnergyBreakdown:
    """Energy of one set of action counts (names from :data:`fgmpsim.energy.ACTIONS`; absent = 0), in pJ."""
    _check_counts(counts)
    energy = _component_energy(lambda action: counts.get(action, 0), table)
    return EnergyBreakdown(**{name: float(value) for name, value in energy.items()})


def price_frame(frame: Any, table: EnergyTable) -> Any:
    """A copy of a pandas frame with one row per op and one column per counted action (absent columns = 0),
    with ``energy_<component>_pj`` and ``energy_total_pj`` columns added."""
    present = [action for action in ACTIONS if action in frame.columns]
    values = frame[present].to_numpy(dtype=np.float64)
    if values.size and (not np.isfinite(values).all() or (values < 0).any()):
        bad = present[int(np.argwhere(~np.isfinite(values) | (values < 0))[0][1])]
        raise FgmpsimError("action counts must be finite and >= 0", bad, "check the simulator's counts")
    energy = _component_energy(lambda action: frame[action].to_numpy(np.float64) if action in present else 0.0,
                               table)
    columns = {f"energy_{name}_pj": np.broadcast_to(np.asarray(value, np.float64), (len(frame),))
               for name, value in energy.items()}
    columns["energy_total_pj"] = sum(columns.values())
    return frame.assign(**columns)
