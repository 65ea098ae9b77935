"""Design-space sweeps: many (trace, arch) points from one YAML spec, on a local process pool or Dask, into a
resumable Parquet store.

``fgmpsim.sweep.run(spec, out)`` runs (and resumes) a sweep, ``fgmpsim.sweep.load(out)`` returns its table;
the spec format is in :mod:`fgmpsim.sweep.spec`, the store layout in :mod:`fgmpsim.sweep.store`.
"""

from fgmpsim.sweep.points import Point, expand
from fgmpsim.sweep.run import SweepReport, failures, load, run
from fgmpsim.sweep.spec import SweepSpec, load_spec

__all__ = ["Point", "SweepReport", "SweepSpec", "expand", "failures", "load", "load_spec", "run"]
