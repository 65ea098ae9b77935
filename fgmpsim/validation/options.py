"""Which structural assumption moves the FGMP-vs-FP8 result: every microarchitecture option of the arch YAML
flipped from its shipped setting, on both designs, on Llama-2-7B prefill and decode.

Each :class:`Option` names the ``--set`` overrides that turn it off and on; one of the two is the shipped setting
(:func:`shipped_state` tells which, from the loaded ``fgmp`` arch). For every option, the other setting is applied
to ``fgmp`` *and* ``fp8_baseline`` (an assumption about the machine holds for both designs) and both traces
(:data:`TRACES`) are re-simulated. A row holds one (option, setting, trace): both designs' energy (pJ), cycles and
area (mm²), and ``saving = 1 - E_fgmp / E_fp8``. The shipped rows (``option = "(as shipped)"``) are the reference.

The simulations take minutes, so :func:`compute_options` runs them and :func:`store_options` writes
:data:`OPTIONS_CSV`; ``fgmpsim validate`` reads it (``--full`` recomputes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.sim.hw.causal import DEFAULT as DEFAULT_ATTENTION
from fgmpsim.trace import synth_trace
from fgmpsim.validation.files import write_csv
from fgmpsim.validation.headline import ARCHS, TRACE_ARGS

TRACES: dict[str, dict[str, Any]] = {
    "prefill": TRACE_ARGS,
    "decode": {**TRACE_ARGS, "phase": "decode", "tokens": None, "kv_len": TRACE_ARGS["tokens"]},
}
"""The two traces: the headline's prefill (2048 tokens) and one decode step over a 2048-token KV cache."""

OPTIONS_CSV = "docs/results/options_llama2_7b.csv"


@dataclass(frozen=True)
class Option:
    """A structural option: ``off`` and ``on`` are ``--set`` overrides (``path=value``) of both designs (``()``: as
    the YAML ships, so a priced entry's shipped value is read from the table, never repeated here), or, for
    what is a simulation mode rather than an arch field, ``attention`` = (mode off, mode on) of ``simulate``."""

    name: str
    description: str
    off: tuple[str, ...] = ()
    on: tuple[str, ...] = ()
    attention: tuple[str, str] | None = None

    def setting(self, state: str) -> tuple[tuple[str, ...], str]:
        """``(overrides, attention mode)`` of ``state`` (``"on"`` or ``"off"``)."""
        overrides = self.on if state == "on" else self.off
        if self.attention is None:
            return overrides, DEFAULT_ATTENTION
        return overrides, self.attention[state == "on"]


OPTIONS: tuple[Option, ...] = (
    Option("packed_pe_buffers", "weight and input buffers store blocks packed (off: every block in an FP8-wide slot)",
           ("storage.layout.pe_buffers=slotted",), ("storage.layout.pe_buffers=packed",)),
    Option("packed_glb", "the GLB stores blocks packed (off: FP8-wide slots)",
           ("storage.layout.glb=slotted",), ("storage.layout.glb=packed",)),
    Option("packed_dram", "DRAM stores blocks packed (off: FP8-wide slots, no weight-memory saving)",
           ("storage.layout.dram=slotted",), ("storage.layout.dram=packed",)),
    Option("alignment_energy", "packed levels pay an alignment network per block (off: alignment is free)",
           ("energy.actions.align_block.pj=0.0",), ()),
    Option("mixed_lane_overhead", "a MAC on a mixed FP4/FP8 lane pays its decode and mode muxes (off: free)",
           ("energy.actions.mac_fgmp_extra.pj=0.0",), ()),
    Option("static_energy", "leakage and clock energy for every cycle (off: dynamic energy only)",
           ("static.enabled=false",), ("static.enabled=true",)),
    Option("glb_keep_outputs", "an op's output stays in the GLB for the next op when it fits (no DRAM round trip)",
           ("memory.glb.keep_outputs=false",), ("memory.glb.keep_outputs=true",)),
    Option("collectors", "8-block weight and 8-entry partial-sum collectors in every lane (fgmpsim.sim.hw.collectors)",
           ("pe_array.weight_collector_blocks=0", "pe_array.psum_collector_entries=1"),
           ("pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=8")),
    Option("causal_attention", "prefill attention skips the key blocks above each 128-row query band "
           "(off: the full M x N product)", attention=("dense", "causal")),
    Option("pipeline_fill", "a 4-stage VMAC pipeline: 3 fill/drain cycles per tile (fgmpsim.sim.schedule)",
           ("pe_array.pipeline_depth=1",), ("pe_array.pipeline_depth=4",)),
    Option("weight_prefetch", "an op's first weight fill runs in the previous op's tail (fgmpsim.sim.hw.prefetch)",
           ("memory.prefetch_next_weights=false",), ("memory.prefetch_next_weights=true",)),
    Option("aqu_bottom_up_price", "the AQU's work priced bottom-up at 21.8 pJ per block (off: the earlier 11.4 pJ)",
           ("energy.actions.aqu_block.pj=11.4",), ()),
)
"""The structural options of the arch YAML (docs/microarchitecture.md describes each)."""


