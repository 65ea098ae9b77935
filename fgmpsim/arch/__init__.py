"""Architecture descriptions: the typed Arch record and its YAML loader."""

from fgmpsim.arch.record import (DATAFLOWS, PRECISION_PAIRS, AQU, Arch, BlockStorage, EnergyEntry, EnergyTable,
                                 FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray)

__all__ = ["DATAFLOWS", "PRECISION_PAIRS", "AQU", "Arch", "BlockStorage", "EnergyEntry", "EnergyTable",
           "FixedMapping", "Memory", "MemoryLevel", "ModeCycles", "PEArray"]
