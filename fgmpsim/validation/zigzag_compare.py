"""Energy per component, fgmpsim against ZigZag fed with fgmpsim's energy table (:mod:`.zigzag_peer`).

Every GEMM of :data:`GEMMS` (all FP8) runs on :data:`ARCH` with :data:`ARCH_SET` (one PE of 16 lanes: a 16x16
weight-stationary array) in fgmpsim and twice in ZigZag 3.x:

* ``pinned``: ZigZag evaluates fgmpsim's own loop nest (:func:`~.zigzag_peer.fgmpsim_ordering`), so every
  difference is a difference in what the two cost models count for the same schedule;
* ``free``: ZigZag's LOMA searches the loop nest for minimum energy, so the differences are mapping and reuse.

ZigZag's numbers are stored in :data:`REFERENCE_CSV` (the command that made them in its header); fgmpsim's side is
recomputed live. :func:`compare_zigzag` puts them side by side per component (DRAM, GLB, PE buffers, MAC).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.arch.record import Arch
from fgmpsim.energy import price
from fgmpsim.energy.actions import PE_BUFFERS
from fgmpsim.errors import ConfigError
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace
from fgmpsim.validation.files import write_csv
from fgmpsim.validation.zigzag_peer import fgmpsim_ordering, run_zigzag, write_zigzag_inputs

ARCH = "fp8_baseline"
ARCH_SET = ("pe_array.pes=1", "pe_array.lanes_per_pe=16")
GEMMS: tuple[tuple[int, int, int], ...] = (
    (64, 256, 256), (256, 512, 512), (512, 1024, 1024), (1024, 512, 2048),
    (128, 4096, 11008), (32, 4096, 4096), (16, 4096, 11008), (1, 4096, 4096))
"""(M, K, N): small square cases, Llama-2-7B FFN/attention projections at 1-128 tokens (decode to short prefill).
Every one has fgmpsim tiles that divide it, so ZigZag can be pinned to fgmpsim's loop nest."""
REFERENCE_CSV = "tests/data/zigzag_energy.csv"
COMPONENTS = ("dram", "glb", "pe_buffers", "mac")
PEER_LEVELS = ("dram", "glb", *PE_BUFFERS)
TOLERANCE_PINNED = 0.01
"""Largest relative difference per component accepted on the pinned runs (the models count the same schedule)."""
STORE_COMMAND = "python -m fgmpsim validate --zigzag-python /tmp/peers/zigzag-venv/bin/python --store"


def peer_arch() -> Arch:
    """The 16x16 weight-stationary FP8 array both tools model."""
    return load_arch(ARCH, list(ARCH_SET))


@dataclass(frozen=True)
class OursGemm:
    """fgmpsim's side of one GEMM: energy per memory level and the MAC energy (pJ), cycles, its loop nest."""

    m: int
    k: int
    n: int
    cycles: int
    level_pj: dict[str, float]
    mac_pj: float
    ordering: list[list[Any]]


def ours(arch: Arch, m: int, k: int, n: int) -> OursGemm:
    """Simulate the all-FP8 GEMM on ``arch``; PE buffers priced one level at a time with :func:`price`."""
    result = simulate(gemm_trace(m, k, n, fp4_fraction=0.0), arch)
    row = result.rows[0]
    levels = {"dram": row["energy_dram_pj"], "glb": row["energy_glb_pj"]}
    for level in PE_BUFFERS:
        counts = {f"{level}_{d}_bits": row[f"{level}_{d}_bits"] for d in ("read", "write")}
        levels[level] = price(counts, arch.energy).pe_buffers
    mac = row["energy_mac_fp8xfp8_pj"] + row["energy_scale_accumulate_pj"]
    ordering = fgmpsim_ordering(result.mappings[0][1], m, k, n, arch.pe_array.vector_width)
    return OursGemm(m, k, n, int(row["cycles"]), levels, float(mac), ordering)


def run_zigzag_reference(python: str, gemms: tuple[tuple[int, int, int], ...] = GEMMS,
                         workdir: Path | None = None) -> pd.DataFrame:
    """Run ZigZag (interpreter ``python``) on every GEMM, pinned and free; one row per (GEMM, run) with
    ``cycles``, ``<level>_pj``, ``mac_pj``, the ordering given (pinned) and the loop nest ZigZag used."""
    arch = peer_arch()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fgmpsim-zigzag-") as tmp:
        root = workdir or Path(tmp)
        for m, k, n in gemms:
            ordering = ours(arch, m, k, n).ordering
            for run, pinned in (("pinned", ordering), ("free", None)):
                folder = root / f"{m}x{k}x{n}" / run
                write_zigzag_inputs(arch, m, k, n, folder, pinned)
                out = run_zigzag(python, folder)
                rows.append({"m": m, "k": k, "n": n, "run": run, "zigzag_version": out["zigzag_version"],
                             "cycles": out["cycles"], **{f"{lv}_pj": out.get(f"{lv}_pj", 0.0) for lv in PEER_LEVELS},
                             "mac_pj": out["mac_pj"], "temporal_ordering": json.dumps(pinned) if pinned else "",
                             "zigzag_temporal_mapping": out["temporal_mapping"]})
    return pd.DataFrame(rows)


