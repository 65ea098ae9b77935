"""Architecture descriptions: the typed Arch record and its YAML loader."""

from fgmpsim.arch.record import (DATAFLOWS, PRECISION_PAIRS, AQU, Arch, BlockStorage, EnergyEntry, EnergyTable,
                                 FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray)
from fgmpsim.arch.loader import ARCH_CONFIG_DIR, arch_from_dict, arch_to_dict, find_arch, load_arch, shipped_names

__all__ = ["ARCH_CONFIG_DIR", "DATAFLOWS", "PRECISION_PAIRS", "AQU", "Arch", "BlockStorage", "EnergyEntry",
           "EnergyTable", "FixedMapping", "Memory", "MemoryLevel", "ModeCycles", "PEArray", "arch_from_dict",
           "arch_to_dict", "find_arch", "load_arch", "shipped_names"]