def shipped_state(option: Option) -> str:
    """``"on"`` or ``"off"``: which of the option's settings ``fgmp`` ships with."""
    shipped = load_arch("fgmp")
    for state in ("on", "off"):
        overrides, attention = option.setting(state)
        if load_arch("fgmp", list(overrides)) == shipped and attention == DEFAULT_ATTENTION:
            return state
    raise ValueError(f"option {option.name!r}: neither setting is what fgmp.yaml ships ({option.off} / {option.on})")


def _run(trace: Any, overrides: tuple[str, ...], attention: str = DEFAULT_ATTENTION) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in ARCHS:
        summary = simulate(trace, load_arch(name, list(overrides)), attention=attention).summary()
        out[f"{name}_energy_pj"] = summary["energy_pj"]
        out[f"{name}_cycles"] = summary["cycles"]
        out[f"{name}_area_mm2"] = summary.get("area_mm2", float("nan"))
    out["saving"] = 1 - out["fgmp_energy_pj"] / out["fp8_baseline_energy_pj"]
    return out


def compute_options(progress: Callable[[str], None] | None = None,
                    options: tuple[Option, ...] = OPTIONS) -> pd.DataFrame:
    """Simulate the shipped designs and every option flipped, on both traces (module docstring)."""
    say = progress or (lambda text: None)
    for option in options:  # a misspelt path or a refused value fails before minutes of simulation
        for overrides in (option.off, option.on):
            for name in ARCHS:
                load_arch(name, list(overrides))
    rows = []
    for label, args in TRACES.items():
        trace = synth_trace(**args)
        say(f"simulating {trace.name} as shipped")
        rows.append({"option": "(as shipped)", "setting": "shipped", "trace": label, **_run(trace, ())})
        for option in options:
            state = "off" if shipped_state(option) == "on" else "on"
            say(f"simulating {trace.name} with {option.name} {state}")
            rows.append({"option": option.name, "setting": state, "trace": label,
                         **_run(trace, *option.setting(state))})
    return pd.DataFrame(rows)


def store_options(frame: pd.DataFrame, root: Path) -> Path:
    """Write ``frame`` to :data:`OPTIONS_CSV` under ``root`` with the command that made it."""
    header = ("# fgmp vs fp8_baseline with each structural option flipped (fgmpsim.validation.options).\n"
              "# Made by: python -m fgmpsim validate --full\n")
    return write_csv(frame, root / OPTIONS_CSV, header)


def load_options(root: Path) -> pd.DataFrame:
    """The stored table (:data:`OPTIONS_CSV`)."""
    return pd.read_csv(root / OPTIONS_CSV, comment="#")
