"""The FGMP datapath against an FP8 systolic array at equal peak (256 MAC/cycle) and equal memories.

Three machines, the same GEMMs (70% NVFP4 blocks, seed 0; the FP8 machines promote every block to FP8):

* ``systolic_16x16`` with ``memory.ideal=false``: SCALE-Sim's 16x16 FP8 weight-stationary systolic array with
  base.yaml's memories (its ``compute_cycles`` are SCALE-Sim's "Total Cycles");
* ``fp8_baseline`` and ``fgmp`` with ``pe_array.pes=1 pe_array.lanes_per_pe=16``: one PE of 16 lanes, each lane a
  16-element block-pair dot product, lanes in lock-step per tile (fgmpsim's weight-stationary dataflow).
"""

from __future__ import annotations

import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace

GEMMS = ((1, 4096, 4096), (16, 4096, 4096), (64, 256, 256), (256, 512, 512), (512, 4096, 4096), (100, 200, 70))
"""(M, K, N): Llama-2-7B q_proj at decode (M = 1, 16) and a 512-token prefill, small shapes, a partial block."""
FP4_FRACTION = 0.7
LANES = ("pe_array.pes=1", "pe_array.lanes_per_pe=16")
MACHINES = {"systolic FP8": ("systolic_16x16", ("memory.ideal=false",)), "lanes FP8": ("fp8_baseline", LANES),
            "lanes FGMP": ("fgmp", LANES)}


def compare() -> pd.DataFrame:
    """One row per GEMM and machine: cycles, compute cycles, pJ per useful MAC, DRAM bytes, utilization."""
    rows = []
    for m, k, n in GEMMS:
        trace = gemm_trace(m, k, n, fp4_fraction=FP4_FRACTION)
        for machine, (name, overrides) in MACHINES.items():
            arch = load_arch(name, list(overrides))
            row = simulate(trace, arch).rows[0]
            rows.append({"gemm": f"{m}x{k}x{n}", "machine": machine, "cycles": row["cycles"],
                         "compute_cycles": row["compute_cycles"],
                         "utilization": row["useful_macs"] / (row["cycles"] * arch.peak_macs_per_cycle),
                         "pj_per_useful_mac": row["energy_pj"] / row["useful_macs"],
                         "on_chip_pj_per_useful_mac": (row["energy_pj"] - row["energy_dram_pj"]) / row["useful_macs"],
                         "dram_bytes": row["dram_bytes"]})
    return pd.DataFrame(rows)
