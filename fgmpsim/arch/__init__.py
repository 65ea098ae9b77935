"""Architecture descriptions: the typed Arch record and its YAML loader.

The records are imported eagerly (a leaf module); the loader's names on first use, so the energy model can import
the records without pulling in the YAML validation that itself prices block storage."""

from fgmpsim._lazy import lazy_attributes
from fgmpsim.arch.record import (DATAFLOWS, PRECISION_PAIRS, AQU, Arch, BlockStorage, EnergyEntry, EnergyTable,
                                 FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray)

_LOADER_NAMES = ("ARCH_CONFIG_DIR", "arch_from_dict", "arch_to_dict", "find_arch", "load_arch", "shipped_names")

__all__ = ["DATAFLOWS", "PRECISION_PAIRS", "AQU", "Arch", "BlockStorage", "EnergyEntry", "EnergyTable",
           "FixedMapping", "Memory", "MemoryLevel", "ModeCycles", "PEArray", *_LOADER_NAMES]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), dict.fromkeys(_LOADER_NAMES, "fgmpsim.arch.loader"))
