"""RunResult: one simulated (trace, arch) point, one row per op, with totals.

Row columns (units in the names): identity and shape (``op, layer, kind, M, K, N, repeat``), the mapping
(``dataflow, tile_m, tile_n, tile_k_blocks, chunk_m, x_resident, w_resident, tiles``), time (``cycles,
compute_cycles, stall_dram_cycles, stall_glb_cycles, stall_imbalance_cycles, stall_aqu_cycles, start_cycle,
end_cycle, bound_cycles`` (the analytic lower bound), ``busy_<process>_cycles``), ``simpy_events`` (the SimPy
events processed for the op: op level on the tile engine, tile-step level on the event engine, 0 on the reference
and analytic engines), MACs (``macs``,
``macs_<pair>``), every action count of :data:`fgmpsim.energy.ACTIONS`, bytes moved per level
(``dram_bytes, glb_bytes, pe_buffer_bytes``: reads + writes, metadata included), energy (``energy_pj`` and
``energy_<component>_pj`` from :func:`fgmpsim.energy.price`; ``pj_per_mac``), the weight footprint
(``weight_bits``: stored bits of the op's static weight tensor, 0 for attention's dynamic operands;
``weight_elements``), and the datapath-adjusted FP8 fractions of its maps and its output.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.errors import ConfigError
from fgmpsim.sim.mapping import Mapping

OUTPUT_SUFFIXES = (".parquet", ".csv", ".json")
STALLS = ("stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles")


@dataclass(frozen=True)
class RunResult:
    """The result of :func:`fgmpsim.sim.simulate`. ``rows`` hold one dict per op (columns in the module docstring);
    ``mappings`` the resolved :class:`Mapping` of each op; ``precision_adjustment`` what the datapath did to the
    maps; ``area`` the arch's area per component in mm² (``(component, mm²)`` pairs of
    :func:`fgmpsim.energy.area_breakdown`, empty for an arch without an area table)."""

    arch: str
    trace: str
    engine: str
    clock_hz: float
    peak_macs_per_cycle: int
    precision_adjustment: str
    mappings: tuple[tuple[str, Mapping], ...]
    rows: tuple[dict[str, Any], ...]
    area: tuple[tuple[str, float], ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per op; same inputs give a bit-identical frame."""
        return pd.DataFrame.from_records(list(self.rows))

    def mapping(self, op: str) -> Mapping:
        """The mapping used for op ``op``."""
        return dict(self.mappings)[op]

    def summary(self) -> dict[str, Any]:
        """Totals over all ops: ``cycles``, ``seconds`` (cycles / clock_hz), ``macs``, ``energy_pj``, ``pj_per_mac``,
        ``weight_bytes``, ``weight_bits_per_element``, ``utilization`` (macs / (cycles * peak MACs per cycle)),
        ``compute_cycles``, the stalls, ``bound_cycles``, the bytes moved per level, ``simpy_events`` and, when the
        arch has an area table, ``area_mm2`` with its breakdown ``area_<component>_mm2``."""
        total = {key: sum(row[key] for row in self.rows)
                 for key in ("cycles", "compute_cycles", *STALLS, "bound_cycles", "macs", "energy_pj",
                             "dram_bytes", "glb_bytes", "pe_buffer_bytes", "weight_bits", "weight_elements",
                             "simpy_events")}
        cycles, macs = total["cycles"], total["macs"]
        return {
            "arch": self.arch, "trace": self.trace, "engine": self.engine,
            "cycles": cycles, "seconds": cycles / self.clock_hz, "macs": macs,
            "energy_pj": total["energy_pj"], "pj_per_mac": total["energy_pj"] / macs if macs else 0.0,
            "weight_bytes": total["weight_bits"] / 8,
            "weight_bits_per_element": (total["weight_bits"] / total["weight_elements"]
                                        if total["weight_elements"] else 0.0),
            "utilization": macs / (cycles * self.peak_macs_per_cycle) if cycles else 0.0,
            "compute_cycles": total["compute_cycles"], **{key: total[key] for key in STALLS},
            "bound_cycles": total["bound_cycles"], "dram_bytes": total["dram_bytes"],
            "glb_bytes": total["glb_bytes"], "pe_buffer_bytes": total["pe_buffer_bytes"],
            "simpy_events": total["simpy_events"],
            **({"area_mm2": sum(mm2 for _, mm2 in self.area),
                **{f"area_{component}_mm2": mm2 for component, mm2 in self.area}} if self.area else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the per-op table to ``.parquet`` or ``.csv``, or everything (identity, summary, mappings, rows) to
        ``.json``; another suffix raises :class:`ConfigError`."""
        path = output_path(path)
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            self.to_frame().to_parquet(path, index=False)
        elif suffix == ".csv":
            self.to_frame().to_csv(path, index=False)
        else:
            document = {"arch": self.arch, "trace": self.trace, "engine": self.engine,
                        "precision_adjustment": self.precision_adjustment, "summary": self.summary(),
                        "mappings": {op: asdict(m) for op, m in self.mappings}, "ops": list(self.rows)}
            path.write_text(json.dumps(document, indent=1, default=_plain))
        return path


def output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if its suffix is one :meth:`RunResult.save` writes, else :class:`ConfigError` naming the fix."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"cannot write results as {path.suffix or 'a file without suffix'!r}", "--out",
                          "name the output file *.parquet, *.csv or *.json")
    return path


def _plain(value: Any) -> Any:
    """numpy scalars in rows -> Python numbers for JSON."""
    return value.item() if hasattr(value, "item") else str(value)
