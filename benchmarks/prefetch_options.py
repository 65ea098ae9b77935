"""Cycles with the next-op weight prefetch (``memory.prefetch_next_weights``) off and on, for ``fgmp`` and
``fp8_baseline``, on the synthetic Llama-2-7B prefill of :mod:`fgmpsim.validation.headline`, its decode step
(kv_len 2048) and the shipped SmolLM2-135M trace (``traces/smollm2-135m-fgmp70``). Prints a Markdown table
(docs/microarchitecture.md, "Next-op weight prefetch", holds one run). Run from the repository root:
``python benchmarks/prefetch_options.py`` (a few minutes)."""

from __future__ import annotations

import time

from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace import load_trace, synth_trace
from fgmpsim.validation.headline import TRACE_ARGS

traces = {"Llama-2-7B prefill t2048": synth_trace(**TRACE_ARGS),
          "Llama-2-7B decode kv2048": synth_trace(**{**TRACE_ARGS, "phase": "decode", "tokens": None,
                                                     "kv_len": 2048}),
          "SmolLM2-135M (traces/smollm2-135m-fgmp70)": load_trace("traces/smollm2-135m-fgmp70")}
print("| trace | arch | cycles off | cycles on | change | ops faster | FGMP vs FP8 energy off | on | s/point on |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for label, trace in traces.items():
    energy = {}
    for name in ("fgmp", "fp8_baseline"):
        frames, secs = {}, 0.0
        for flag in ("false", "true"):
            start = time.time()
            frames[flag] = simulate(trace, load_arch(name, [f"memory.prefetch_next_weights={flag}"])).to_frame()
            secs = time.time() - start
        off, on = (int(frames[flag].cycles.sum()) for flag in ("false", "true"))
        faster = int((frames["true"].cycles < frames["false"].cycles).sum())
        energy[name] = {flag: frames[flag].energy_pj.sum() for flag in frames}
        row = f"| {label} | {name} | {off:,} | {on:,} | {on / off - 1:+.3%} | {faster}/{len(frames['true'])} |"
        if name == "fp8_baseline":
            f, b = energy["fgmp"], energy["fp8_baseline"]
            row += (f" {f['false'] / b['false'] - 1:+.2%} | {f['true'] / b['true'] - 1:+.2%} |")
        else:
            row += " | |"
        print(row + f" {secs:.1f} |", flush=True)
