"""FGMP vs FP8 energy saving, cycles, DRAM traffic and run time with each option of issue #10 item 6 on and off
(``attention`` causal/dense, ``memory.glb.keep_outputs``) on the synthetic Llama-2-7B prefill of
:mod:`fgmpsim.validation.headline` and its decode step (kv_len 2048), then the DRAM footprint against a 6 GiB DRAM.
Prints a Markdown table (docs/_decode_section.md holds one run). Run from the repository root:
``python benchmarks/decode_options.py`` (a few minutes)."""

from __future__ import annotations

import time

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace import synth_trace
from fgmpsim.validation.headline import TRACE_ARGS

traces = {"prefill t2048": synth_trace(**TRACE_ARGS),
          "decode kv2048": synth_trace(**{**TRACE_ARGS, "phase": "decode", "tokens": None, "kv_len": 2048})}
print("| trace | attention | glb.keep_outputs | FGMP energy (J) | FP8 energy (J) | saving | FGMP cycles | FP8 cycles "
      "| FGMP DRAM GB | FP8 DRAM GB | s/point |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for label, trace in traces.items():
    for attention in ("dense", "causal"):
        for keep in ("false", "true"):
            out, secs = {}, []
            for name in ("fgmp", "fp8_baseline"):
                start = time.time()
                out[name] = simulate(trace, load_arch(name, [f"memory.glb.keep_outputs={keep}"]),
                                     attention=attention).summary()
                secs.append(time.time() - start)
            f, b = out["fgmp"], out["fp8_baseline"]
            print(f"| {label} | {attention} | {keep} | {f['energy_pj'] / 1e12:.3f} | {b['energy_pj'] / 1e12:.3f} | "
                  f"{f['energy_pj'] / b['energy_pj'] - 1:+.2%} | {f['cycles']:,} | {b['cycles']:,} | "
                  f"{f['dram_bytes'] / 1e9:.2f} | {b['dram_bytes'] / 1e9:.2f} | {max(secs):.1f} |", flush=True)
for label, trace in traces.items():
    for name in ("fgmp", "fp8_baseline"):
        s = simulate(trace, load_arch(name, ["memory.dram.size_bytes=6442450944"])).summary()
        print(label, name, {k: v for k, v in s.items() if k.startswith("dram_") and k != "dram_bytes"})
