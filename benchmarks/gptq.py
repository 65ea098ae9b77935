"""Speed of GPTQ on SmolLM2-135M: every decoder linear of all 30 layers from 32 x 256 calibration tokens.

Usage::

    python benchmarks/gptq.py                      # zqfp_w4a8:m2+gptq+g64 on the default 32 x 256 tokens
    python benchmarks/gptq.py --policy int_w4a8:gptq+g64 --calib-sequences 8

Prints one table: wall and CPU seconds of each stage (model load, the Hessians' forward pass, GPTQ per linear kind)
and the target (everything after the model load within 300 s wall on this machine's 2 cores; torch uses its default
threads). Wall times are ``time.perf_counter``; CPU times ``time.process_time`` (all threads of the process): on a
loaded machine the wall time grows but the CPU time does not, and CPU / threads is the wall time a quiet machine
would take.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fgmpsim, not an installed one
TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="zqfp_w4a8:m2+gptq+g64")
    parser.add_argument("--calib-sequences", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256)
    args = parser.parse_args()

    import torch

    from fgmpsim.quant.fisher import quantizable_linears
    from fgmpsim.quant.gptq import input_hessians
    from fgmpsim.quant.model import load_model
    from fgmpsim.quant.policies import WeightQuantizer, get_policy
    from fgmpsim.quant.text import calibration_windows, load_text, split_tokens

    recipe = get_policy(args.policy).recipe
    start, cpu = time.perf_counter(), time.process_time()
    loaded = load_model("smollm2-135m")
    text, source = load_text()
    windows = calibration_windows(split_tokens(loaded.tokenizer, text, source), args.calib_sequences, args.seq_len)
    linears = quantizable_linears(loaded.model)
    rows = [("model load + tokenize", time.perf_counter() - start, time.process_time() - cpu)]

    # one site per distinct input tensor, as the quantize pipeline finds them (q/k/v and gate/up share one)
    site_of = {n: n.replace("k_proj", "q_proj").replace("v_proj", "q_proj").replace("up_proj", "gate_proj")
               for n in linears}
    sites = sorted(set(site_of.values()))
    start, cpu = time.perf_counter(), time.process_time()
    hessians = input_hessians(loaded.model, windows, linears, sites, progress=False)
    rows.append((f"Hessians X^T X ({len(hessians)} sites, {windows.size:,} tokens)", time.perf_counter() - start,
                 time.process_time() - cpu))

    weights = WeightQuantizer({n: m.weight.detach().numpy() for n, m in linears.items()}, {}, site_of=site_of,
                              hessians=lambda: hessians)
    by_kind: dict[str, float] = defaultdict(float)
    cpu_by_kind: dict[str, float] = defaultdict(float)
    columns: dict[str, int] = defaultdict(int)
    for site in sites:  # one GPTQ run per site: its readers' weights stacked along N
        kind = site.rsplit(".", 1)[-1]
        start, cpu = time.perf_counter(), time.process_time()
        weights.recipe_weight(site, recipe)
        by_kind[kind] += time.perf_counter() - start
        cpu_by_kind[kind] += time.process_time() - cpu
        columns[kind] += linears[site].in_features
    rows += [(f"GPTQ {kind} site ({columns[kind]:,} columns)", s, cpu_by_kind[kind]) for kind, s in by_kind.items()]
    work, work_cpu = sum(row[1] for row in rows[1:]), sum(row[2] for row in rows[1:])
    print(f"GPTQ benchmark: {args.policy}, SmolLM2-135M, {len(linears)} linears, {args.calib_sequences} x "
          f"{args.seq_len} calibration tokens, torch {torch.__version__} with {torch.get_num_threads()} threads\n")
    print("| stage | wall s | CPU s |\n| --- | ---: | ---: |")
    for what, seconds, cpu_seconds in rows:
        print(f"| {what} | {seconds:.1f} | {cpu_seconds:.1f} |")
    print(f"| **Hessians + GPTQ (target <= {TARGET_S:.0f} s wall)** | **{work:.1f}** "
          f"({'pass' if work <= TARGET_S else 'FAIL'}) | {work_cpu:.1f} |")


if __name__ == "__main__":
    main()
