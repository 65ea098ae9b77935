"""Checks that span fields of an :class:`Arch` (run once by the loader; the core never re-checks).

Each raises :class:`ConfigError` naming the dotted field to change.
"""

from __future__ import annotations

from fgmpsim.arch.record import CAST_FP8, WIDEN, Arch, MemoryLevel, PEArray
from fgmpsim.energy.actions import required_entries
from fgmpsim.energy.area import check_area
from fgmpsim.energy.footprint import block_bits
from fgmpsim.errors import ConfigError, closest_hint
from fgmpsim.precision import FP_PAIRS, INT_PAIR
from fgmpsim.trace.formats import FORMAT_NAMES, MIXED_NAME, UNIFORM_FORMATS, FormatSpec


def check_arch(arch: Arch) -> None:
    """Raise :class:`ConfigError` for the first cross-field inconsistency of ``arch``."""
    _check_systolic(arch)
    _check_integer(arch)
    _check_mode_cycles(arch)
    _check_storage_formats(arch)
    _check_aqu(arch)
    _check_metadata(arch)
    _check_energy_entries(arch)
    _check_fixed_tiles(arch)
    check_area(arch)


def _check_systolic(arch: Arch) -> None:
    """systolic_ws needs its rows x cols and one datapath precision; rows, cols and memory.ideal belong to it."""
    pe = arch.pe_array
    if not pe.systolic:
        for field, value in (("pe_array.rows", pe.rows), ("pe_array.cols", pe.cols),
                             ("memory.ideal", arch.memory.ideal or None)):
            if value is not None:
                raise ConfigError(f"{field} applies to dataflow systolic_ws only, not {pe.dataflow}", field,
                                  f"remove {field} or set pe_array.dataflow=systolic_ws")
        return
    for field, value in (("pe_array.rows", pe.rows), ("pe_array.cols", pe.cols)):
        if value is None:
            raise ConfigError(f"a systolic_ws array needs {field}", field,
                              "give the array's rows (K elements per fold) and cols (N channels per fold)")
    if len(pe.datapath_precisions) != 1:
        raise ConfigError(f"a systolic_ws array has one datapath precision, got "
                          f"{'+'.join(pe.datapath_precisions)}", "pe_array.datapath_precisions",
                          "use [fp8] (every block promoted to FP8) or [fp4]")
    for field, value, default in (("weight_collector_blocks", pe.weight_collector_blocks, 0),
                                  ("psum_collector_entries", pe.psum_collector_entries, 1),
                                  ("pipeline_depth", pe.pipeline_depth, 1),
                                  ("lane_fifo_depth", pe.lane_fifo_depth, None)):
        if value != default:  # collectors, the schedule's fill and the lane FIFOs model the VMAC lanes only
            raise ConfigError(f"pe_array.{field} models the VMAC lanes, not a systolic_ws array",
                              f"pe_array.{field}", f"remove it or set it to {'null' if default is None else default}")
    if arch.memory.glb.keep_outputs:  # fgmpsim.sim.hw.glb_residency plans the VMAC lanes' tiles only
        raise ConfigError("memory.glb.keep_outputs is not modeled on a systolic_ws array (its folds stream every "
                          "output back to DRAM)", "memory.glb.keep_outputs", "set memory.glb.keep_outputs=false")
    if arch.memory.prefetch_next_weights:  # fgmpsim.sim.hw.prefetch couples the VMAC lanes' tile steps only
        raise ConfigError("memory.prefetch_next_weights is not modeled on a systolic_ws array (its folds have no "
                          "tile steps to overlap)", "memory.prefetch_next_weights",
                          "set memory.prefetch_next_weights=false")
    fixed = [name for name in ("tile_m", "tile_n", "tile_k_blocks") if getattr(arch.mapping, name) is not None]
    if fixed:
        raise ConfigError(f"a systolic_ws array folds the GEMM by its rows x cols; mapping.{fixed[0]} cannot be fixed",
                          f"mapping.{fixed[0]}", f"set mapping.{fixed[0]} to null")


def _check_integer(arch: Arch) -> None:
    """An integer array is INT8 lanes alone (no FP lanes beside them, no systolic form), timed by its one mode."""
    pe = arch.pe_array
    if not pe.integer:
        return
    if tuple(pe.datapath_precisions) != ("int8",):
        raise ConfigError(f"an integer datapath is INT8 lanes alone, got {'+'.join(pe.datapath_precisions)}",
                          "pe_array.datapath_precisions",
                          "use [int8] (INT4 weights reach it through storage_formats' widen route) or FP lanes only")
    if pe.systolic:
        raise ConfigError("a systolic_ws array computes the trace's FP8/NVFP4 blocks only, not INT8",
                          "pe_array.datapath_precisions", "use [fp8] or [fp4] on a systolic_ws array")


