"""fgmpsim's on-chip pJ/MAC (everything but DRAM) next to published accelerators (``silicon.yaml``).

Ours: a Llama-2-7B q_proj-shaped GEMM (:data:`GEMM`, 2048 tokens) with 70% NVFP4 blocks on ``fgmp`` and the same
trace on ``fp8_baseline`` (every block promoted to FP8). Theirs: the reported pJ/op x 2 (one MAC = two ops). The
only normalisation offered is a node column for 16 nm chips: x (51 nm / 90 nm), the contacted-gate-pitch ratio of
5 nm to 16 nm that fgmpsim's own 45 -> 5 nm factor uses (docs/energy_model.md), at equal voltage.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace

DATA = Path(__file__).with_name("silicon.yaml")
GEMM = {"m": 2048, "k": 4096, "n": 4096, "fp4_fraction": 0.7, "seed": 0}
OPS_PER_MAC = 2
CPP_NM = {16: 90.0, 5: 51.0}
"""Contacted gate pitch per node (TSMC 16FF 90 nm, N5 51 nm) for the node column."""


def ours() -> pd.DataFrame:
    """One row per arch: on-chip pJ/MAC and its split (datapath = MACs + scale/accumulate + the mixed lane's mode
    logic, on-chip memories = GLB + PE buffers + collectors + metadata + alignment, AQU, static = leakage + clock),
    plus DRAM pJ/MAC for reference."""
    trace = gemm_trace(**GEMM)
    rows = []
    for name in ("fgmp", "fp8_baseline"):
        row = simulate(trace, load_arch(name)).to_frame().iloc[0]
        macs = row["macs"]
        datapath = (sum(row[c] for c in row.index if c.startswith("energy_mac_")) + row["energy_scale_accumulate_pj"]
                    + row["energy_fgmp_mode_logic_pj"])
        memories = (row["energy_glb_pj"] + row["energy_pe_buffers_pj"] + row["energy_collectors_pj"]
                    + row["energy_metadata_pj"] + row["energy_alignment_pj"])
        rows.append({"arch": name, "on_chip_pj_per_mac": (row["energy_pj"] - row["energy_dram_pj"]) / macs,
                     "datapath_pj_per_mac": datapath / macs, "on_chip_memory_pj_per_mac": memories / macs,
                     "pe_buffers_pj_per_mac": row["energy_pe_buffers_pj"] / macs,
                     "aqu_pj_per_mac": row["energy_aqu_pj"] / macs,
                     "static_pj_per_mac": (row["energy_leakage_pj"] + row["energy_clock_pj"]) / macs,
                     "dram_pj_per_mac": row["energy_dram_pj"] / macs})
    return pd.DataFrame(rows)


def published() -> pd.DataFrame:
    """The chips of ``silicon.yaml`` with ``pj_per_mac`` and, for 16 nm, ``pj_per_mac_at_5nm_cpp``."""
    chips = yaml.safe_load(DATA.read_text())["chips"]
    frame = pd.DataFrame(chips)
    frame["pj_per_mac"] = frame["pj_per_op"] * OPS_PER_MAC
    frame["pj_per_mac_at_5nm_cpp"] = [
        mac * CPP_NM[5] / CPP_NM[node] if node in CPP_NM else float("nan")
        for mac, node in zip(frame["pj_per_mac"], frame["node_nm"])]
    return frame
