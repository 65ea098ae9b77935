"""Architecture descriptions: the typed Arch record and its YAML loader.

The records are imported eagerly (a leaf module); the loader's names on first use, so the energy model can import
the records without pulling in the YAML validation that itself prices block storage."""

from typing import Any

from fgmpsim.arch.record import (DATAFLOWS, PRECISION_PAIRS, AQU, Arch, BlockStorage, EnergyEntry, EnergyTable,
                                 FixedMapping, Memory, MemoryLevel, ModeCycles, PEArray)

_LOADER_NAMES = ("ARCH_CONFIG_DIR", "arch_from_dict", "arch_to_dict", "find_arch", "load_arch", "shipped_names")

__all__ = ["DATAFLOWS", "PRECISION_PAIRS", "AQU", "Arch", "BlockStorage", "EnergyEntry", "EnergyTable",
           "FixedMapping", "Memory", "MemoryLevel", "ModeCycles", "PEArray", *_LOADER_NAMES]


def __getattr__(name: str) -> Any:
    if name in _LOADER_NAMES:
        from fgmpsim.arch import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'fgmpsim.arch' has no attribute {name!r}")