def _check_mode_cycles(arch: Arch) -> None:
    """The cycles of every mode of the datapath's family are given (the four FP pairs, or INT8 x INT8)."""
    pe = arch.pe_array
    if pe.systolic:
        return
    modes, others = ((INT_PAIR,), FP_PAIRS) if pe.integer else (FP_PAIRS, (INT_PAIR,))
    family = "an INT8" if pe.integer else "a floating-point"
    foreign = [mode for mode in others if getattr(pe.cycles_per_block_pair, mode) is not None]
    if foreign:
        raise ConfigError(f"{family} datapath has no {foreign[0]} mode, but its cycles are given",
                          f"pe_array.cycles_per_block_pair.{foreign[0]}",
                          f"remove it (this datapath's modes: {', '.join(modes)})")
    missing = [mode for mode in modes if getattr(pe.cycles_per_block_pair, mode) is None]
    if missing:
        more = f"; also {', '.join(missing[1:])}" if missing[1:] else ""
        raise ConfigError(f"missing required key (pe_array.cycles_per_block_pair.{missing[0]}) for {family} "
                          f"datapath{more}",
                          f"pe_array.cycles_per_block_pair.{missing[0]}",
                          f"add '{missing[0]}: 1' (cycles per block pair; arch_configs/"
                          f"{'int_w4a8' if pe.integer else 'fgmp'}.yaml is a complete example)")


def _check_storage_formats(arch: Arch) -> None:
    """Every accepted format is a trace format, and its route can reach this datapath (:data:`STORAGE_ROUTES`)."""
    pe = arch.pe_array
    for fmt, route in pe.storage_formats:
        field = f"pe_array.storage_formats.{fmt[:60]}"
        if fmt not in FORMAT_NAMES:
            raise ConfigError(f"unknown storage format {fmt[:60]!r}", field, closest_hint(fmt, FORMAT_NAMES))
        if (fmt == MIXED_NAME) != (route == "map"):
            raise ConfigError(f"storage format {fmt} cannot take route {route!r}", field,
                              "mixed FP8/NVFP4 maps take route 'map'; uniform formats 'native', 'cast_fp8' or 'widen'")
        if fmt != MIXED_NAME and pe.systolic:
            raise ConfigError(f"a systolic_ws array computes the trace's FP8/NVFP4 blocks only, not {fmt}", field,
                              "remove the entry (accept mixed: map only)")
        if fmt == MIXED_NAME and pe.integer:
            raise ConfigError("an INT8 datapath has no exact route for FP8/NVFP4 block maps (mixed: map is the "
                              "default for FP lanes)", field,
                              "set pe_array.storage_formats to {int8: native, int4: widen}")
        spec = UNIFORM_FORMATS.get(fmt)
        if route == "native" and spec.element not in pe.datapath_precisions:
            lacking = ": no integer datapath" if spec.integer and not pe.integer else ""
            raise ConfigError(f"{fmt} elements cannot run natively on this array (datapath "
                              f"{'+'.join(pe.datapath_precisions)}{lacking})", field, _native_fix(spec, pe))
        if route == CAST_FP8 and (fmt != "fp4_pow2" or "fp8" not in pe.datapath_precisions):
            raise ConfigError(f"the FP4 -> FP8 cast is exact for fp4_pow2 onto FP8 lanes only, not {fmt} onto "
                              f"{'+'.join(pe.datapath_precisions)}", field,
                              "use cast_fp8 for fp4_pow2 on an array with fp8 in datapath_precisions")
        if route == WIDEN and (fmt != "int4" or not pe.integer):
            raise ConfigError(f"the INT4 -> INT8 sign extension takes int4 onto INT8 lanes only, not {fmt} onto "
                              f"{'+'.join(pe.datapath_precisions)}", field,
                              "use widen for int4 on an array with datapath_precisions [int8]")


def _native_fix(spec: FormatSpec, pe: PEArray) -> str:
    """How to fix a ``native`` route whose elements the datapath does not have."""
    if spec.integer != pe.integer:
        return ("remove the entry: INT elements run on an INT8 datapath only (datapath_precisions: [int8])"
                if spec.integer else "remove the entry: FP elements never run on INT8 lanes")
    if spec.element == "int4":
        return "use 'int4: widen' (sign-extended onto INT8 lanes)"
    return f"remove the entry, or add {spec.element} to pe_array.datapath_precisions"


