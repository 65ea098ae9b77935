"""ZigZag inputs mirroring an fgmpsim array, priced with fgmpsim's own energy table, and a runner for ZigZag.

The array is an all-FP8 weight-stationary fgmpsim arch with one PE (``pe_array.pes=1``): its ``lanes_per_pe``
lanes are ZigZag's D1 (output channels, ZigZag loop ``K`` = our N), its ``vector_width`` elements per lane ZigZag's
D2 (reduction, ZigZag loop ``C`` = our K). ZigZag's workload is ``O[b][k] += I[b][c] * W[c][k]`` with ``B`` = M.

Memories (bottom to top, one instance each unless said; sizes and bandwidths from the arch YAML):

* ``lane_psum`` (O, one per D1 column, ``psum_bits``): the lane's running sum across the k-blocks of a tile.
  fgmpsim prices that FP32 accumulate per block pair (``scale_accumulate``), not as a memory, so it costs 0 here
  and ``scale_accumulate / vector_width`` is added to ZigZag's MAC unit energy instead;
* ``weight_buffer`` (I2), ``input_buffer`` (I1), ``accum_buffer`` (O): the PE's buffers, shared by the array;
* ``glb`` (I1, I2, O) and ``dram`` (I1, I2, O).

Costs: ZigZag charges ``ceil(bits / min_bw) * min_bw / max_bw`` accesses of ``r_cost`` (or ``w_cost``) pJ per
transfer (``zigzag.cost_model.cost_model._calc_memory_access``). With ``min_bw`` = one element and ``r_cost`` =
per-bit pJ x ``max_bw`` that is exactly bits x the table's pJ per bit, as fgmpsim prices it. MAC unit energy =
``mac_fp8xfp8 + scale_accumulate / vector_width`` pJ.

The child (:func:`run_zigzag`) runs in the interpreter that has ``zigzag-dse`` (its own venv): it executes
``zigzag_child.py`` by path, which needs only the standard library and ZigZag.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from fgmpsim.arch.record import Arch
from fgmpsim.errors import ConfigError

CHILD = Path(__file__).with_name("zigzag_child.py")
RESULT_FILE = "zigzag_result.json"
ZIGZAG_OPT = "energy"
"""LOMA objective: fgmpsim's mapper minimizes DRAM then GLB bits, i.e. energy, not latency."""
LEVELS = ("dram", "glb", "weight_buffer", "input_buffer", "accum_buffer", "lane_psum")


def check_peer_arch(arch: Arch) -> None:
    """ConfigError unless ``arch`` is one all-FP8 weight-stationary PE with a sized GLB (what ZigZag is fed)."""
    pe = arch.pe_array
    if (pe.dataflow != "weight_stationary" or tuple(pe.datapath_precisions) != ("fp8",) or pe.pes != 1
            or arch.memory.glb.size_bytes is None):
        raise ConfigError(f"{arch.name}: the ZigZag comparison needs one all-FP8 weight-stationary PE with a sized "
                          "GLB", "pe_array", "use fp8_baseline with pe_array.pes=1")


def _port(name: str, kind: str, max_bits: int, min_bits: int, allocation: list[str]) -> dict[str, Any]:
    return {"name": name, "type": kind, "bandwidth_min": min_bits, "bandwidth_max": max_bits,
            "allocation": allocation}


def _memory(size_bits: int, read_bits: int, write_bits: int, min_bits: int, read_pj_per_bit: float,
            write_pj_per_bit: float, operands: list[str], served: list[str]) -> dict[str, Any]:
    """A ZigZag memory: one read and one write port serving every direction of its operands."""
    reads = [f"{op}, tl" for op in operands] + (["O, th"] if "O" in operands else [])
    writes = [f"{op}, fh" for op in operands] + (["O, fl"] if "O" in operands else [])
    return {"size": size_bits, "r_cost": read_pj_per_bit * read_bits, "w_cost": write_pj_per_bit * write_bits,
            "area": 0, "latency": 1, "operands": operands, "served_dimensions": served,
            "ports": [_port("r_port_1", "read", read_bits, min_bits, reads),
                      _port("w_port_1", "write", write_bits, min_bits, writes)]}


