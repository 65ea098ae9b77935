"""Fault injection on result files: a writer killed with SIGKILL mid-write, a write that fails (full disk).

Each function returns how many times the result on disk was found lost, truncated or not the previous good one
(0 is the only correct answer).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fgmpsim.testing.cases import save_fixture

_WRITER = textwrap.dedent("""
    import sys
    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate
    from fgmpsim.trace import load_trace
    result = simulate(load_trace(sys.argv[1]), load_arch("fgmp"))
    result.save(sys.argv[2])
    print("ready", flush=True)
    while True:
        result.save(sys.argv[2])
""")


def _complete(out: Path, ops: int) -> bool:
    try:
        document = json.loads(out.read_text())
    except (OSError, ValueError):
        return False
    return len(document.get("ops", ())) == ops and document.get("provenance", {}).get("rows") == ops


def kill_during_save(directory: Path, kills: int, seed: int = 0) -> int:
    """SIGKILL a process that rewrites one JSON result in a loop, ``kills`` times at seeded random moments; count
    the times the file left behind is not a complete result."""
    from fgmpsim.trace import load_trace

    trace = save_fixture(directory)
    ops = len(load_trace(trace).ops)
    out = directory / "result.json"
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    rng = random.Random(seed)
    lost = 0
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(trace), str(out)], stdout=subprocess.PIPE,
                                 env=env)
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            child.kill()
            child.wait()
            lost += 1
            continue
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        lost += not _complete(out, ops)
    return lost


def failed_writes(directory: Path, count: int) -> int:
    """Make ``count`` saves fail half-way (the Parquet writer raises ENOSPC after writing part of the file); count
    the times the previous result did not survive byte for byte or a temporary file was left behind."""
    import pyarrow.parquet as pq

    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate
    from fgmpsim.trace import load_trace

    trace = save_fixture(directory / "faults")
    result = simulate(load_trace(trace), load_arch("fgmp"))
    out = directory / "faults" / "result.parquet"
    result.save(out)
    before = out.read_bytes()
    real = pq.write_table

    def full_disk(table, where, **kwargs):  # type: ignore[no-untyped-def]
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    lost = 0
    pq.write_table = full_disk
    try:
        for _ in range(count):
            try:
                result.save(out)
                lost += 1  # the failure did not surface
            except OSError:
                pass
            leftovers = [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
            lost += out.read_bytes() != before or bool(leftovers)
    finally:
        pq.write_table = real
    return lost
