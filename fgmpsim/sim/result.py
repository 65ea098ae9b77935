"""RunResult: one simulated (trace, arch) point, one row per op, with totals.

Row columns (units in the names): identity and shape (``op, layer, kind, M, K, N, repeat``), the mapping
(``dataflow, tile_m, tile_n, tile_k_blocks, chunk_m, x_resident, w_resident, tiles``), time (``cycles,
compute_cycles, stall_dram_cycles, stall_glb_cycles, stall_imbalance_cycles, stall_aqu_cycles, stall_fill_cycles,
start_cycle, end_cycle, bound_cycles`` (``stall_fill_cycles``: the VMAC pipeline's fill/drain; ``bound_cycles``: the
analytic lower bound), ``busy_<process>_cycles``), ``simpy_events`` (the SimPy events processed for the op: op level
on the tile engine, tile-step level on the event engine, 0 on the reference and analytic engines), MACs (``macs``,
``macs_<pair>``: lane MAC slots, ``M * N * KB * block`` on the block dataflows, so a zero-padded partial last block
counts whole; ``useful_macs``: ``M * N * K * repeat`` over the op's real K (the trace's K; a synthetic
``attn_pv``'s K is its ``kv_len``, so a ``kv_len`` that is not a block multiple leaves it below ``macs``), for a
causal op summed over its query bands (each band's keys up to its last query: the masked triangle inside a band is
computed and counted); equal to ``macs`` on systolic_ws; ``pj_per_mac`` and utilization divide by ``macs``), every
action count of :data:`fgmpsim.energy.ACTIONS`, bytes moved per level (``dram_bytes, glb_bytes, pe_buffer_bytes``:
reads + writes, metadata included), energy (``energy_pj`` and ``energy_<component>_pj`` from
:func:`fgmpsim.energy.price`; ``pj_per_mac``), the weight footprint (``weight_bits``: stored bits of the op's
static weight tensor, 0 for attention's dynamic operands; ``weight_elements``), and the datapath-adjusted FP8
fractions of its maps and its output.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.arch.record import Arch
from fgmpsim.energy.actions import COMPONENTS
from fgmpsim.errors import ConfigError
from fgmpsim.io.atomic import atomic_path, atomic_write, check_output_file
from fgmpsim.sim.mapping import Mapping

OUTPUT_SUFFIXES = (".parquet", ".csv", ".json")
PROVENANCE_KEY = "fgmpsim.provenance"
"""Parquet key-value metadata key of a result file's provenance (JSON files hold it under ``provenance``)."""
CSV_SIDECAR = ".provenance.json"
"""A CSV result ``r.csv`` keeps its provenance in ``r.csv.provenance.json`` (so ``pd.read_csv`` reads the table
as it is), with the CSV's sha256: a CSV that does not match its sidecar is stale or damaged."""
STALLS = ("stall_dram_cycles", "stall_glb_cycles", "stall_imbalance_cycles", "stall_aqu_cycles",
          "stall_fill_cycles")


