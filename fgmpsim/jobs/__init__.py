"""End-to-end jobs over the public API: load traces and archs, simulate, hand the runs to :mod:`fgmpsim.analysis`.

:func:`compare` (``fgmpsim compare``) and :func:`demo` (``fgmpsim demo``). The analysis package never simulates;
these functions are where simulation and analysis meet, so the CLI verbs stay thin.
"""

from fgmpsim.jobs.compare import CompareRun, Design, compare, parse_design
from fgmpsim.jobs.demo import DemoResult, demo

__all__ = ["CompareRun", "DemoResult", "Design", "compare", "demo", "parse_design"]
