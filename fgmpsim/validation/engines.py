"""Engine agreement: which tests hold tile == reference == event, and how many cases they collect."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

AGREEMENT_FILES = {
    "tests/test_sim_engines.py": "tile == per-cycle reference on the reference's own counts, cycles, stalls, busy "
                                 "and operand columns (400 random GEMMs; the reference shares no code with the "
                                 "tile engine), tile >= analytic bound",
    "tests/test_sim_hand_tiles.py": "hand-computed cycles and counts on tile and reference: several k-tiles, "
                                    "partial-sum spills, slow links, metadata bits, GLB-bound analytic bound",
    "tests/test_sim_reference_engine.py": "the reference imports no tile-engine code; partial last block; "
                                          "output FP8 rounding",
    "tests/test_sim_mapper_optimal.py": "the mapper's choice is optimal against brute force over every legal tiling; "
                                        "explicit mappings refused exactly when nothing fits",
    "tests/test_sim_determinism.py": "maps and simulate() rows identical across processes (PYTHONHASHSEED)",
    "tests/test_sim_events.py": "event == tile (every column but simpy_events)",
}


@dataclass(frozen=True)
class AgreementTests:
    """One test file: what it asserts and the test ids pytest collects from it (parametrized cases expanded)."""

    path: str
    claim: str
    test_ids: tuple[str, ...]


def agreement_tests(root: Path) -> list[AgreementTests] | None:
    """Collect :data:`AGREEMENT_FILES` with ``pytest --collect-only`` in ``root``; ``None`` without a tests/."""
    present = [p for p in AGREEMENT_FILES if (root / p).exists()]
    if not present:
        return None
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *present], cwd=root, capture_output=True, text=True, timeout=300)
    ids = [line.strip() for line in proc.stdout.splitlines() if "::" in line]
    return [AgreementTests(p, AGREEMENT_FILES[p], tuple(i for i in ids if i.startswith(p))) for p in present]
