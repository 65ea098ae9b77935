"""The ``systolic_ws`` dataflow: an ``R x C`` weight-stationary systolic array of scalar MACs, SCALE-Sim's model.

The array holds an ``R (K) x C (N)`` weight *fold*; the op is cut into ``ceil(K / R) * ceil(N / C)`` folds
(column folds outer, row folds inner, as SCALE-Sim v3's ``systolic_compute_ws``), and all ``M`` input rows stream
through each fold. One datapath precision: every block of the trace is promoted (or demoted) to it
(:mod:`fgmpsim.sim.hw.operands`), and blocks are the trace's (``pe_array.vector_width`` is not used).

**Cycles** (SCALE-Sim v3, ``compute/systolic_compute_ws.py``: per fold the demand matrices have ``R`` rows of
weight loading, ``M`` of streaming, ``C - 1`` of output drain, plus ``R - 1`` of input skew)::

    fold_cycles = 2 R + C + M - 2
    compute_cycles = repeat * (folds * fold_cycles - 1)

The ``- 1``: SCALE-Sim's "Total Cycles" is the (0-based) cycle of the last output write
(``memory/double_buffered_scratchpad_mem.py``: ``max(ofmap_serviced_cycles)``); each repeat is one SCALE-Sim layer.
With ``memory.ideal`` (SCALE-Sim's default ``InterfaceBandwidth: CALC``) transfers take no cycles and
``cycles = compute_cycles``. Otherwise every transfer overlaps the folds (double-buffered GLB, prefetch of the next
fold), so the op takes ``max(compute, DRAM side, GLB side)`` with the sides of
:func:`fgmpsim.sim.engines.analytic.memory_bounds`; the excess stalls the side that binds (DRAM on a tie).

**Data moved** per repeat (``v``: value bits of the datapath precision, ``s``: its block-scale bits, ``KB =
ceil(K / block)`` blocks per row; storage is element-addressed, so a partial last block moves its real elements and
its one scale; each block also moves ``metadata_bits_per_block``; ``nf = ceil(N / C)``, ``kf = ceil(K / R)``):

* weights ``W = N K v + N KB s`` bits: DRAM -> GLB once, GLB -> the PEs' weight registers once (each weight lives in
  exactly one fold: ``weight_buffer_write_bits``);
* inputs ``X = M K v + M KB s`` bits: DRAM -> GLB once if the whole of X fits the GLB beside one weight fold and one
  fold of partial sums (``x_resident``), else once per column fold; GLB -> the array's row-edge FIFOs once per column
  fold (``nf X``: ``input_buffer`` write and read);
* partial sums (``psum_bits`` each): every fold adds its ``M x C'`` column sums into the accumulators at the
  column bottoms (``accum_buffer`` write and read, ``M N kf`` sums each); when one fold's ``M x C`` sums do not fit
  the accumulation buffer (``memory.accum_buffer``, usable bytes) all but the last row fold spill them to the GLB
  and read them back (``M N (kf - 1)`` sums each way, as SCALE-Sim writes the ofmap every fold);
* outputs (:class:`~fgmpsim.sim.hw.operands.OutputFormat`, of the trace's blocks): written to the GLB, then to DRAM.

Not counted: the registers inside the array (the stationary weight, the forwarded input, the forwarded partial sum),
which the energy table has no entry for. MACs: ``M N K`` real multiply-accumulates (``macs = useful_macs``, no
padding); ``block_pairs`` (one FP32 scale-and-accumulate each) = ``M N kf``: each fold's column sum added into the
output (inside a column the additions are the MAC's adder share).
"""

from __future__ import annotations

from dataclasses import dataclass

from fgmpsim.arch.record import PRECISION_PAIRS, SYSTOLIC, Arch
from fgmpsim.errors import MappingError
from fgmpsim.sim.engines.analytic import Bound, bound_timing, memory_bounds
from fgmpsim.sim.schedule import OpTiming
from fgmpsim.sim.hw.operands import Operands
from fgmpsim.sim.hw.traffic import ceil_div
from fgmpsim.sim.mapping import Mapping, OpShape, Tiling
from fgmpsim.trace.record import GemmOp


