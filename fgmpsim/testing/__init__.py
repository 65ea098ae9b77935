"""Reliability testing of fgmpsim itself: the fuzz suite (:mod:`fgmpsim.testing.fuzz`, needs the ``dev`` extra for
hypothesis), its capped worker, the case classifier and result sanity checks, and fault injection on result files.
Not imported by ``import fgmpsim``."""
