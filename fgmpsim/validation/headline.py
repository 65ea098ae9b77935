"""The FGMP paper's headline (Llama-2-7B, 70% of weight and activation blocks in NVFP4) recomputed by fgmpsim.

* Weight memory saved vs FP8: by arithmetic on an exactly-70% map for each storage choice the arch YAML can
  express (:func:`footprint_table`), and as simulated on the synthetic trace;
* energy saved vs the all-FP8 accelerator (``fgmp`` vs ``fp8_baseline``) on the synthetic prefill trace
  (:data:`TRACE_ARGS`), and a tornado (:func:`tornado`): every energy-table entry x0.5 and x2 (a
  ``--set energy.actions.<entry>.pj=...`` override of both archs, since an entry is a technology cost both designs
  pay), plus the storage options the YAML expresses (:data:`STRUCTURAL`, fgmp only, from shipped to the alternative).

Energy entries only price counts: the mapper minimizes traffic, never energy (``fgmpsim.sim.mapping``), so an
entry's override is applied by re-pricing the two simulated frames (:func:`fgmpsim.energy.price_frame`) with the
overridden arch's table; ``tests/test_validation_headline.py`` checks that this equals re-simulating. Structural
options change counts and are re-simulated.

The simulation takes ~15-60 s, so :func:`compute_headline` runs it once and :func:`store_headline` writes
:data:`HEADLINE_CSV` and :data:`TORNADO_CSV`; ``fgmpsim validate`` reads them (``--full`` recomputes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.energy import bits_per_element, price_frame
from fgmpsim.errors import ConfigError
from fgmpsim.sim import simulate
from fgmpsim.trace import synth_trace
from fgmpsim.validation.files import write_csv

TRACE_ARGS: dict[str, Any] = {"model": "llama-2-7b", "tokens": 2048, "batch": 1, "phase": "prefill",
                              "fp4_fraction": 0.7, "seed": 0}
ARCHS = ("fgmp", "fp8_baseline")
FACTORS = (0.5, 2.0)
STRUCTURAL = (("storage.fp8_scale_bits", 8), ("storage.metadata_bits_per_block", 2))
"""(fgmp field, alternative to the shipped value) re-simulated for the tornado. The loader refuses 0 metadata bits
on a mixed datapath (a block's precision must be stored), so no option lowers the flag cost."""
HEADLINE_CSV = "docs/results/headline_llama2_7b.csv"
TORNADO_CSV = "docs/results/tornado_llama2_7b.csv"
PAPER_ENERGY_SAVED = 0.14
PAPER_WEIGHT_MEMORY_SAVED = 0.30
STORAGE_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("default: NVFP4 blocks + E4M3 scale, FP8 blocks unscaled, 1-bit flag per 16-element block", ()),
    ("2-bit precision tag per block", ("storage.metadata_bits_per_block=2",)),
    ("FP8 blocks carry an 8-bit scale too", ("storage.fp8_scale_bits=8",)),
    ("32-element blocks (MX-style), 8-bit scale, 1-bit flag", ("pe_array.vector_width=32",)),
)


def footprint_table(fp4_fraction: float = 0.7) -> pd.DataFrame:
    """Weight bits per element (block cost only, no per-tensor scale) and the saving vs FP8's 8 bits for each
    :data:`STORAGE_CHOICES` entry, on a map with exactly ``fp4_fraction`` NVFP4 blocks (1,000 blocks)."""
    rows = []
    for label, overrides in STORAGE_CHOICES:
        arch = load_arch("fgmp", list(overrides))
        n_fp8 = round((1 - fp4_fraction) * 1000)
        weight_map = (np.arange(1000) < n_fp8).reshape(1, 1000)
        bits = bits_per_element(weight_map, arch.storage, arch.pe_array.vector_width, include_tensor_scale=False)
        rows.append({"storage": label, "overrides": " ".join(overrides) or "(fgmp.yaml as shipped)",
                     "bits_per_element": bits, "saved_vs_fp8": 1 - bits / arch.storage.fp8_value_bits})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Headline:
    """Per-arch totals on the trace (``summary``: one row per arch with cycles, energy per component in pJ,
    weight bits per element) and the tornado (one row per setting: ``saving`` = 1 - E_fgmp / E_fp8)."""

    summary: pd.DataFrame
    tornado: pd.DataFrame

    def saving(self) -> float:
        """Energy saved by fgmp vs fp8_baseline with the shipped tables (a fraction)."""
        e = self.summary.set_index("arch")["energy_pj"]
        return float(1 - e["fgmp"] / e["fp8_baseline"])