@dataclass(frozen=True)
class Folds:
    """The folds of one repeat of an op on an ``rows x cols`` array: ``row_folds = ceil(K / rows)`` along K,
    ``col_folds = ceil(N / cols)`` along N, each streaming all ``m`` rows in ``fold_cycles`` cycles."""

    m: int
    rows: int
    cols: int
    row_folds: int
    col_folds: int

    @staticmethod
    def of(arch: Arch, op: GemmOp) -> Folds:
        pe = arch.pe_array
        return Folds(op.m, pe.rows, pe.cols, ceil_div(op.k, pe.rows), ceil_div(op.n, pe.cols))

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def fold_cycles(self) -> int:
        """Weight load (``rows``), input skew (``rows - 1``), streaming (``m``), output drain (``cols - 1``)."""
        return 2 * self.rows + self.cols + self.m - 2

    @property
    def cycles(self) -> int:
        """SCALE-Sim's "Total Cycles" of one repeat: the 0-based cycle of its last output write."""
        return self.folds * self.fold_cycles - 1


def _operand_bits(arch: Arch, rows: int, k: int, block_size: int) -> tuple[int, int]:
    """(data bits, metadata bits) of a ``rows x K`` operand at the datapath precision, element-addressed."""
    st = arch.storage
    fp8 = arch.pe_array.datapath_precisions[0] == "fp8"
    value, scale = (st.fp8_value_bits, st.fp8_scale_bits) if fp8 else (st.fp4_value_bits, st.fp4_scale_bits)
    blocks = rows * ceil_div(k, block_size)
    return rows * k * value + blocks * scale, blocks * st.metadata_bits_per_block


def _psums_stay(arch: Arch, op: GemmOp) -> bool:
    """One fold's ``M x C`` partial sums fit the accumulation buffer at the column bottoms (no GLB spill)."""
    usable = arch.memory.accum_buffer.usable_tile_bytes
    return usable is None or op.m * min(op.n, arch.pe_array.cols) * arch.storage.psum_bits <= usable * 8


def _glb_need_bits(arch: Arch, op: GemmOp, block_size: int, x_resident: bool) -> int:
    """GLB bits an op needs at once: one weight fold, X (all of it, or one fold's columns) and one fold's sums
    (when they spill)."""
    pe = arch.pe_array
    fold_w = sum(_operand_bits(arch, min(op.n, pe.cols), min(op.k, pe.rows), block_size))
    x = sum(_operand_bits(arch, op.m, op.k if x_resident else min(op.k, pe.rows), block_size))
    return fold_w + x + (0 if _psums_stay(arch, op) else op.m * min(op.n, pe.cols) * arch.storage.psum_bits)


def fold_tiling(arch: Arch, op: GemmOp, mapping: Mapping | None = None) -> Tiling:
    """The tiling of ``op`` on a systolic array: one tile per fold (``tile_m = M``, ``tile_n`` = the array's
    columns, ``tile_k_blocks`` = its rows: on systolic_ws K is counted in elements, one-element "blocks"), X resident
    when it fits the GLB. Blocks are ``pe_array.vector_width`` wide (:func:`fgmpsim.sim.simulate` sets it to the
    trace's block size). An explicit ``mapping`` must equal the folds; :class:`MappingError` otherwise, or when not
    even one fold fits the GLB."""
    pe, block_size = arch.pe_array, arch.pe_array.vector_width
    fold = Mapping(SYSTOLIC, op.m, min(op.n, pe.cols), min(op.k, pe.rows))
    if mapping is not None and mapping != fold:
        raise MappingError(f"op {op.name!r}: a systolic_ws array folds the GEMM by its {pe.rows}x{pe.cols} array "
                           f"({fold}), got {mapping}", "mapping", "pass mapping=None (the folds are fixed)")
    usable = arch.memory.glb.usable_tile_bytes
    fits = [usable is None or _glb_need_bits(arch, op, block_size, res) <= usable * 8 for res in (True, False)]
    if not fits[1]:
        raise MappingError(f"op {op.name!r}: one fold (weights, {op.m} input rows, their partial sums) needs "
                           f"{_glb_need_bits(arch, op, block_size, False) / 8:g} bytes but the GLB has {usable:g} "
                           "usable bytes", "memory.glb.size_bytes", "enlarge memory.glb.size_bytes or split M")
    return Tiling(fold, OpShape(op.m, op.k, op.n, op.repeat, op.consumer is not None), fits[0], False)