def zigzag_inputs(arch: Arch, m: int, k: int, n: int, temporal_ordering: list[list[Any]] | None = None,
                  systolic: bool = False) -> dict[str, Any]:
    """``{"accelerator": ..., "mapping": ..., "workload": ...}``: the three ZigZag 3.x YAML documents of the GEMM
    ``Y[M, N] = X[M, K] W[N, K]^T`` on ``arch`` (module docstring); ``temporal_ordering`` (innermost first, e.g.
    :func:`fgmpsim_ordering`) pins ZigZag's loop nest, ``None`` lets LOMA search it. ``systolic`` declares both
    array dimensions systolic, which adds ZigZag's fill/drain to its latency (energy is unchanged); the energy
    comparison leaves it off, as fgmpsim's lanes are not systolic, ``benchmarks/peers.py`` turns it on to hold
    cycles against a systolic array."""
    check_peer_arch(arch)
    pj, mem, st, pe = arch.energy.as_dict(), arch.memory, arch.storage, arch.pe_array
    wb, pb = st.fp8_value_bits, st.psum_bits
    both = ["D1", "D2"]

    def level(name: str, operands: list[str], min_bits: int, size_bits: int) -> dict[str, Any]:
        spec = getattr(mem, name)
        return _memory(size_bits, spec.read_bits_per_cycle, spec.write_bits_per_cycle, min_bits,
                       pj[f"{name}_read_bit"], pj[f"{name}_write_bit"], operands, both)

    footprint_bits = (m * k + k * n) * wb + m * n * pb
    memories = {
        "lane_psum": _memory(pb, pb, pb, pb, 0.0, 0.0, ["O"], ["D2"]),
        "weight_buffer": level("weight_buffer", ["I2"], wb, mem.weight_buffer.size_bytes * 8),
        "input_buffer": level("input_buffer", ["I1"], wb, mem.input_buffer.size_bytes * 8),
        "accum_buffer": level("accum_buffer", ["O"], pb, mem.accum_buffer.size_bytes * 8),
        "glb": level("glb", ["I1", "I2", "O"], wb, mem.glb.size_bytes * 8),
        "dram": level("dram", ["I1", "I2", "O"], wb, footprint_bits),
    }
    mac_pj = pj["mac_fp8xfp8"] + pj["scale_accumulate"] / pe.vector_width
    accelerator = {"name": f"fgmpsim_{arch.name}", "memories": memories,
                   "operational_array": {"input_precision": [wb, wb], "unit_energy": mac_pj, "unit_area": 1,
                                         "dimensions": both, "sizes": [pe.lanes_per_pe, pe.vector_width],
                                         **({"systolic_dimensions": both} if systolic else {})}}
    mapping = [{"name": "default",
                "spatial_mapping": {"D1": [f"K, {pe.lanes_per_pe}"], "D2": [f"C, {pe.vector_width}"]},
                "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]
    if temporal_ordering:
        mapping[0]["temporal_ordering"] = temporal_ordering
    workload = [{"id": 0, "name": "gemm", "operator_type": "Gemm", "equation": "O[b][k]+=I[b][c]*W[c][k]",
                 "dimension_relations": [], "loop_dims": ["B", "C", "K"], "loop_sizes": [m, k, n],
                 "operand_precision": {"W": wb, "I": wb, "O": pb, "O_final": st.unquantized_output_bits},
                 "operand_source": {"I": 0, "W": 0}}]  # source = own id: both operands come from DRAM
    return {"accelerator": accelerator, "mapping": mapping, "workload": workload}


def write_zigzag_inputs(arch: Arch, m: int, k: int, n: int, folder: Path,
                        temporal_ordering: list[list[Any]] | None = None, systolic: bool = False) -> None:
    """Write ``accelerator.yaml``, ``mapping.yaml`` and ``workload.yaml`` (:func:`zigzag_inputs`) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in zigzag_inputs(arch, m, k, n, temporal_ordering, systolic).items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def run_zigzag(python: str, folder: Path, timeout_s: float = 600.0, opt: str = ZIGZAG_OPT) -> dict[str, Any]:
    """Run ZigZag with interpreter ``python`` on the inputs in ``folder``; returns the child's JSON: ``cycles``,
    ``mac_pj`` and ``<level>_pj`` per memory level of :data:`LEVELS`, plus ``zigzag_version``."""
    try:
        proc = subprocess.run([python, str(CHILD), str(folder), opt], capture_output=True, text=True,
                              timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"ZigZag did not run with {python}: {error}", "--zigzag-python",
                          "point it at a venv with zigzag-dse (pip install zigzag-dse six)") from None
    result = folder / RESULT_FILE
    if proc.returncode != 0 or not result.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"ZigZag failed with {python}: {last[0][:200]}", "--zigzag-python",
                          "point it at a venv with zigzag-dse 3.x (pip install zigzag-dse six)")
    return json.loads(result.read_text())


def fgmpsim_ordering(mapping: Any, m: int, k: int, n: int, vector_width: int) -> list[list[Any]]:
    """fgmpsim's weight-stationary loop nest as a complete ZigZag ``temporal_ordering`` (innermost first, factor-1
    loops dropped): inside a tile the lane walks its ``tile_k_blocks`` blocks (C) for each of ``tile_m`` rows (B);
    then the chunk's m-tiles, the k-tiles, the n-tiles (K) and the M-chunks (``fgmpsim.sim.mapping`` loop order).
    ConfigError when a tile does not divide its dimension: ZigZag loops have no partial last tile."""
    kb = k // vector_width
    chunk = mapping.chunk_m or m
    factors = [("C", mapping.tile_k_blocks, kb), ("B", mapping.tile_m, chunk), ("B", chunk, m),
               ("N", mapping.tile_n, n)]
    for dim, tile, size in factors:
        if size % tile:
            raise ConfigError(f"GEMM {m}x{k}x{n}: fgmpsim's {dim} tile {tile} does not divide {size}, which a ZigZag "
                              "temporal ordering cannot express", "gemm",
                              "pick a shape whose tiles divide it (tests/data/README.md lists the stored ones)")
    loops = [["C", mapping.tile_k_blocks], ["B", mapping.tile_m], ["B", chunk // mapping.tile_m],
             ["C", kb // mapping.tile_k_blocks], ["K", n // mapping.tile_n], ["B", m // chunk]]
    return [loop for loop in loops if loop[1] > 1]
