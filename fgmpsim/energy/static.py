"""Static energy: leakage and clock power per component from the area model, charged for every cycle an op takes.

Each component of :class:`fgmpsim.energy.AreaBreakdown` is SRAM (:data:`SRAM_COMPONENTS`: it leaks
``sram_leakage_mw_per_mm2``; its clocked periphery is part of the per-access energy) or logic
(:data:`LOGIC_COMPONENTS`: it leaks ``logic_leakage_mw_per_mm2`` and its flip-flops and clock tree take
``logic_clock_pj_per_cycle_per_mm2`` every cycle, no clock gating). Per component, in mW at ``clock_hz``:

    leakage_mw = area_mm2 x leakage density                    (independent of the clock)
    clock_mw   = area_mm2 x clock pJ per cycle per mm2 x clock_hz x 1e-9

and per op ``energy_leakage_pj = sum leakage_mw x 1e9 / clock_hz x cycles`` (``power x cycles / clock_hz``), likewise
``energy_clock_pj``: the simulator counts ``leakage_cycles = clock_cycles = cycles`` and the energy table prices one
cycle at :attr:`EnergyTable.leakage_pj_per_cycle` / ``clock_pj_per_cycle`` (derived here when the arch is loaded).
Densities and their sources: ``static:`` in ``arch_configs/base.yaml``, derivation in ``docs/energy_model.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fgmpsim.arch.record import Arch
from fgmpsim.energy.area import SRAM_ENTRIES, AreaBreakdown, area_breakdown, check_area
from fgmpsim.errors import ConfigError

STATIC_DENSITIES: tuple[str, ...] = ("logic_leakage_mw_per_mm2", "sram_leakage_mw_per_mm2",
                                     "logic_clock_pj_per_cycle_per_mm2")
SRAM_COMPONENTS: tuple[str, ...] = tuple(SRAM_ENTRIES)
LOGIC_COMPONENTS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AreaBreakdown)
                                          if f.name not in SRAM_COMPONENTS)
"""Every other component of :class:`~fgmpsim.energy.AreaBreakdown` (lanes, FGMP mode logic, block scaling,
accumulators, INT rescale, AQU, cast units, lane registers, alignment networks)."""


@dataclass(frozen=True)
class StaticBreakdown:
    """Leakage and clock power per area component, mW at the arch's clock (``(component, mW)`` pairs)."""

    leakage_mw: tuple[tuple[str, float], ...]
    clock_mw: tuple[tuple[str, float], ...]

    @property
    def total_leakage_mw(self) -> float:
        return float(sum(mw for _, mw in self.leakage_mw))

    @property
    def total_clock_mw(self) -> float:
        return float(sum(mw for _, mw in self.clock_mw))


def static_power(arch: Arch) -> StaticBreakdown:
    """Leakage and clock power of every component of ``arch`` in mW (zeros when ``arch.static`` is disabled)."""
    st = arch.static
    areas = dataclasses.asdict(area_breakdown(arch))
    on = 1.0 if st.enabled else 0.0
    leakage = tuple((c, on * mm2 * (st.sram_leakage_mw_per_mm2 if c in SRAM_COMPONENTS
                                    else st.logic_leakage_mw_per_mm2)) for c, mm2 in areas.items())
    clock = tuple((c, on * mm2 * st.logic_clock_pj_per_cycle_per_mm2 * arch.clock_hz * 1e-9 if c in LOGIC_COMPONENTS
                   else 0.0) for c, mm2 in areas.items())
    return StaticBreakdown(leakage, clock)


def with_static_energy(arch: Arch) -> Arch:
    """``arch`` with its energy table's static pJ per cycle derived from :func:`static_power` (unchanged when static
    energy is disabled). Raises :class:`ConfigError` when static energy is enabled without an area table."""
    if not arch.static.enabled:
        return arch
    if arch.area is None:
        raise ConfigError("static energy is derived from the area model, but the arch has no area table", "static",
                          "add an 'area:' section (base.yaml has one) or set static.enabled=false")
    check_area(arch)
    power = static_power(arch)
    per_cycle = 1e9 / arch.clock_hz  # pJ per cycle of 1 mW
    energy = dataclasses.replace(arch.energy, leakage_pj_per_cycle=power.total_leakage_mw * per_cycle,
                                 clock_pj_per_cycle=power.total_clock_mw * per_cycle)
    return dataclasses.replace(arch, energy=energy)