def systolic_counts(ops: Operands, tiling: Tiling, arch: Arch) -> dict[str, int]:
    """The op's action counts (module docstring; ``ops.vw`` is the trace's block size)."""
    op, out, f = ops.op, ops.out, Folds.of(arch, ops.op)
    r, ps = op.repeat, arch.storage.psum_bits
    w, w_meta = _operand_bits(arch, op.n, op.k, ops.vw)
    x, x_meta = _operand_bits(arch, op.m, op.k, ops.vw)
    x_loads = 1 if tiling.x_resident else f.col_folds
    spill = 0 if _psums_stay(arch, op) else op.m * op.n * (f.row_folds - 1) * ps
    sums = op.m * op.n * f.row_folds * ps
    fill, fill_meta = r * (w + x * x_loads), r * (w_meta + x_meta * x_loads)
    pair = PRECISION_PAIRS[3] if arch.pe_array.datapath_precisions[0] == "fp8" else PRECISION_PAIRS[0]
    return {
        "dram_read_bits": fill, "dram_read_metadata_bits": fill_meta,
        "dram_write_bits": out.data_bits, "dram_write_metadata_bits": out.metadata_bits,
        "glb_write_bits": fill + r * spill + out.data_bits, "glb_write_metadata_bits": fill_meta + out.metadata_bits,
        "glb_read_bits": r * (w + x * f.col_folds + spill) + out.data_bits,
        "glb_read_metadata_bits": r * (w_meta + x_meta * f.col_folds) + out.metadata_bits,
        "weight_buffer_write_bits": r * w, "weight_buffer_write_metadata_bits": r * w_meta,
        "weight_buffer_read_bits": 0, "weight_buffer_read_metadata_bits": 0,
        "input_buffer_write_bits": r * x * f.col_folds, "input_buffer_write_metadata_bits": r * x_meta * f.col_folds,
        "input_buffer_read_bits": r * x * f.col_folds, "input_buffer_read_metadata_bits": r * x_meta * f.col_folds,
        "accum_buffer_read_bits": r * sums, "accum_buffer_write_bits": r * sums,
        "accum_buffer_read_metadata_bits": 0, "accum_buffer_write_metadata_bits": 0,
        **{f"macs_{p}": op.macs if p == pair else 0 for p in PRECISION_PAIRS},
        "block_pairs": r * op.m * op.n * f.row_folds, "aqu_blocks": 0, "aqu_sensitivity_read_bits": 0,
        # no lane collectors on a systolic array (the arch check refuses them)
        **{f"{c}_{d}_{kind}bits": 0 for c in ("weight_collector", "psum_collector") for d in ("read", "write")
           for kind in ("", "metadata_")},
    }


def systolic_op(ops: Operands, tiling: Tiling, arch: Arch) -> tuple[OpTiming, dict[str, int], Bound]:
    """Timing, action counts and bound of one op on a systolic_ws array (module docstring)."""
    counts = systolic_counts(ops, tiling, arch)
    compute = ops.op.repeat * Folds.of(arch, ops.op).cycles
    if arch.memory.ideal:
        bound = Bound(compute, 0, 0)
        return bound_timing(bound), counts, bound
    sides = memory_bounds(counts, arch)
    bound = Bound(compute, sides.dram, sides.glb)
    busy = {"loader": sides.fill, "distributor": sides.pe_fill, "writer": sides.drain + sides.writeback}
    return bound_timing(bound, busy), counts, bound
