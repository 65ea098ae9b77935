"""Results do not depend on the process: synthetic maps and whole simulate() rows are bit-identical in two Python
processes started with different hash seeds (``PYTHONHASHSEED``), so nothing keys a map or a result on
``hash()`` of a string, set order or object ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import hashlib, json
import numpy as np
from fgmpsim.arch import load_arch
from fgmpsim.sim import simulate
from fgmpsim.trace.gemm import gemm_trace
from fgmpsim.trace.synth import synth_trace

digest = hashlib.sha256()
trace = synth_trace("smollm2-135m", tokens=16, fp4_fraction=0.7)
for op in trace.ops:
    for bits in (op.weight_map_array(), op.act_map_array()):
        digest.update(np.packbits(bits).tobytes())
rows = simulate(trace, load_arch("fgmp")).rows
gemm = simulate(gemm_trace(8, 64, 8, fp4_fraction=0.5, seed=3), load_arch("fgmp"), engine="reference").rows
print(json.dumps({"maps": digest.hexdigest(), "rows": [rows[0], rows[-1]], "gemm": gemm[0]}, sort_keys=True,
                 default=lambda v: v.item()))
"""


def _run(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    return proc.stdout


def test_maps_and_rows_identical_across_processes_with_different_hash_seeds():
    first, second = _run("1"), _run("4242")
    assert first == second
    assert '"maps": "' in first and '"cycles": ' in first
