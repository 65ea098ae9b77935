"""The actions the simulator counts and the energy-table entry that prices each one.

This module holds *names* only; every number lives in the YAML energy table (``arch_configs/*.yaml``).
The simulator counts :data:`ACTIONS`; :func:`fgmpsim.energy.price` multiplies each count by the pJ of its entry
(:data:`ACTION_ENTRY`) and sums it into a component of the breakdown (:data:`ACTION_COMPONENT`).

Units of the counts: ``*_bits`` actions count bits moved (data bits include block scales, metadata bits are counted
separately as ``*_metadata_bits``); ``macs_<pair>`` count scalar multiply-accumulates; ``block_pairs`` counts
block-pair dot products (one scale multiply and one FP32 accumulate each); ``aqu_blocks`` counts output blocks
quantized by the AQU; ``aqu_sensitivity_read_bits`` counts bits read from the AQU's sensitivity table;
``macs_fgmp_extra`` counts scalar MACs executed on a mixed FP4/FP8 lane (each pays the lane's dual-format decode and
mode muxes on top of its mode's ``mac_<pair>``); ``align_blocks`` counts blocks passed through an alignment network
between a packed level and a fixed-width port (:mod:`fgmpsim.sim.hw.layout`); ``leakage_cycles`` and
``clock_cycles`` count the op's cycles, priced at the static pJ per cycle the loader derives from the area model
(:mod:`fgmpsim.energy.static`, :data:`DERIVED_ENTRIES`: not written in the YAML).
``int_group_scales`` (INT8 datapaths only) counts the FP32 rescales of an integer lane: one per output and
scale group, where the group's integer dot product is converted to FP32, multiplied by its scale and added to the
output (:func:`fgmpsim.sim.simulate`'s derived counts; on FP lanes ``block_pairs`` covers scaling).
``cast_blocks`` counts blocks a cast unit expands from FP4 (power-of-two group scale) to E4M3 on their way into
a lane (:data:`fgmpsim.arch.record.STORAGE_ROUTES`).
``weight_collector_*`` / ``psum_collector_*`` count bits written into and read out of the lanes' register files
(:mod:`fgmpsim.sim.hw.collectors`).
"""

from __future__ import annotations

from fgmpsim.precision import PRECISION_PAIRS, is_integer

MEMORY_LEVELS: tuple[str, ...] = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer")
"""Memory levels in the order of :meth:`fgmpsim.arch.Memory.levels`."""

PE_BUFFERS: tuple[str, ...] = ("weight_buffer", "input_buffer", "accum_buffer")

COLLECTORS: tuple[str, ...] = ("weight_collector", "psum_collector")
"""The lanes' register files (:mod:`fgmpsim.sim.hw.collectors`), priced like a memory level, per bit."""

COMPONENTS: tuple[str, ...] = ("dram", "glb", "pe_buffers", "collectors", *(f"mac_{p}" for p in PRECISION_PAIRS),
                               "fgmp_mode_logic", "scale_accumulate", "aqu", "metadata", "alignment", "cast",
                               "leakage", "clock")
"""Components of an :class:`~fgmpsim.energy.EnergyBreakdown`, each in pJ."""


def _memory_rows() -> list[tuple[str, str, str]]:
    rows = []
    for level in (*MEMORY_LEVELS, *COLLECTORS):
        component = "pe_buffers" if level in PE_BUFFERS else "collectors" if level in COLLECTORS else level
        for direction in ("read", "write"):
            entry = f"{level}_{direction}_bit"
            rows.append((f"{level}_{direction}_bits", entry, component))
            rows.append((f"{level}_{direction}_metadata_bits", entry, "metadata"))
    return rows


_ROWS: tuple[tuple[str, str, str], ...] = (
    *_memory_rows(),
    *((f"macs_{p}", f"mac_{p}", f"mac_{p}") for p in PRECISION_PAIRS),
    ("macs_fgmp_extra", "mac_fgmp_extra", "fgmp_mode_logic"),
    ("block_pairs", "scale_accumulate", "scale_accumulate"),
    ("int_group_scales", "int_group_scale", "scale_accumulate"),
    ("aqu_blocks", "aqu_block", "aqu"),
    ("aqu_sensitivity_read_bits", "aqu_sensitivity_read_bit", "aqu"),
    ("align_blocks", "align_block", "alignment"),
    ("cast_blocks", "cast_block", "cast"),
    ("leakage_cycles", "leakage_cycle", "leakage"),
    ("clock_cycles", "clock_cycle", "clock"),
)
"""(action counted by the simulator, energy-table entry pricing one unit of it, breakdown component)."""

ACTIONS: tuple[str, ...] = tuple(action for action, _, _ in _ROWS)
ACTION_ENTRY: dict[str, str] = {action: entry for action, entry, _ in _ROWS}
ACTION_COMPONENT: dict[str, str] = {action: component for action, _, component in _ROWS}
DERIVED_ENTRIES: tuple[str, ...] = ("leakage_cycle", "clock_cycle")
"""Entries priced from :class:`~fgmpsim.arch.record.EnergyTable` fields the loader derives (static pJ per cycle)."""
ENTRIES: tuple[str, ...] = tuple(dict.fromkeys(entry for _, entry, _ in _ROWS if entry not in DERIVED_ENTRIES))
"""Every energy-table entry name written in the YAML (pJ per bit, per scalar MAC, per block pair or per block)."""

_AQU_ENTRIES = ("aqu_block", "aqu_sensitivity_read_bit")
_MIXED_ENTRIES = ("mac_fgmp_extra", "align_block")
_INT_ENTRIES = ("int_group_scale",)
_COLLECTOR_ENTRIES = tuple(f"{c}_{d}_bit" for c in COLLECTORS for d in ("read", "write"))


def reachable_pairs(datapath_precisions: tuple[str, ...]) -> tuple[str, ...]:
    """Precision pairs an array can execute: blocks in an unsupported precision run in the supported one."""
    return tuple(p for p in PRECISION_PAIRS if all(side in datapath_precisions for side in p.split("x")))


def required_entries(datapath_precisions: tuple[str, ...], aqu_enabled: bool,
                     collectors: bool = False, casts: bool = False) -> tuple[str, ...]:
    """Entries an architecture's table must price: every entry whose action the simulator can count on it
    (MAC modes the datapath can execute, AQU entries only with the AQU enabled, the mixed lane's extra logic and the
    alignment network only on a mixed FP4/FP8 datapath, whose blocks come in two sizes, the group rescale only on
    an INT8 datapath, collector entries only with a weight collector, the cast unit only on an array that accepts a
    format through one)."""
    macs = {f"mac_{p}" for p in PRECISION_PAIRS} - {f"mac_{p}" for p in reachable_pairs(datapath_precisions)}
    skip = macs | (set() if aqu_enabled else set(_AQU_ENTRIES)) | (set() if collectors else set(_COLLECTOR_ENTRIES))
    skip |= set() if casts else {"cast_block"}
    skip |= set() if set(datapath_precisions) == {"fp4", "fp8"} else set(_MIXED_ENTRIES)
    skip |= set() if is_integer(datapath_precisions) else set(_INT_ENTRIES)
    return tuple(entry for entry in ENTRIES if entry not in skip)