def store_zigzag_reference(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV with a header naming the command and versions; atomic (temp + rename)."""
    version = frame["zigzag_version"].iloc[0]
    header = (f"# ZigZag energy per memory level (pJ) and latency (cycles) on fgmpsim's {ARCH} "
              f"{' '.join(ARCH_SET)} with fgmpsim's energy table; zigzag-dse {version}, LOMA objective energy.\n"
              f"# produced by: {STORE_COMMAND}\n")
    return write_csv(frame, path, header)


def load_zigzag_reference(path: Path) -> pd.DataFrame:
    """The stored ZigZag rows (:func:`store_zigzag_reference`); ConfigError if the file is missing."""
    if not path.exists():
        raise ConfigError(f"no stored ZigZag reference at {path}", "--zigzag-python",
                          f"run from the repository root, or regenerate it: {STORE_COMMAND}")
    return pd.read_csv(path, comment="#", keep_default_na=False)


def _groups(level_pj: dict[str, float], mac_pj: float) -> dict[str, float]:
    return {"dram": level_pj["dram"], "glb": level_pj["glb"],
            "pe_buffers": sum(level_pj[lv] for lv in PE_BUFFERS), "mac": mac_pj}


def compare_zigzag(reference: pd.DataFrame, arch: Arch | None = None) -> pd.DataFrame:
    """One row per (GEMM, run, component): ``fgmpsim_pj``, ``zigzag_pj``, ``ratio`` (ZigZag / fgmpsim), and per
    GEMM whether fgmpsim's current loop nest still equals the stored pinned ordering (``ordering_matches``);
    component ``total`` sums the four, ``weight_buffer``/``input_buffer``/``accum_buffer`` split the PE buffers."""
    arch = arch or peer_arch()
    rows = []
    for (m, k, n), group in reference.groupby(["m", "k", "n"], sort=False):
        mine = ours(arch, int(m), int(k), int(n))
        ordering_stored = group.loc[group["run"] == "pinned", "temporal_ordering"]
        matches = bool(len(ordering_stored)) and json.loads(ordering_stored.iloc[0]) == mine.ordering
        our_groups = _groups(mine.level_pj, mine.mac_pj)
        for _, peer in group.iterrows():
            peer_levels = {lv: float(peer[f"{lv}_pj"]) for lv in PEER_LEVELS}
            their_groups = _groups(peer_levels, float(peer["mac_pj"]))
            pairs = {**{c: (our_groups[c], their_groups[c]) for c in COMPONENTS},
                     "total": (sum(our_groups.values()), sum(their_groups.values())),
                     **{lv: (mine.level_pj[lv], peer_levels[lv]) for lv in PE_BUFFERS}}
            for component, (a, b) in pairs.items():
                rows.append({"m": int(m), "k": int(k), "n": int(n), "run": peer["run"], "component": component,
                             "fgmpsim_pj": a, "zigzag_pj": b, "ratio": b / a if a else float("nan"),
                             "fgmpsim_cycles": mine.cycles, "zigzag_cycles": int(peer["cycles"]),
                             "ordering_matches": matches})
    return pd.DataFrame(rows)


MATERIAL = 0.10
"""Differences above this (relative) are explained one by one in docs/validation.md."""


def x_resident(arch: Arch, m: int, k: int) -> bool:
    """True when all of X (M x K FP8 bytes) fits the input buffer: ZigZag's allocator then keeps it there across
    the n-tiles, while fgmpsim refills its half of the double-buffered buffer per n-tile."""
    return m * k * arch.storage.fp8_value_bits // 8 <= arch.memory.input_buffer.size_bytes


def explain(row: pd.Series, arch: Arch) -> str | None:
    """Why the ZigZag / fgmpsim ratio of one :func:`compare_zigzag` row is what it is; ``None`` when it is within
    :data:`MATERIAL` or no recorded reason covers it (a test asserts that never happens on the stored data)."""
    ratio, run, component = row["ratio"], row["run"], row["component"]
    if abs(ratio - 1) <= MATERIAL:
        return None
    resident = x_resident(arch, row["m"], row["k"])
    if component == "accum_buffer":
        if abs(ratio - 0.5) < 1e-3:
            return ("finished outputs: ZigZag moves them at O_final = 16 bits (one write, one read), fgmpsim writes "
                    "and drains 32-bit partial sums")
        if ratio < 0.5:
            return ("ZigZag keeps the 32-bit sum in the lane's register across every k-tile (its lane_psum level "
                    "takes all C loops); fgmpsim spills it to the accumulation buffer after each k-tile")
        if run == "pinned":
            return ("k-tiles spill partial sums in both tools; ZigZag holds the k-tile loop at the GLB level and "
                    "counts 32-bit read-backs plus a 16-bit final write (the component is < 0.5% of the total)")
        return ("B (rows) innermost in LOMA's nest: a lane can no longer keep its sum across k-blocks, so every "
                "cycle reads and writes one 32-bit partial sum per column in the accumulation buffer")
    if component == "weight_buffer" and run == "free" and ratio < 1:
        return ("LOMA puts B (rows) innermost: a weight stays at its MAC input across rows (an operand register); "
                "fgmpsim reads the weight buffer for every MAC (no register-level reuse, issue 10 item 1)")
    if component in ("input_buffer", "glb") and resident and ratio < 1 or (
            component in ("pe_buffers", "total") and run == "pinned" and resident and ratio < 1):
        return ("all of X fits the 16 KB input buffer: ZigZag's allocator writes it once and keeps it across the "
                "n-tiles (GLB reads of X once, not once per n-tile); fgmpsim refills the input buffer per n-tile")
    if component in ("input_buffer", "glb") and run == "free":
        return ("LOMA's own tiling: other loops held in the input buffer and the GLB than fgmpsim's nest "
                "(ZigZag's temporal mapping is stored next to the numbers)")
    if component in ("pe_buffers", "total") and run == "free":
        return ("sum of the free-mapping effects: weight reuse at the MAC (weight buffer) outweighs the extra "
                "partial-sum traffic (accumulation buffer)")
    return None