def _summary_row(arch_name: str, frame: pd.DataFrame, result: Any) -> dict[str, Any]:
    summary = result.summary()
    energy = {c: float(frame[c].sum()) for c in frame.columns if c.startswith("energy_") and c.endswith("_pj")}
    return {"arch": arch_name, "cycles": summary["cycles"], "macs": summary["macs"],
            "energy_pj": summary["energy_pj"], **{k: v for k, v in energy.items() if k != "energy_pj"},
            "weight_bits_per_element": summary["weight_bits_per_element"]}


def compute_headline(progress: Any = None, trace: Any = None) -> Headline:
    """Simulate ``trace`` (default: :data:`TRACE_ARGS`) on both archs and build the tornado (module docstring).
    ``progress(text)`` is called before each simulation."""
    say = progress or (lambda text: None)
    trace = trace if trace is not None else synth_trace(**TRACE_ARGS)
    frames, rows = {}, []
    for name in ARCHS:
        say(f"simulating {trace.name} on {name}")
        result = simulate(trace, load_arch(name))
        frames[name] = result.to_frame()
        rows.append(_summary_row(name, frames[name], result))
    summary = pd.DataFrame(rows)
    base = summary.set_index("arch")["energy_pj"]
    shipped = load_arch("fgmp").energy.as_dict()
    tornado = [{"setting": "(as shipped)", "kind": "none", "factor": 1.0, "value": float("nan"),
                "fgmp_energy_pj": base["fgmp"], "fp8_energy_pj": base["fp8_baseline"]}]
    for entry, pj in shipped.items():
        for factor in FACTORS:
            override = [f"energy.actions.{entry}.pj={pj * factor!r}"]
            energies = {name: float(price_frame(frames[name], load_arch(name, override).energy)
                                    ["energy_total_pj"].sum()) for name in ARCHS}
            tornado.append({"setting": f"energy.actions.{entry}.pj", "kind": "energy entry", "factor": factor,
                            "value": pj * factor, "fgmp_energy_pj": energies["fgmp"],
                            "fp8_energy_pj": energies["fp8_baseline"]})
    storage = load_arch("fgmp").storage
    for field, value in STRUCTURAL:
        say(f"simulating {trace.name} on fgmp with {field}={value}")
        energy = simulate(trace, load_arch("fgmp", [f"{field}={value}"])).summary()["energy_pj"]
        shipped_value = getattr(storage, field.split(".")[-1])
        tornado += [{"setting": field, "kind": "structure", "factor": float("nan"), "value": shipped_value,
                     "fgmp_energy_pj": base["fgmp"], "fp8_energy_pj": base["fp8_baseline"]},
                    {"setting": field, "kind": "structure", "factor": float("nan"), "value": value,
                     "fgmp_energy_pj": energy, "fp8_energy_pj": base["fp8_baseline"]}]
    frame = pd.DataFrame(tornado)
    frame["saving"] = 1 - frame["fgmp_energy_pj"] / frame["fp8_energy_pj"]
    return Headline(summary, frame)


def store_headline(headline: Headline, root: Path) -> None:
    """Write :data:`HEADLINE_CSV` and :data:`TORNADO_CSV` under ``root`` (atomic), each naming its command."""
    args = " ".join(f"{k}={v}" for k, v in TRACE_ARGS.items())
    header = f"# synth_trace({args}) on {', '.join(ARCHS)}; produced by: python -m fgmpsim validate --full\n"
    write_csv(headline.summary, root / HEADLINE_CSV, header)
    write_csv(headline.tornado, root / TORNADO_CSV, header)


def load_headline(root: Path) -> Headline:
    """The stored :class:`Headline` (:func:`store_headline`); ConfigError naming the fix when absent."""
    paths = [root / HEADLINE_CSV, root / TORNADO_CSV]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"stored headline results missing: {', '.join(missing)}", "--full",
                          "run from the repository root, or recompute them with fgmpsim validate --full")
    summary, tornado = (pd.read_csv(p, comment="#") for p in paths)
    return Headline(summary, tornado)


def tornado_spans(headline: Headline) -> pd.DataFrame:
    """One row per setting: ``low``/``high`` saving (x0.5 / x2, or the shipped / alternative value) and ``span``
    (their distance), sorted by span, largest first."""
    t = headline.tornado[headline.tornado["kind"] != "none"]
    rows = []
    for setting, group in t.groupby("setting", sort=False):
        low, high = group["saving"].iloc[0], group["saving"].iloc[-1]
        rows.append({"setting": setting, "kind": group["kind"].iloc[0], "low": low, "high": high,
                     "low_label": _label(group.iloc[0]), "high_label": _label(group.iloc[-1]),
                     "span": abs(high - low)})
    return pd.DataFrame(rows).sort_values("span", ascending=False, ignore_index=True)


def _label(row: pd.Series) -> str:
    return f"x{row['factor']:g}" if row["kind"] == "energy entry" else f"={row['value']:g}"