@dataclass(frozen=True)
class RunResult:
    """The result of :func:`fgmpsim.sim.simulate`. ``rows`` hold one dict per op (columns in the module docstring);
    ``mappings`` the resolved :class:`Mapping` of each op; ``precision_adjustment`` what the datapath did to the
    maps; ``area`` the arch's area per component in mm² (``(component, mm²)`` pairs of
    :func:`fgmpsim.energy.area_breakdown`, empty for an arch without an area table); ``dram`` the DRAM footprint
    fields of :func:`fgmpsim.sim.hw.dram.dram_footprint` as ``(field, value)`` pairs; ``attention`` and
    ``causal_band_rows`` the :func:`~fgmpsim.sim.simulate` settings it was run with."""

    arch: str
    trace: str
    engine: str
    clock_hz: float
    peak_macs_per_cycle: int
    precision_adjustment: str
    mappings: tuple[tuple[str, Mapping], ...]
    rows: tuple[dict[str, Any], ...]
    attention: str
    causal_band_rows: int
    area: tuple[tuple[str, float], ...] = ()
    dram: tuple[tuple[str, Any], ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per op; same inputs give a bit-identical frame."""
        return pd.DataFrame.from_records(list(self.rows))

    def mapping(self, op: str) -> Mapping:
        """The mapping used for op ``op``."""
        return dict(self.mappings)[op]

    def summary(self) -> dict[str, Any]:
        """Totals over all ops: ``cycles``, ``seconds`` (cycles / clock_hz), ``macs``, ``energy_pj`` and its
        components ``energy_<component>_pj`` (:data:`fgmpsim.energy.COMPONENTS`), ``pj_per_mac``,
        ``weight_bytes``, ``weight_bits_per_element``, ``utilization`` (macs / (cycles * peak MACs per cycle)),
        ``compute_cycles``, the stalls, ``bound_cycles``, the bytes moved per level, ``simpy_events``, the DRAM
        footprint (``dram_weight_bytes, dram_kv_cache_bytes, dram_footprint_bytes, dram_size_bytes, dram_fits``:
        :mod:`fgmpsim.sim.hw.dram`) and, when the
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
            **{f"energy_{c}_pj": sum(row.get(f"energy_{c}_pj", 0.0) for row in self.rows) for c in COMPONENTS},
            "weight_bytes": total["weight_bits"] / 8,
            "weight_bits_per_element": (total["weight_bits"] / total["weight_elements"]
                                        if total["weight_elements"] else 0.0),
            "utilization": macs / (cycles * self.peak_macs_per_cycle) if cycles else 0.0,
            "compute_cycles": total["compute_cycles"], **{key: total[key] for key in STALLS},
            "bound_cycles": total["bound_cycles"], "dram_bytes": total["dram_bytes"],
            "glb_bytes": total["glb_bytes"], "pe_buffer_bytes": total["pe_buffer_bytes"],
            "simpy_events": total["simpy_events"], **dict(self.dram),
            **({"area_mm2": sum(mm2 for _, mm2 in self.area),
                **{f"area_{component}_mm2": mm2 for component, mm2 in self.area}} if self.area else {}),
        }

    def provenance(self, arch: Arch | None = None, trace_manifest_sha256: str | None = None) -> dict[str, Any]:
        """What produced this result: trace, engine, attention setting, code version and, when given, the fully
        resolved arch (as YAML text that :func:`fgmpsim.arch.arch_from_dict` reads back) and the trace manifest's
        sha256."""
        import yaml

        from fgmpsim.arch.loader import arch_to_dict
        from fgmpsim.provenance import code_version

        return {"trace": self.trace, "trace_manifest_sha256": trace_manifest_sha256, "arch": self.arch,
                "arch_yaml": None if arch is None else yaml.safe_dump(arch_to_dict(arch), sort_keys=False),
                "engine": self.engine, "attention": self.attention, "causal_band_rows": self.causal_band_rows,
                "code_version": code_version(), "rows": len(self.rows)}

    def save(self, path: str | os.PathLike[str], arch: Arch | None = None,
             trace_manifest_sha256: str | None = None) -> Path:
        """Write the per-op table to ``.parquet`` or ``.csv``, or everything (identity, summary, mappings, rows) to
        ``.json``; another suffix or a path that cannot be written raises :class:`ConfigError`.

        The file carries :meth:`provenance` (Parquet key-value metadata ``fgmpsim.provenance``, a ``provenance``
        key in JSON, a ``<file>.provenance.json`` sidecar for CSV). It is written to a temporary file in the target
        directory and renamed, so a failure or a kill leaves the previous file whole."""
        path = output_path(path)
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        provenance = self.provenance(arch, trace_manifest_sha256)
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   PROVENANCE_KEY: json.dumps(provenance)})
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp)
        elif suffix == ".csv":
            data = self.to_frame().to_csv(index=False).encode()
            atomic_write(path, data)
            sidecar = {**provenance, "csv_sha256": hashlib.sha256(data).hexdigest()}
            atomic_write(path.with_name(path.name + CSV_SIDECAR), json.dumps(sidecar, indent=1).encode())
        else:
            document = {"arch": self.arch, "trace": self.trace, "engine": self.engine,
                        "precision_adjustment": self.precision_adjustment, "provenance": provenance,
                        "summary": self.summary(), "mappings": {op: asdict(m) for op, m in self.mappings},
                        "ops": list(self.rows)}
            atomic_write(path, json.dumps(document, indent=1, default=_plain, allow_nan=False).encode())
        return path


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance :meth:`RunResult.save` stored with a result file (for CSV: its sidecar, checked against the
    CSV's bytes); :class:`ConfigError` if there is none or it does not match."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        raw = (pq.read_schema(path).metadata or {}).get(PROVENANCE_KEY.encode())
        found = None if raw is None else json.loads(raw)
    elif suffix == ".csv":
        sidecar = path.with_name(path.name + CSV_SIDECAR)
        found = json.loads(sidecar.read_text()) if sidecar.is_file() else None
        if found is not None and found.get("csv_sha256") != hashlib.sha256(path.read_bytes()).hexdigest():
            raise ConfigError(f"{path} does not match its provenance sidecar {sidecar.name}", "path",
                              "the CSV was edited, truncated or replaced: rerun fgmpsim simulate --out")
    else:
        found = json.loads(path.read_text()).get("provenance")
    if found is None:
        raise ConfigError(f"{path} carries no fgmpsim provenance", "path", "write it with fgmpsim simulate --out")
    return found


def output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if :meth:`RunResult.save` can write it (suffix .parquet/.csv/.json; not empty, not a directory, not
    under a file, not a device or system tree; its directory exists writable or can be created), else
    :class:`ConfigError` naming the fix. Call it before simulating."""
    return check_output_file(path, "--out", ConfigError, OUTPUT_SUFFIXES)


def _plain(value: Any) -> Any:
    """numpy scalars in rows -> Python numbers for JSON."""
    return value.item() if hasattr(value, "item") else str(value)