def _check_aqu(arch: Arch) -> None:
    aqu = arch.aqu
    if not aqu.enabled:
        return
    if aqu.blocks_per_cycle < 1:
        raise ConfigError(f"an enabled AQU must quantize at least 1 block per cycle, got {aqu.blocks_per_cycle}",
                          "aqu.blocks_per_cycle", "set it to 1 or more, or set aqu.enabled=false")
    if aqu.sensitivity_bits_per_channel < 1:
        raise ConfigError("an enabled AQU needs its per-channel sensitivities, got 0 bits",
                          "aqu.sensitivity_bits_per_channel", "set it to 1 or more (8 in the FGMP design)")
    if set(arch.pe_array.datapath_precisions) != {"fp4", "fp8"}:
        raise ConfigError("the AQU chooses FP4 or FP8 per block, but the datapath supports only "
                          f"{'+'.join(arch.pe_array.datapath_precisions)}", "aqu.enabled",
                          "set aqu.enabled=false or pe_array.datapath_precisions=[fp4, fp8]")


def _check_metadata(arch: Arch) -> None:
    if set(arch.pe_array.datapath_precisions) == {"fp4", "fp8"} and arch.storage.metadata_bits_per_block < 1:
        raise ConfigError("a mixed FP4/FP8 datapath needs a precision flag per block, got 0 metadata bits",
                          "storage.metadata_bits_per_block", "set it to 1")


def _check_energy_entries(arch: Arch) -> None:
    present = {name for name, _ in arch.energy.entries}
    for entry in required_entries(arch.pe_array.datapath_precisions, arch.aqu.enabled,
                                  arch.pe_array.weight_collector_blocks > 0, arch.pe_array.casts):
        if entry not in present:
            raise ConfigError(f"no energy for {entry!r}, an action the simulator counts on this arch",
                              f"energy.actions.{entry}", "add '{pj: <pJ>, source: <where it comes from>}'")


def _fits(level: MemoryLevel, field: str, need_bits: int, what: str, fix: str) -> None:
    usable = level.usable_tile_bytes
    if usable is not None and need_bits > usable * 8:
        half = " (half of size_bytes: double buffered)" if level.double_buffered else ""
        raise ConfigError(f"{what} needs {-(-need_bits // 8)} bytes but memory.{level.name} has {usable} usable{half}",
                          field, fix)


def _check_fixed_tiles(arch: Arch) -> None:
    """Fixed tiles must fit their per-PE buffers with every block at its worst case (largest block + metadata)."""
    tile, pe, storage = arch.mapping, arch.pe_array, arch.storage
    worst = max(block_bits(True, storage, pe.vector_width), block_bits(False, storage, pe.vector_width))
    worst += storage.metadata_bits_per_block
    ws = pe.dataflow == "weight_stationary"
    n_width, n_what = (pe.lanes, "pes x lanes_per_pe") if ws else (pe.lanes_per_pe, "lanes_per_pe")
    if tile.tile_n is not None and tile.tile_n > n_width:
        raise ConfigError(f"tile_n={tile.tile_n} output channels exceed the {n_width} lanes ({n_what}) that compute "
                          f"them in parallel ({pe.dataflow})", "mapping.tile_n",
                          f"use mapping.tile_n <= {n_width} or enlarge the array")
    if not ws and tile.tile_m is not None and tile.tile_m > pe.pes:
        raise ConfigError(f"tile_m={tile.tile_m} output rows exceed the {pe.pes} PEs that compute them in parallel "
                          f"(output_stationary)", "mapping.tile_m", f"use mapping.tile_m <= {pe.pes} or add PEs")
    mem = arch.memory
    if tile.tile_k_blocks is not None:
        _fits(mem.weight_buffer, "mapping.tile_k_blocks", pe.lanes_per_pe * tile.tile_k_blocks * worst,
              f"a weight tile of lanes_per_pe={pe.lanes_per_pe} x tile_k_blocks={tile.tile_k_blocks} blocks",
              "lower mapping.tile_k_blocks or enlarge memory.weight_buffer.size_bytes")
    if tile.tile_m is not None and tile.tile_k_blocks is not None:
        _fits(mem.input_buffer, "mapping.tile_m", tile.tile_m * tile.tile_k_blocks * worst,
              f"an input tile of tile_m={tile.tile_m} x tile_k_blocks={tile.tile_k_blocks} blocks",
              "lower mapping.tile_m or mapping.tile_k_blocks, or enlarge memory.input_buffer.size_bytes")
    if tile.tile_m is not None:
        _fits(mem.accum_buffer, "mapping.tile_m", pe.lanes_per_pe * tile.tile_m * storage.psum_bits,
              f"partial sums of lanes_per_pe={pe.lanes_per_pe} x tile_m={tile.tile_m} at {storage.psum_bits} bits",
              "lower mapping.tile_m or enlarge memory.accum_buffer.size_bytes")
