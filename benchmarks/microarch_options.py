"""FGMP vs the all-FP8 baseline on the synthetic Llama-2-7B prefill (the headline trace of
``fgmpsim.validation.headline``) with each microarchitecture option of ``docs/microarchitecture.md`` on and off.

Usage::

    python benchmarks/microarch_options.py               # prints a markdown table (about 10 s, 5 simulations)
    python benchmarks/microarch_options.py --collectors  # the collectors table instead (8 simulations)

Energy-table options (alignment energy, mixed-lane MAC overhead, AQU price, static energy) only price counts, so
they re-price the two simulated frames (:func:`fgmpsim.energy.price_frame`); layouts change counts and are
re-simulated. Static energy off is applied to both designs (both have leakage and clocks); every other option
concerns hardware only ``fgmp`` has, so the baseline keeps its shipped result.
"""

from __future__ import annotations

import argparse
import sys
import time

from fgmpsim.arch import load_arch
from fgmpsim.energy import price_frame
from fgmpsim.sim import simulate
from fgmpsim.trace import synth_trace
from fgmpsim.validation.headline import TRACE_ARGS

PREVIOUS = ["energy.actions.align_block.pj=0.0", "energy.actions.mac_fgmp_extra.pj=0.0",
            "energy.actions.aqu_block.pj=11.4", "static.enabled=false"]
"""The model before these options: layouts packed and free, FGMP's FP8xFP8 = the baseline's, AQU 11.4 pJ/block,
no static energy."""

REPRICED: tuple[tuple[str, list[str], bool], ...] = (
    ("shipped (packed everywhere, alignment charged, mixed-lane overhead, AQU 21.8 pJ, static on)", [], False),
    ("alignment free (align_block = 0)", ["energy.actions.align_block.pj=0.0"], False),
    ("no mixed-lane overhead (mac_fgmp_extra = 0)", ["energy.actions.mac_fgmp_extra.pj=0.0"], False),
    ("AQU at the previous 11.4 pJ/block", ["energy.actions.aqu_block.pj=11.4"], False),
    ("static energy off (both designs)", ["static.enabled=false"], True),
    ("all four off (the previous model)", PREVIOUS, True),
)
LAYOUTS: tuple[tuple[str, list[str]], ...] = (
    ("PE buffers slotted", ["storage.layout.pe_buffers=slotted"]),
    ("GLB + PE buffers slotted", ["storage.layout.glb=slotted", "storage.layout.pe_buffers=slotted"]),
    ("every level slotted", ["storage.layout.dram=slotted", "storage.layout.glb=slotted",
                             "storage.layout.pe_buffers=slotted"]),
)


COLLECTORS: tuple[tuple[str, list[str]], ...] = (
    ("off (default)", []),
    ("`dw=8, dp=1` (one row per group: every load of a k-tile over 8 blocks is bypassed)",
     ["pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=1"]),
    ("`dw=8, dp=8` (129 B + 32 B per lane)",
     ["pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=8"]),
    ("`dw=64, dp=1` (whole k-tile held: 1.0 KB per lane, an upper bound)",
     ["pe_array.weight_collector_blocks=64", "pe_array.psum_collector_entries=1"]),
)
"""Collector settings, applied to both designs (docs/microarchitecture.md, "Weight and partial-sum collectors")."""


def collectors_table() -> None:
    """Print FGMP vs FP8 energy with each :data:`COLLECTORS` setting on both designs."""
    trace = synth_trace(**TRACE_ARGS)
    started = time.perf_counter()
    print("| collectors | FGMP vs FP8 energy | fgmp J | fp8 J | fgmp pJ/MAC | weight-buffer read bits/MAC (fgmp) "
          "| fgmp cycles |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, overrides in COLLECTORS:
        fgmp, base = (simulate(trace, load_arch(name, overrides)) for name in ("fgmp", "fp8_baseline"))
        frame, summary = fgmp.to_frame(), fgmp.summary()
        energy, base_energy = summary["energy_pj"], base.summary()["energy_pj"]
        print(f"| {label} | {energy / base_energy - 1:+.1%} | {energy / 1e12:.2f} | {base_energy / 1e12:.2f} "
              f"| {energy / summary['macs']:.3f} | {frame['weight_buffer_read_bits'].sum() / summary['macs']:.3f} "
              f"| {summary['cycles']:,} |")
    print(f"trace: {trace.name}; {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _energy(frame, overrides: list[str], name: str) -> float:
    return float(price_frame(frame, load_arch(name, overrides).energy)["energy_total_pj"].sum())


def main() -> None:
    trace = synth_trace(**TRACE_ARGS)
    started = time.perf_counter()
    results = {name: simulate(trace, load_arch(name)) for name in ("fgmp", "fp8_baseline")}
    frames = {name: r.to_frame() for name, r in results.items()}
    base_cycles = results["fp8_baseline"].summary()["cycles"]
    rows = []
    for label, overrides, both in REPRICED:
        fgmp = _energy(frames["fgmp"], overrides, "fgmp")
        base = _energy(frames["fp8_baseline"], overrides if both else [], "fp8_baseline")
        rows.append((label, fgmp, base, results["fgmp"].summary()))
    for label, overrides in LAYOUTS:
        result = simulate(trace, load_arch("fgmp", overrides))
        rows.append((label, result.summary()["energy_pj"], float(frames["fp8_baseline"]["energy_pj"].sum()),
                     result.summary()))
    print(f"trace: {trace.name}; fp8_baseline {base_cycles:,} cycles; {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    print("| option | fgmp energy (J) | fp8_baseline (J) | saving vs FP8 | fgmp cycles | fgmp weight MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, fgmp, base, summary in rows:
        print(f"| {label} | {fgmp / 1e12:.3f} | {base / 1e12:.3f} | {1 - fgmp / base:+.1%} | {summary['cycles']:,} "
              f"| {summary['weight_bytes'] / 1e6:,.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collectors", action="store_true", help="print the collectors table instead")
    if parser.parse_args().collectors:
        collectors_table()
    else:
        main()
