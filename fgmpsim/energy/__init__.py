"""Energy model: action counts from the simulator x pJ per action from the arch's energy table; weight footprint;
silicon area per component from the arch's area table (:func:`area_breakdown`, :func:`iso_area`).

See ``docs/energy_model.md`` for where the numbers in ``arch_configs/`` come from.
"""

from fgmpsim.energy.actions import (ACTION_COMPONENT, ACTION_ENTRY, ACTIONS, COMPONENTS, ENTRIES, MEMORY_LEVELS,
                                    reachable_pairs, required_entries)
from fgmpsim.energy.area import (AREA_ENTRIES, FGMP_OVERHEAD_COMPONENTS, AreaBreakdown, IsoArea, area_breakdown,
                                 area_mm2, iso_area, required_area_entries)
from fgmpsim.energy.footprint import (bits_per_element, block_bits, level_bits, mixed_sizes, operand_footprint_bits,
                                      slot_bits, storage_precision_map, uniform_storage, weight_footprint_bits)
from fgmpsim.energy.price import EnergyBreakdown, price, price_frame
from fgmpsim.energy.static import StaticBreakdown, static_power

__all__ = ["ACTION_COMPONENT", "ACTION_ENTRY", "ACTIONS", "AREA_ENTRIES", "COMPONENTS", "ENTRIES",
           "FGMP_OVERHEAD_COMPONENTS", "MEMORY_LEVELS", "AreaBreakdown", "EnergyBreakdown", "IsoArea",
           "StaticBreakdown", "area_breakdown", "area_mm2", "iso_area", "required_area_entries", "bits_per_element",
           "block_bits", "level_bits", "mixed_sizes", "price", "price_frame", "reachable_pairs", "required_entries",
           "slot_bits", "static_power",
           "operand_footprint_bits", "storage_precision_map", "uniform_storage", "weight_footprint_bits"]
